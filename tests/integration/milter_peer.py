"""A milter (Sendmail mail filter protocol, version 6) written for the tests: the
filter side of the protocol, on a loopback port, with behaviours chosen by the test,
including misbehaviour (garbage, hang, close mid-message, a reply for the wrong stage,
an oversized frame).  It records what it was told (stages, macros, headers, body)."""

import os
import socket
import struct
import threading


def frame(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def cstrings(data):
    return [p.decode(errors="replace") for p in data.split(b"\0")[:-1]]


class Milter:
    """behaviour(stage, info) -> list of frames to send back, or None for "continue";
    stage is one of connect helo mail rcpt data header eoh body eom; info is a dict
    of what the stage carried."""

    def __init__(self, port, behaviour=None, misbehave=None, protocol=0, actions=0x1FF):
        self.port = port
        self.behaviour = behaviour or (lambda stage, info: None)
        # None, "garbage", "hang" (at the content), "hang-negotiate", "hang-STAGE"
        # (silent at that stage's command: hang-mail, hang-rcpt), "close", "wrong", "huge"
        self.misbehave = misbehave
        self.protocol = protocol
        self.actions = actions
        self.log = []                       # (stage, info) of every stage seen
        self.macros = {}                    # stage letter -> dict
        self.messages = []                  # (headers, body) at end of message
        if isinstance(port, str):           # a UNIX socket at that path
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(port)
            os.chmod(port, 0o666)
            self.sock.listen(16)
        else:
            self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.thread.join(5)

    @staticmethod
    def read_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def session(self, conn):
        conn.settimeout(60)
        headers, body = [], b""
        try:
            while True:
                (length,) = struct.unpack(">I", self.read_exact(conn, 4))
                data = self.read_exact(conn, length)
                cmd, data = data[:1], data[1:]
                if cmd == b"O":
                    if self.misbehave == "hang-negotiate":
                        threading.Event().wait(120)
                        return
                    if self.misbehave == "garbage":
                        conn.sendall(b"\x00\x00\x00\x05garbage and more garbage")
                        continue
                    conn.sendall(frame(b"O", struct.pack(">III", 6, self.actions, self.protocol)))
                    continue
                if cmd == b"D":
                    parts = cstrings(data[1:])
                    self.macros[data[:1].decode()] = dict(zip(parts[0::2], parts[1::2]))
                    continue
                if cmd in (b"A",):
                    headers, body = [], b""
                    continue
                if cmd == b"Q":
                    return
                stage, info = {
                    b"C": ("connect", lambda d: {"host": cstrings(d)[0]}),
                    b"H": ("helo", lambda d: {"helo": cstrings(d)[0]}),
                    b"M": ("mail", lambda d: {"args": cstrings(d)}),
                    b"R": ("rcpt", lambda d: {"args": cstrings(d)}),
                    b"T": ("data", lambda d: {}),
                    b"L": ("header", lambda d: {"name": cstrings(d)[0], "value": cstrings(d)[1]}),
                    b"N": ("eoh", lambda d: {}),
                    b"B": ("body", lambda d: {"chunk": d}),
                    b"E": ("eom", lambda d: {}),
                }.get(cmd, ("unknown", lambda d: {}))
                info = info(data)
                self.log.append((stage, info))
                if stage == "header":
                    headers.append((info["name"], info["value"]))
                if stage == "body":
                    body += info["chunk"]
                if stage == "eom":
                    info = {"headers": headers, "body": body}
                    self.messages.append(info)
                    headers, body = [], b""
                if self.misbehave == f"hang-{stage}":     # silent at that command
                    threading.Event().wait(120)
                    return
                if self.misbehave == "hang" and stage in ("body", "eom"):
                    threading.Event().wait(120)
                    return
                if self.misbehave == "close" and stage == "body":
                    return
                if self.misbehave == "wrong" and stage == "rcpt":
                    conn.sendall(frame(b"h", b"X-Wrong\0stage\0"))
                    continue
                if self.misbehave == "huge" and stage == "eom":
                    conn.sendall(struct.pack(">I", 0x7FFFFFF0) + b"h")
                    threading.Event().wait(30)
                    return
                if self.protocol & {"connect": 0x1000, "helo": 0x2000, "mail": 0x4000,
                                    "rcpt": 0x8000, "data": 0x10000, "eoh": 0x40000,
                                    "body": 0x80000, "header": 0x80}.get(stage, 0):
                    continue
                out = self.behaviour(stage, info)
                if out is None:
                    out = [frame(b"c")]
                conn.sendall(b"".join(out))
        except (EOFError, OSError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


def add_header(name, value):
    return frame(b"h", name.encode() + b"\0" + value.encode() + b"\0")


def change_header(index, name, value):
    return frame(b"m", struct.pack(">I", index) + name.encode() + b"\0" + value.encode() + b"\0")


def insert_header(index, name, value):
    return frame(b"i", struct.pack(">I", index) + name.encode() + b"\0" + value.encode() + b"\0")


def replace_body(data):
    return frame(b"b", data)


def reply(code_text):
    return frame(b"y", code_text.encode() + b"\0")


def quarantine(reason):
    return frame(b"q", reason.encode() + b"\0")


ACCEPT, CONTINUE, REJECT, TEMPFAIL, DISCARD = (frame(b"a"), frame(b"c"), frame(b"r"),
                                               frame(b"t"), frame(b"d"))


def change_from(addr, params=""):
    return frame(b"e", addr.encode() + b"\0" + (params.encode() + b"\0" if params else b""))


def add_rcpt(addr, params=None):
    if params is None:
        return frame(b"+", addr.encode() + b"\0")
    return frame(b"2", addr.encode() + b"\0" + params.encode() + b"\0")


def del_rcpt(addr):
    return frame(b"-", addr.encode() + b"\0")

"""What the IMAP tests share about a live instance: whether its IMAP port greets, and
a logged-in connection read line by line (plain or over implicit TLS)."""

import re
import socket
import ssl
import time


def greets(inst, service="imap"):
    """True when inst's IMAP port answers with its greeting (one bounded try)."""
    try:
        with socket.create_connection(("127.0.0.1", inst.port(service)), timeout=2) as s:
            s.settimeout(5)
            return s.recv(100).startswith(b"* OK")
    except OSError:
        return False


class LineClient:
    """A logged-in connection read line by line, for IDLE and half-sent commands;
    over implicit TLS (the imaps port, certificate not checked) when tls.  With check,
    every tagged answer must be OK; without, the caller looks at it."""

    def __init__(self, inst, user, password, tls=False, timeout=30, check=True):
        self.timeout = timeout
        self.check = check
        self.sock = socket.create_connection(
            ("127.0.0.1", inst.port("imaps" if tls else "imap")), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.cmd(b"l LOGIN %s %s" % (user.encode(), password.encode()), b"l")

    def cmd(self, line, tag=None):
        """Sends line; the lines up to its tagged answer (tag: line's first word)."""
        tag = tag or line.split(b" ", 1)[0]
        self.sock.sendall(line + b"\r\n")
        out = []
        while True:
            ln = self.f.readline()
            assert ln, out
            out.append(ln)
            if ln.startswith(tag + b" "):
                assert not self.check or ln.startswith(tag + b" OK"), out
                return out

    def idle(self):
        self.sock.sendall(b"i IDLE\r\n")
        assert self.f.readline().startswith(b"+ ")

    def wait_for_line(self, pattern, within):
        """The first line matching pattern, which must come within seconds, and the
        seconds it took."""
        start = time.monotonic()
        self.sock.settimeout(within)
        try:
            while True:
                ln = self.f.readline()
                assert ln, "closed"
                if re.search(pattern, ln):
                    return ln, time.monotonic() - start
        finally:
            self.sock.settimeout(self.timeout)

    def done(self):
        self.sock.sendall(b"DONE\r\n")
        self.wait_for_line(rb"^i OK", 10)

    def close(self):
        self.f.close()
        self.sock.close()

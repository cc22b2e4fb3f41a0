"""A raw IMAP client for tests that need what imaplib cannot do: COMPRESS (raw
deflate both ways with zlib, wbits -15), literal8 (RFC 3516) in answers and in
commands, and byte-exact replies.  Every read has a timeout."""

import re
import zlib

LITERAL = re.compile(rb"~?\{(\d+)\}$")


class Client:
    """A line-at-a-time IMAP client that can switch to raw deflate both ways."""

    def __init__(self, sock, timeout=30):
        self.s = sock
        self.s.settimeout(timeout)
        self.buf = bytearray()
        self.pos = 0                # bytes of buf already taken
        self.z_out = self.z_in = None
        self.wire_in = 0
        self.n = 0

    def compress(self):
        self.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.z_in = zlib.decompressobj(-15)

    def send(self, data):
        if self.z_out is not None:
            data = self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def more(self):
        chunk = self.s.recv(262144)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.wire_in += len(chunk)
        if self.z_in is not None:
            chunk = self.z_in.decompress(chunk)
        if self.pos > 1 << 20:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def line(self):
        scanned = 0                 # bytes after pos searched already (more() may move pos)
        while True:
            i = self.buf.find(b"\r\n", self.pos + scanned)
            if i >= 0:
                ln = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return ln
            scanned = max(0, len(self.buf) - self.pos - 1)
            self.more()

    def literal(self, n):
        while len(self.buf) - self.pos < n:
            self.more()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def cmd(self, text, collect=True):
        """Sends a command; returns (tagged line, untagged lines with literals inline;
        only their count when collect is false)."""
        self.n += 1
        tag = f"c{self.n}".encode()
        self.send(tag + b" " + text + b"\r\n")
        untagged = [] if collect else 0
        while True:
            ln = self.line()
            if ln.endswith(b"}"):
                m = LITERAL.search(ln)
                while m:
                    ln += b"\r\n" + self.literal(int(m.group(1)))
                    rest = self.line()
                    ln += rest
                    m = LITERAL.search(rest)
            if ln.startswith(tag + b" "):
                return ln[len(tag) + 1:], untagged
            if collect:
                untagged.append(ln)
            else:
                untagged += 1

"""A raw IMAP client for tests that need what imaplib cannot do: COMPRESS (raw
deflate both ways with zlib, wbits -15), literal8 (RFC 3516) in answers and in
commands, and byte-exact replies.  Every read has a timeout."""

import re
import zlib


class Client:
    """A line-at-a-time IMAP client that can switch to raw deflate both ways."""

    def __init__(self, sock, timeout=30):
        self.s = sock
        self.s.settimeout(timeout)
        self.buf = b""
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
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.wire_in += len(chunk)
        if self.z_in is not None:
            chunk = self.z_in.decompress(chunk)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.more()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def literal(self, n):
        while len(self.buf) < n:
            self.more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, text):
        """Sends a command; returns (tagged line, untagged lines with literals inline)."""
        self.n += 1
        tag = f"c{self.n}".encode()
        self.send(tag + b" " + text + b"\r\n")
        untagged = []
        while True:
            ln = self.line()
            m = re.search(rb"~?\{(\d+)\}$", ln)
            while m:
                ln += b"\r\n" + self.literal(int(m.group(1)))
                rest = self.line()
                ln += rest
                m = re.search(rb"~?\{(\d+)\}$", rest)
            if ln.startswith(tag + b" "):
                return ln[len(tag) + 1:], untagged
            untagged.append(ln)

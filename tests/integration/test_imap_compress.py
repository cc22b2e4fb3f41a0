"""IMAP COMPRESS=DEFLATE (RFC 4978): a raw client that deflates with Python's zlib
(raw deflate, wbits -15), in clear and over IMAPS (TLS ends in the pre-auth process,
the session compresses); COMPRESS repeated, unknown mechanisms, bad syntax; a
decompression bomb bounded by the line and literal limits; and mbsync, which uses
COMPRESS=DEFLATE when offered."""

import os
import shutil
import socket
import ssl
import subprocess

import pytest

from conftest import start_instance
from imap_raw import Client
from instance import wait_for
from imap_instance import greets as _greets

USER = "alice@example.test"
PASSWORD = "secret"
TIMEOUT = 30


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=(USER,), domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "imapd_loopback_plaintext_login": "yes"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


def login(sock):
    c = Client(sock, TIMEOUT)
    assert c.line().startswith(b"* OK")
    tagged, _ = c.cmd(f"LOGIN {USER} {PASSWORD}".encode())
    assert tagged.startswith(b"OK"), tagged
    return c


def plain(inst):
    return login(socket.create_connection(("127.0.0.1", inst.port("imap")), timeout=TIMEOUT))


def tls(inst):
    ctx = ssl._create_unverified_context()
    raw = socket.create_connection(("127.0.0.1", inst.port("imaps")), timeout=TIMEOUT)
    return login(ctx.wrap_socket(raw, server_hostname="localhost"))


BIG = (b"From: a@example.test\r\nTo: alice@example.test\r\nSubject: big\r\n"
       b"Message-ID: <big@example.test>\r\n\r\n" +
       b"".join(b"line %06d of a text that compresses well enough\r\n" % i
                for i in range(4000)))


def append(c, data):
    c.send(b"ap APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    ln = c.line()
    while not ln.startswith(b"ap "):
        ln = c.line()
    assert ln.startswith(b"ap OK"), ln


@pytest.mark.parametrize("how", [plain, tls])
def test_compress_round_trip(imap, how):
    mark = imap.log_mark()
    c = how(imap)
    _, unt = c.cmd(b"CAPABILITY")
    assert b"COMPRESS=DEFLATE" in unt[0].split()
    tagged, _ = c.cmd(b"COMPRESS DEFLATE")
    assert tagged.startswith(b"OK"), tagged
    c.compress()
    imap.wait_log("compress: user=<alice@example.test>", "deflate", since=mark)
    append(c, BIG)
    tagged, unt = c.cmd(b"SELECT INBOX")
    assert tagged.startswith(b"OK"), tagged
    n = int(next(u for u in unt if u.endswith(b"EXISTS")).split()[1])
    before = c.wire_in
    tagged, unt = c.cmd(b"FETCH %d BODY.PEEK[]" % n)
    assert tagged.startswith(b"OK"), tagged
    body = unt[0].split(b"\r\n", 1)[1]
    assert body[:-1] == BIG            # the ")" that ends the FETCH response
    assert c.wire_in - before < len(BIG) // 3, "the reply was not compressed"
    # again: refused with COMPRESSIONACTIVE, and the stream still works
    tagged, _ = c.cmd(b"COMPRESS DEFLATE")
    assert tagged.startswith(b"NO [COMPRESSIONACTIVE]"), tagged
    tagged, _ = c.cmd(b"NOOP")
    assert tagged.startswith(b"OK"), tagged
    tagged, unt = c.cmd(b"LOGOUT")
    assert tagged.startswith(b"OK") and unt[0].startswith(b"* BYE")
    c.s.close()


def test_compress_refusals(imap):
    c = plain(imap)
    tagged, _ = c.cmd(b"COMPRESS BLURDYBLOOP")
    assert tagged.startswith(b"NO"), tagged
    tagged, _ = c.cmd(b"COMPRESS")
    assert tagged.startswith(b"BAD"), tagged
    tagged, _ = c.cmd(b"COMPRESS DEFLATE EXTRA")
    assert tagged.startswith(b"BAD"), tagged
    # still in clear
    tagged, _ = c.cmd(b"NOOP")
    assert tagged == b"OK NOOP completed"
    c.cmd(b"LOGOUT")
    c.s.close()


def test_compress_bomb_and_garbage(imap):
    # 64 MiB of one line expand from about 64 KiB: the line limit ends it, the
    # session process survives to serve the next client.
    c = plain(imap)
    assert c.cmd(b"COMPRESS DEFLATE")[0].startswith(b"OK")
    c.compress()
    mark = imap.log_mark()
    chunk = b"A" * (1 << 20)
    try:
        c.send(b"x1 NOOP ")
        for _ in range(64):
            c.send(chunk)
        reply = c.line()
        assert reply.startswith(b"* BYE"), reply
    except (ConnectionError, BrokenPipeError, ConnectionResetError):
        pass            # closed after the bounded discard: also right
    c.s.close()
    # a literal announced too large is refused before its bytes are read
    c = plain(imap)
    assert c.cmd(b"COMPRESS DEFLATE")[0].startswith(b"OK")
    c.compress()
    c.send(b"x2 APPEND INBOX {4000000000}\r\n")
    ln = c.line()
    assert ln.startswith(b"x2 BAD [TOOBIG]") or ln.startswith(b"x2 NO [TOOBIG]"), ln
    c.cmd(b"LOGOUT")
    c.s.close()
    # bytes that are not deflate: the connection ends, with a log line
    c = plain(imap)
    assert c.cmd(b"COMPRESS DEFLATE")[0].startswith(b"OK")
    c.s.sendall(b"\xff\xff\xff\xff not deflate at all\r\n")
    with pytest.raises((ConnectionError, socket.timeout, OSError)):
        for _ in range(100):
            c.s.settimeout(TIMEOUT)
            if not c.s.recv(4096):
                raise ConnectionError("closed")
    c.s.close()
    imap.wait_log("command line over 65536 bytes, closing", since=mark)
    imap.wait_log("literal of 4000000000 bytes refused", since=mark)
    imap.wait_log("corrupt compressed input", since=mark)
    c = plain(imap)
    assert c.cmd(b"NOOP")[0].startswith(b"OK")
    c.cmd(b"LOGOUT")
    c.s.close()


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
def test_mbsync_compresses(imap, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount remote
Host 127.0.0.1
Port {imap.port("imaps")}
User {USER}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {os.path.join(imap.conf_dir, "tls", "cert.pem")}
SystemCertificates no

IMAPStore remote
Account remote

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Near
SyncState *
""")
    imap.submit("sender@example.org", [USER],
                b"From: sender@example.org\r\nSubject: for mbsync\r\n"
                b"Message-ID: <mbsync-z@example.org>\r\n\r\n" + b"compress me\r\n" * 500)
    imap.wait_message(USER, "<mbsync-z@example.org>")
    mark = imap.log_mark()
    p = subprocess.run(["mbsync", "-c", str(rc), "-D", "sync"], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, HOME=str(tmp_path)))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "COMPRESS DEFLATE" in p.stdout + p.stderr
    imap.wait_log("compress: user=<alice@example.test>", "deflate", since=mark)
    got = list((local / "INBOX" / "cur").iterdir()) + list((local / "INBOX" / "new").iterdir())
    assert any(b"Message-ID: <mbsync-z@example.org>" in f.read_bytes() for f in got)


def test_idle_under_compression(imap):
    """An idling compressed session gets the EXISTS of a message another session
    appends at once (each burst of output ends in a sync flush)."""
    c = plain(imap)
    assert c.cmd(b"COMPRESS DEFLATE")[0].startswith(b"OK")
    c.compress()
    tagged, unt = c.cmd(b"SELECT INBOX")
    assert tagged.startswith(b"OK"), tagged
    n = int(next(u for u in unt if u.endswith(b"EXISTS")).split()[1])
    c.send(b"i1 IDLE\r\n")
    assert c.line().startswith(b"+")
    other = plain(imap)
    append(other, b"From: x@example.test\r\nSubject: while idling\r\n\r\nhi\r\n")
    other.cmd(b"LOGOUT")
    assert c.line() == b"* %d EXISTS" % (n + 1)
    c.send(b"DONE\r\n")
    ln = c.line()
    while not ln.startswith(b"i1 "):
        ln = c.line()
    assert ln.startswith(b"i1 OK"), ln
    c.cmd(b"LOGOUT")
    c.s.close()


def tagged_replies(c, tags):
    """Reads lines until every tag in tags is answered; {tag: line}."""
    got = {}
    while len(got) < len(tags):
        ln = c.line()
        tag = ln.split(b" ", 1)[0]
        if tag in tags:
            got[tag] = ln
    return got


def test_two_commands_in_one_flush(imap):
    """Two commands (and then many) in one sync flush: each is answered at once, not
    when more bytes come (the second one sits inflated in the server's buffers)."""
    c = plain(imap)
    c.s.settimeout(10)
    assert c.cmd(b"COMPRESS DEFLATE")[0].startswith(b"OK")
    c.compress()
    c.send(b"p1 NOOP\r\np2 NOOP\r\n")
    got = tagged_replies(c, {b"p1", b"p2"})
    assert got[b"p2"].startswith(b"p2 OK"), got
    # more than the stream's 16 KiB input buffer in one flush: the inflater holds
    # the rest of it when the first buffer is handed out
    pad = b"x" * 7000
    cmds = b"".join(b"q%d SELECT \"INBOX%s\"\r\n" % (i, pad) if i % 2 else
                    b"q%d NOOP\r\n" % i for i in range(12))
    c.send(cmds)
    got = tagged_replies(c, {b"q%d" % i for i in range(12)})
    assert got[b"q11"].startswith(b"q11 "), got
    assert all(got[b"q%d" % i].startswith(b"q%d OK" % i) for i in range(0, 12, 2)), got
    c.cmd(b"LOGOUT")
    c.s.close()


def test_idle_done_in_the_same_flush(imap):
    """IDLE and its DONE in one flush, then DONE and another command together."""
    c = plain(imap)
    c.s.settimeout(10)
    assert c.cmd(b"COMPRESS DEFLATE")[0].startswith(b"OK")
    c.compress()
    assert c.cmd(b"SELECT INBOX")[0].startswith(b"OK")
    c.send(b"i1 IDLE\r\nDONE\r\n")
    got = tagged_replies(c, {b"i1"})
    assert got[b"i1"].startswith(b"i1 OK"), got
    c.send(b"i2 IDLE\r\n")
    ln = c.line()
    while not ln.startswith(b"+"):
        ln = c.line()
    c.send(b"DONE\r\ni3 NOOP\r\n")
    got = tagged_replies(c, {b"i2", b"i3"})
    assert got[b"i2"].startswith(b"i2 OK") and got[b"i3"].startswith(b"i3 OK"), got
    c.cmd(b"LOGOUT")
    c.s.close()


@pytest.mark.parametrize("compress", [True, False])
def test_large_literal(imap, compress):
    """A 1 MB APPEND literal, compressed in one go with a command after it (and, the
    same, in clear: an APPEND's literal is not held to the whole-command limit)."""
    c = plain(imap)
    c.s.settimeout(20)
    if compress:
        assert c.cmd(b"COMPRESS DEFLATE")[0].startswith(b"OK")
        c.compress()
    body = b"".join(b"%07d the quick brown fox jumps over the lazy dog\r\n" % i
                    for i in range(20000))
    msg = (b"From: a@example.test\r\nSubject: a megabyte\r\n"
           b"Message-ID: <mega@example.test>\r\n\r\n" + body)[:1 << 20]
    c.send(b"m1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\nm2 NOOP\r\n")
    got = tagged_replies(c, {b"m1", b"m2"})
    assert got[b"m1"].startswith(b"m1 OK"), got
    assert got[b"m2"].startswith(b"m2 OK"), got
    tagged, unt = c.cmd(b"SELECT INBOX")
    n = int(next(u for u in unt if u.endswith(b"EXISTS")).split()[1])
    tagged, unt = c.cmd(b"FETCH %d BODY.PEEK[]" % n)
    assert tagged.startswith(b"OK"), tagged
    assert unt[0].split(b"\r\n", 1)[1][:-1] == msg
    c.cmd(b"LOGOUT")
    c.s.close()


class Bits:
    """A fixed-Huffman deflate block written by hand (RFC 1951 3.2.6)."""

    def __init__(self):
        self.acc = self.n = 0
        self.out = bytearray()

    def bits(self, v, n):           # LSB first
        for i in range(n):
            self.acc |= ((v >> i) & 1) << self.n
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                self.acc = self.n = 0

    def code(self, v, n):           # Huffman codes: MSB first
        for i in reversed(range(n)):
            self.bits((v >> i) & 1, 1)

    def done(self):
        if self.n:
            self.out.append(self.acc)
        return bytes(self.out)


def test_commands_held_inside_the_inflater(imap):
    """Input that ends inside a long match: once the server's first 16 KiB are
    inflated, zlib has taken every byte from the socket and still holds the rest.
    Every command is answered without more bytes from the client."""
    c = plain(imap)
    c.s.settimeout(10)
    assert c.cmd(b"COMPRESS DEFLATE")[0].startswith(b"OK")
    c.compress()                    # for the replies; the input is made here
    b = Bits()
    b.bits(0, 1)                    # BFINAL 0
    b.bits(1, 2)                    # fixed Huffman
    for ch in b"x NOOP\r\n":
        b.code(0x30 + ch, 8)
    for _ in range(64):             # 64 x 258 bytes more of "x NOOP\r\n"
        b.code(0xc0 + 5, 8)         # length 258
        b.code(5, 5)                # distance 7-8 ...
        b.bits(1, 1)                # ... 8
    c.s.sendall(b.done())
    want = (8 + 64 * 258) // 8
    for i in range(want):
        ln = c.line()
        while not ln.startswith(b"x "):
            ln = c.line()
        assert ln == b"x OK NOOP completed", (i, ln)
    c.s.close()

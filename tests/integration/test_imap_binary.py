"""IMAP BINARY (RFC 3516) against hand-written expectations: BINARY[part] with the
transfer encoding undone (quoted-printable, base64, none), literal8 when the data
holds a NUL, <partial>, BINARY.SIZE, BINARY.PEEK versus \\Seen, [UNKNOWN-CTE] for an
encoding nobody knows, text specifiers refused, and APPEND of a literal8 message
that holds NULs, fetched back byte for byte."""

import socket

import pytest

from conftest import start_instance
from imap_raw import Client
from instance import wait_for
from imap_instance import greets as _greets

USER = "alice@example.test"
PASSWORD = "secret"

MSG = (b"From: a@example.test\r\n"
       b"To: alice@example.test\r\n"
       b"Subject: binary\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
       b"\r\n"
       b"--b1\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n"
       b"\r\n"
       b"caf=C3=A9 =3D ok=\r\n"
       b" soft\r\n"
       b"--b1\r\n"
       b"Content-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: base64\r\n"
       b"\r\n"
       b"AAECAwD/\r\n"
       b"--b1\r\n"
       b"Content-Type: application/x-foo\r\n"
       b"Content-Transfer-Encoding: x-uuencode\r\n"
       b"\r\n"
       b"begin 644 x\r\n"
       b"--b1\r\n"
       b"Content-Type: text/plain\r\n"
       b"\r\n"
       b"plain text\r\n"
       b"--b1--\r\n")


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=(USER,), domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "imapd_loopback_plaintext_login": "yes",
                                  "imapd_error_limit": "50"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    c = client(inst)
    tagged, _ = c.cmd(b"APPEND INBOX {%d+}\r\n" % len(MSG) + MSG)
    assert tagged.startswith(b"OK"), tagged
    c.cmd(b"LOGOUT")
    yield inst
    inst.cleanup()


def client(inst):
    c = Client(socket.create_connection(("127.0.0.1", inst.port("imap")), timeout=30))
    assert c.line().startswith(b"* OK")
    tagged, _ = c.cmd(f"LOGIN {USER} {PASSWORD}".encode())
    assert tagged.startswith(b"OK"), tagged
    return c


def fetch(c, items, seq=b"1"):
    tagged, unt = c.cmd(b"FETCH " + seq + b" " + items)
    return tagged, [u for u in unt if b" FETCH " in u]


def test_capability(imap):
    c = client(imap)
    _, unt = c.cmd(b"CAPABILITY")
    assert b"BINARY" in unt[0].split()


def test_binary_parts(imap):
    c = client(imap)
    assert c.cmd(b"EXAMINE INBOX")[0].startswith(b"OK")
    tagged, f = fetch(c, b"BINARY.PEEK[1]")
    assert tagged.startswith(b"OK"), tagged
    assert f == [b"* 1 FETCH (BINARY[1] {15}\r\ncaf\xc3\xa9 = ok soft)"]
    tagged, f = fetch(c, b"BINARY.PEEK[2]")
    assert f == [b"* 1 FETCH (BINARY[2] ~{6}\r\n\x00\x01\x02\x03\x00\xff)"]
    tagged, f = fetch(c, b"(BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[4])")
    assert f == [b"* 1 FETCH (BINARY.SIZE[1] 15 BINARY.SIZE[2] 6 BINARY.SIZE[4] 10)"]
    tagged, f = fetch(c, b"BINARY.PEEK[2]<1.3>")
    assert f == [b"* 1 FETCH (BINARY[2]<1> {3}\r\n\x01\x02\x03)"]
    tagged, f = fetch(c, b"BINARY.PEEK[4]")
    assert f == [b"* 1 FETCH (BINARY[4] {10}\r\nplain text)"]
    tagged, f = fetch(c, b"BINARY.PEEK[]")
    assert f == [b"* 1 FETCH (BINARY[] {%d}\r\n" % len(MSG) + MSG + b")"]
    # a part that is not there is empty
    tagged, f = fetch(c, b"BINARY.PEEK[9]")
    assert f == [b"* 1 FETCH (BINARY[9] {0}\r\n)"]


def test_unknown_cte_and_syntax(imap):
    c = client(imap)
    assert c.cmd(b"EXAMINE INBOX")[0].startswith(b"OK")
    tagged, f = fetch(c, b"BINARY.PEEK[3]")
    assert tagged.startswith(b"NO [UNKNOWN-CTE]"), tagged
    assert f == []
    for bad in (b"BINARY.PEEK[1.HEADER]", b"BINARY.PEEK[TEXT]", b"BINARY.SIZE[1]<0.5>",
                b"BINARY", b"BINARY.PEEK[1"):
        tagged, _ = fetch(c, bad)
        assert tagged.startswith(b"BAD"), (bad, tagged)


def test_binary_sets_seen_unless_peek(imap):
    c = client(imap)
    assert c.cmd(b"SELECT INBOX")[0].startswith(b"OK")
    assert c.cmd(b"STORE 1 -FLAGS.SILENT (\\Seen)")[0].startswith(b"OK")
    fetch(c, b"BINARY.PEEK[4]")
    _, f = fetch(c, b"FLAGS")
    assert b"\\Seen" not in f[0]
    _, f = fetch(c, b"BINARY[4]")
    assert f == [b"* 1 FETCH (FLAGS (\\Seen) BINARY[4] {10}\r\nplain text)"]
    _, f = fetch(c, b"FLAGS")
    assert b"\\Seen" in f[0]


def test_append_literal8(imap):
    data = (b"From: a@example.test\r\nSubject: nul\r\nContent-Transfer-Encoding: binary\r\n"
            b"\r\nbefore\x00after\r\n")
    c = client(imap)
    c.send(b"a8 APPEND INBOX ~{%d}\r\n" % len(data))
    assert c.line().startswith(b"+")
    c.send(data + b"\r\n")
    ln = c.line()
    assert ln.startswith(b"a8 OK [APPENDUID"), ln
    uid = ln.split()[4].rstrip(b"]")
    assert c.cmd(b"EXAMINE INBOX")[0].startswith(b"OK")
    tagged, unt = c.cmd(b"UID FETCH " + uid + b" (BINARY.PEEK[] BINARY.SIZE[1])")
    assert tagged.startswith(b"OK"), tagged
    f = [u for u in unt if b" FETCH " in u]
    assert f[0].endswith(b"BINARY[] ~{%d}\r\n" % len(data) + data + b" BINARY.SIZE[1] 14)"), f
    # NUL in an ordinary literal stays refused
    c.send(b"a9 APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    ln = c.line()
    assert ln.startswith(b"a9 BAD"), ln

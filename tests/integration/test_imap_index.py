"""The IMAP index cache (postern-imap-index(5)) through imaplib: FETCH of ENVELOPE,
BODY, BODYSTRUCTURE and RFC822.SIZE answers the same from a cold folder, from the
cache, and after the cache file was deleted, filled with garbage or truncated (each
ignored with a log line and rebuilt); a warm folder answers them without reading the
message file (shown by changing a file behind the server's back: the cached answer
stays, while BODY[HEADER], which reads the file, sees the change)."""

import imaplib
import os

import pytest

from conftest import start_instance
from instance import wait_for
from imap_instance import greets as _greets

USER = "alice@example.test"
PASSWORD = "secret"
ITEMS = "(UID RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)"

MSGS = [
    (b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
     b"Subject: first\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
     b"Message-ID: <i1@example.test>\r\n\r\nhello\r\n"),
    (b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
     b"Subject: =?UTF-8?Q?caf=C3=A9?=\r\nMessage-ID: <i2@example.test>\r\n"
     b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n"
     b"--x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\none\r\n"
     b"--x\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
     b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--x--\r\n"),
    (b"From: carol@example.test\nSubject: bare line ends\n\nline\nline\n"),
]


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=(USER,), domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "imapd_loopback_plaintext_login": "yes"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    c = connect(inst)
    for m in MSGS:
        assert c.append("INBOX", None, None, m)[0] == "OK"
    logout(inst, c)
    yield inst
    inst.cleanup()


def connect(inst):
    c = imaplib.IMAP4("127.0.0.1", inst.port("imap"), timeout=30)
    c.login(USER, PASSWORD)
    return c


def logout(inst, c):
    """LOGOUT, then wait for the session to have ended (it saves the cache then)."""
    mark = inst.log_mark()
    c.logout()
    inst.wait_log("logout: user=<alice@example.test>", since=mark)


def index_path(inst):
    return os.path.join(inst.maildir(USER), "postern-imap-index")


def answers(inst):
    c = connect(inst)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1:*", ITEMS)
    assert typ == "OK", data
    logout(inst, c)
    return data


def index_ok(inst, n):
    with open(index_path(inst), "rb") as f:
        data = f.read()
    assert data.startswith(b"postern-imap-index 1 ")
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1].split()
    assert last[0] == b"end" and int(last[1]) == n, last


def test_cache_is_written_and_used(imap):
    if os.path.exists(index_path(imap)):
        os.unlink(index_path(imap))
    cold = answers(imap)
    assert len(cold) == 3
    assert b'"first"' in cold[0] and b"RFC822.SIZE %d" % len(MSGS[0]) in cold[0]
    assert b'("application" "pdf" ("name" "a.pdf")' in cold[1]
    # bare LF counts as CRLF
    assert b"RFC822.SIZE %d" % (len(MSGS[2]) + MSGS[2].count(b"\n")) in cold[2]
    index_ok(imap, 3)
    assert answers(imap) == cold


def test_warm_folder_does_not_read_files(imap):
    cold = answers(imap)
    cur = os.path.join(imap.maildir(USER), "cur")
    path = next(os.path.join(cur, n) for n in os.listdir(cur)
                if open(os.path.join(cur, n), "rb").read() == MSGS[0])
    changed = MSGS[0].replace(b"Subject: first", b"Subject: other")
    with open(path, "r+b") as f:
        f.write(changed)
    try:
        c = connect(imap)
        c.select("INBOX", readonly=True)
        typ, data = c.fetch("1", "(ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b'"first"' in data[0][0]            # the cache
        assert data[0][1] == b"Subject: other\r\n\r\n"   # the file
        logout(imap, c)
    finally:
        with open(path, "r+b") as f:
            f.write(MSGS[0])
    assert answers(imap) == cold


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bitflip", "deleted",
                                    "other-validity"])
def test_damaged_cache_is_ignored_and_rebuilt(imap, damage):
    cold = answers(imap)
    path = index_path(imap)
    with open(path, "rb") as f:
        good = f.read()
    if damage == "garbage":
        bad = os.urandom(5000)
    elif damage == "truncated":
        bad = good[:len(good) // 2]
    elif damage == "bitflip":
        i = len(good) // 3
        bad = good[:i] + bytes([good[i] ^ 0x20]) + good[i + 1:]
    elif damage == "other-validity":
        head, rest = good.split(b"\n", 1)
        bad = b"postern-imap-index 1 1\n" + rest
    else:
        bad = None
    if bad is None:
        os.unlink(path)
    else:
        with open(path, "wb") as f:
            f.write(bad)
    mark = imap.log_mark()
    assert answers(imap) == cold
    if bad is not None:
        imap.wait_log("index cache of INBOX ignored and rebuilt", since=mark)
    index_ok(imap, 3)


def searches(inst):
    """The answers of SEARCH SUBJECT, LARGER and SMALLER over the folder."""
    c = connect(inst)
    c.select("INBOX", readonly=True)
    out = []
    for crit in ('SUBJECT "first"', 'SUBJECT "LINE"', 'SUBJECT "caf"', 'SUBJECT "nothing"',
                 'SUBJECT ""', "LARGER %d" % len(MSGS[0]), "SMALLER %d" % len(MSGS[0]),
                 'OR SUBJECT first SMALLER 100'):
        typ, data = c.search(None, crit)
        assert typ == "OK", (crit, data)
        out.append(data[0])
    c.literal = "café".encode()
    typ, data = c.search("UTF-8", "SUBJECT")
    assert typ == "OK", data
    out.append(data[0])
    logout(inst, c)
    return out


def test_search_from_cache_and_files_agree(imap):
    want = [b"1", b"3", b"2", b"", b"1 2 3", b"2", b"3", b"1 3", b"2"]
    os.unlink(index_path(imap))
    assert searches(imap) == want           # the files (no cache yet)
    answers(imap)
    index_ok(imap, 3)
    assert searches(imap) == want           # the cache


def test_search_subject_of_warm_folder_from_cache(imap):
    answers(imap)
    cur = os.path.join(imap.maildir(USER), "cur")
    path = next(os.path.join(cur, n) for n in os.listdir(cur)
                if open(os.path.join(cur, n), "rb").read() == MSGS[0])
    with open(path, "r+b") as f:
        f.write(MSGS[0].replace(b"Subject: first", b"Subject: other"))
    try:
        c = connect(imap)
        c.select("INBOX", readonly=True)
        assert c.search(None, 'SUBJECT "first"') == ("OK", [b"1"])    # the cache
        assert c.search(None, 'HEADER Subject "other"') == ("OK", [b"1"])  # the file
        logout(imap, c)
    finally:
        with open(path, "r+b") as f:
            f.write(MSGS[0])

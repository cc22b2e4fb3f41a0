"""IMAP4rev2 (RFC 9051) strictness after ENABLE IMAP4rev2: what RFC 9051 removed
(STATUS RECENT, SEARCH NEW / OLD / RECENT, FETCH RFC822 / RFC822.HEADER /
RFC822.TEXT, CHECK) is BAD there and still served to IMAP4rev1 sessions; RFC822.SIZE
stays in both.  And DELETE of a folder with children (RFC 9051 6.3.4): a selectable
parent loses its messages and becomes \\Noselect, a \\Noselect parent is NO
[HASCHILDREN]."""

import socket

import pytest

from conftest import start_instance
from imap_raw import Client
from instance import wait_for
from imap_instance import greets as _greets

USER = "rita@example.test"
PASSWORD = "secret"
TIMEOUT = 15
MSG = (b"From: a@example.test\r\nTo: rita@example.test\r\nSubject: rev2\r\n"
       b"Message-ID: <rev2@example.test>\r\n\r\nbody\r\n")


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=(USER,), domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "imapd_loopback_plaintext_login": "yes",
                                  "imapd_error_limit": "100"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


def login(inst, rev2):
    c = Client(socket.create_connection(("127.0.0.1", inst.port("imap")), timeout=TIMEOUT),
               TIMEOUT)
    assert c.line().startswith(b"* OK")
    tagged, _ = c.cmd(f"LOGIN {USER} {PASSWORD}".encode())
    assert tagged.startswith(b"OK"), tagged
    if rev2:
        tagged, unt = c.cmd(b"ENABLE IMAP4rev2")
        assert tagged.startswith(b"OK") and unt == [b"* ENABLED IMAP4rev2"], (tagged, unt)
    return c


def ok(c, text):
    tagged, unt = c.cmd(text)
    assert tagged.startswith(b"OK"), (text, tagged, unt)
    return unt


def bad(c, text):
    tagged, unt = c.cmd(text)
    assert tagged.startswith(b"BAD"), (text, tagged, unt)
    return tagged


@pytest.fixture(scope="module")
def one_message(imap):
    c = login(imap, False)
    c.send(b"ap APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    ln = c.line()
    while not ln.startswith(b"ap "):
        ln = c.line()
    assert ln.startswith(b"ap OK"), ln
    c.cmd(b"LOGOUT")
    c.s.close()


def test_removed_items_are_bad_after_enable(imap, one_message):
    c = login(imap, True)
    assert b"RECENT" in bad(c, b"STATUS INBOX (MESSAGES RECENT)")
    st = ok(c, b"STATUS INBOX (MESSAGES UNSEEN)")
    assert b"(MESSAGES 1 UNSEEN" in st[0], st
    bad(c, b'LIST "" "*" RETURN (STATUS (RECENT))')
    ok(c, b"SELECT INBOX")
    for key in (b"NEW", b"OLD", b"RECENT", b"NOT RECENT", b"OR SEEN NEW", b"(OLD)"):
        bad(c, b"SEARCH " + key)
        bad(c, b"UID SEARCH " + key)
    ok(c, b"SEARCH UNSEEN")
    for item in (b"RFC822", b"RFC822.HEADER", b"RFC822.TEXT", b"(FLAGS RFC822.TEXT)"):
        assert b"IMAP4rev2" in bad(c, b"FETCH 1 " + item)
        bad(c, b"UID FETCH 1:* " + item)
    # RFC822.SIZE is an IMAP4rev2 item, and so are the macros that hold it
    unt = ok(c, b"FETCH 1 (RFC822.SIZE)")
    assert unt == [b"* 1 FETCH (RFC822.SIZE %d)" % len(MSG)], unt
    unt = ok(c, b"FETCH 1 FAST")
    assert b"RFC822.SIZE %d" % len(MSG) in unt[0], unt
    ok(c, b"FETCH 1 BODY.PEEK[HEADER]")
    assert b"NOOP" in bad(c, b"CHECK")
    ok(c, b"NOOP")
    c.cmd(b"LOGOUT")
    c.s.close()


def test_rev1_sessions_keep_them(imap, one_message):
    c = login(imap, False)
    st = ok(c, b"STATUS INBOX (MESSAGES RECENT)")
    assert b"RECENT " in st[0], st
    ok(c, b'LIST "" "INBOX" RETURN (STATUS (RECENT))')
    ok(c, b"EXAMINE INBOX")
    for key in (b"NEW", b"OLD", b"RECENT", b"NOT RECENT"):
        unt = ok(c, b"SEARCH " + key)
        assert unt[0].startswith(b"* SEARCH"), unt
    for item in (b"RFC822.HEADER", b"RFC822.SIZE"):
        unt = ok(c, b"FETCH 1 " + item)
        assert (b"(" + item + b" ") in unt[0], unt
    unt = ok(c, b"FETCH 1 RFC822")
    assert unt[0].endswith(MSG + b")"), unt
    ok(c, b"CHECK")
    c.cmd(b"LOGOUT")
    c.s.close()


def list_names(c, pattern):
    out = {}
    for ln in ok(c, b'LIST "" "%s"' % pattern):
        attrs, rest = ln.split(b"(", 1)[1].split(b")", 1)
        out[rest.split(b'"."', 1)[1].strip().strip(b'"')] = attrs.split()
    return out


@pytest.mark.parametrize("rev2", [False, True])
def test_delete_with_children(imap, rev2):
    top = b"Par%d" % rev2
    c = login(imap, rev2)
    ok(c, b"CREATE %s.kid" % top)
    ok(c, b"CREATE %s" % top)
    c.send(b"ap APPEND %s {%d+}\r\n" % (top, len(MSG)) + MSG + b"\r\n")
    ln = c.line()
    while not ln.startswith(b"ap "):
        ln = c.line()
    assert ln.startswith(b"ap OK"), ln
    # a selectable parent: deleted, its messages gone, the name stays as \Noselect
    # (\NonExistent, which implies it, under IMAP4rev2)
    ok(c, b"DELETE %s" % top)
    names = list_names(c, top + b"*")
    assert top + b".kid" in names, names
    assert (b"\\NonExistent" if rev2 else b"\\Noselect") in names[top], names
    tagged, _ = c.cmd(b"SELECT %s" % top)
    assert tagged.startswith(b"NO"), tagged
    # a \Noselect parent with children: NO [HASCHILDREN], nothing changes
    tagged, _ = c.cmd(b"DELETE %s" % top)
    assert tagged.startswith(b"NO [HASCHILDREN]"), tagged
    assert top + b".kid" in list_names(c, top + b"*")
    # once the child is gone, the name is gone too
    ok(c, b"DELETE %s.kid" % top)
    assert list_names(c, top + b"*") == {}
    tagged, _ = c.cmd(b"DELETE %s" % top)
    assert tagged.startswith(b"NO [NONEXISTENT]"), tagged
    # a grandchild alone also counts
    ok(c, b"CREATE %s.a.b" % top)
    tagged, _ = c.cmd(b"DELETE %s" % top)
    assert tagged.startswith(b"NO [HASCHILDREN]"), tagged
    tagged, _ = c.cmd(b"DELETE %s.a" % top)
    assert tagged.startswith(b"NO [HASCHILDREN]"), tagged
    ok(c, b"DELETE %s.a.b" % top)
    c.cmd(b"LOGOUT")
    c.s.close()

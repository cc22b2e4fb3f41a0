"""All the IMAP connections of one user in one session process (imapd(8)): several
connections land in the same process (the pid in the log), another user's in another;
a STORE, EXPUNGE, MOVE or APPEND on one connection reaches the others idling on the
folder at once and the rest at their next command; an SMTP delivery wakes every idler;
a client stuck half-way through a command (or a literal) stalls no other connection of
the user; and imapd_session_connection_limit sends the connections beyond it to
another process."""

import imaplib
import re
import socket
import time

import pytest

from conftest import start_instance
from instance import wait_for
from imap_instance import LineClient, greets as _greets

USER = "alice@example.test"
OTHER = "bob@example.test"
PASSWORD = "secret"
TIMEOUT = 30
LINE_MAX = 8192             # imapd's longest command line, its end excluded
DISCARD_MAX = 65536         # the longest line skipped (its end included) before BYE

imaplib.Commands.setdefault("MOVE", ("SELECTED",))


def _instance(**config):
    settings = {"mynetworks": "192.0.2.0/24", "imapd_loopback_plaintext_login": "yes"}
    settings.update(config)
    inst = start_instance(users=(USER, OTHER, "carol@example.test", "dave@example.test"),
                          domains=("example.test",), config=settings)
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    return inst


@pytest.fixture(scope="module")
def imap(request):
    inst = _instance()
    yield inst
    inst.cleanup()


def connect(inst, user=USER):
    c = imaplib.IMAP4("127.0.0.1", inst.port("imap"), timeout=TIMEOUT)
    c.login(user, PASSWORD)
    return c


def ok(res):
    typ, data = res
    assert typ == "OK", data
    return data


def Raw(inst, user=USER):
    """A logged-in connection read line by line, for IDLE and half-sent commands."""
    return LineClient(inst, user, PASSWORD, timeout=TIMEOUT)


def pids(inst, user, mark, count):
    """The pids of the last count sessions of user since mark (waited for)."""
    def get():
        lines = inst.log_lines("session: user=<%s>" % user, since=mark)
        if len(lines) < count:
            return None
        return [int(re.search(r"\[(\d+)\]:", ln).group(1)) for ln in lines[-count:]]
    return wait_for(get, timeout=10, what="session log lines")


def append(c, subject, folder="INBOX"):
    msg = b"From: x@example.test\r\nSubject: %s\r\n\r\nbody\r\n" % subject.encode()
    ok(c.append(folder, None, None, msg))


def test_one_process_per_user(imap):
    mark = imap.log_mark()
    conns = [connect(imap) for _ in range(3)]
    other = connect(imap, OTHER)
    mine = pids(imap, USER, mark, 3)
    theirs = pids(imap, OTHER, mark, 1)
    assert len(set(mine)) == 1, mine
    assert theirs[0] not in mine
    for c in conns:
        ok(c.noop())
        c.logout()
    other.logout()


def test_store_expunge_move_append_reach_the_others(imap):
    user = "carol@example.test"
    a = connect(imap, user)
    for i in range(3):
        append(a, "m%d" % i)
    ok(a.create("Kept"))
    ok(a.select("INBOX"))
    idler = Raw(imap, user)
    idler.cmd(b"t SELECT INBOX")
    idler.idle()
    later = Raw(imap, user)             # not idling: told at its next command
    later.cmd(b"t SELECT INBOX")

    ok(a.store("3", "+FLAGS", "(\\Flagged)"))
    ln, took = idler.wait_for_line(rb"^\* 3 FETCH .*\\Flagged", 5)
    assert took < 0.1, took

    append(a, "new one")
    _, took = idler.wait_for_line(rb"^\* 4 EXISTS", 5)
    assert took < 0.1, took

    ok(a.store("2", "+FLAGS", "(\\Deleted)"))
    ok(a.expunge())
    _, took = idler.wait_for_line(rb"^\* 2 EXPUNGE", 5)
    assert took < 0.1, took

    ok(a.uid("MOVE", "1", "Kept"))
    _, took = idler.wait_for_line(rb"^\* 1 EXPUNGE", 5)
    assert took < 0.1, took
    idler.done()

    out = b"".join(later.cmd(b"t NOOP"))
    assert b"EXPUNGE" in out and b"EXISTS" in out and b"\\Flagged" in out, out
    idler.close()
    later.close()
    a.logout()


def test_delivery_wakes_every_idler(imap):
    user = "dave@example.test"
    idlers = []
    for _ in range(3):
        r = Raw(imap, user)
        r.cmd(b"t SELECT INBOX")
        r.idle()
        idlers.append(r)
    imap.submit("x@example.test", [user], b"Subject: wake\r\n\r\nhello\r\n")
    for r in idlers:
        _, took = r.wait_for_line(rb"^\* 1 EXISTS", 15)
        r.done()
        r.close()


def test_stuck_client_stalls_no_one(imap):
    a = connect(imap)
    big = b"Subject: big\r\n\r\n" + b"x" * 78 + b"\r\n"
    for _ in range(2):
        ok(a.append("INBOX", None, None, big * 2500))
    a.logout()
    stuck = Raw(imap)
    stuck.sock.sendall(b"s1 SELE")                      # half a command line
    stuck_lit = Raw(imap)
    stuck_lit.sock.sendall(b"s2 APPEND INBOX {100}\r\n")
    assert stuck_lit.f.readline().startswith(b"+ ")
    stuck_lit.sock.sendall(b"From: half")              # half the literal
    slow = Raw(imap)                                    # asks, never reads
    slow.cmd(b"t SELECT INBOX")
    for _ in range(20):
        slow.sock.sendall(b"f FETCH 1:* (FLAGS BODY.PEEK[])\r\n")
    c = Raw(imap)
    start = time.monotonic()
    for i in range(20):
        c.cmd(b"t NOOP")
    c.cmd(b"t SELECT INBOX")
    c.cmd(b"t FETCH 1:* (FLAGS)")
    assert time.monotonic() - start < 3
    # the stuck ones are still served once they go on
    stuck.sock.sendall(b"CT INBOX\r\n")
    stuck.wait_for_line(rb"^s1 OK", 5)
    stuck_lit.sock.sendall(b"x" * 90 + b"\r\n")
    stuck_lit.wait_for_line(rb"^s2 OK", 5)
    for r in (stuck, stuck_lit, slow, c):
        r.close()


def test_connection_limit():
    inst = _instance(imapd_session_connection_limit="2")
    try:
        mark = inst.log_mark()
        conns = [connect(inst) for _ in range(3)]
        got = pids(inst, USER, mark, 3)
        assert got[0] == got[1] and got[2] != got[0], got
        conns[0].logout()
        time.sleep(0.5)
        conns.append(connect(inst))         # room again in the first process
        got = pids(inst, USER, mark, 4)
        assert got[3] in (got[0], got[2]), got
        for c in conns[1:]:
            c.logout()
    finally:
        inst.cleanup()


def test_hostile_input_after_login(imap):
    r = Raw(imap, OTHER)
    # pipelined in one packet, answered in order
    r.sock.sendall(b"p1 NOOP\r\np2 CAPABILITY\r\np3 NOOP\r\n")
    tags = []
    while len(tags) < 3:
        ln = r.f.readline()
        if ln[:1] != b"*":
            tags.append(ln.split(b" ")[0])
    assert tags == [b"p1", b"p2", b"p3"], tags
    # a literal that comes in pieces
    r.sock.sendall(b"a1 SELECT {5}\r\n")
    assert r.f.readline().startswith(b"+ ")
    r.sock.sendall(b"IN")
    time.sleep(0.1)
    r.sock.sendall(b"BOX\r\n")
    r.wait_for_line(rb"^a1 OK", 5)
    # a line over the line limit is skipped and answered BAD; the connection goes on
    r.sock.sendall(b"b1 NOOP " + b"x" * 9000 + b"\r\n")
    r.wait_for_line(rb"^b1 BAD", 5)
    r.sock.sendall(b"b2 FETCH 1 FL\x00AGS\r\n")
    r.wait_for_line(rb"^b2 BAD", 5)
    # a line one byte over the limit is too long also when a bare LF ends it
    r.sock.sendall(b"b3 NOOP " + b"x" * (LINE_MAX + 1 - 8) + b"\n")
    ln, _ = r.wait_for_line(rb"^b3 BAD", 5)
    assert b"too long" in ln, ln
    # skipped up to 65536 bytes with its end: BAD, and the connection goes on
    r.sock.sendall(b"b4 NOOP " + b"x" * (DISCARD_MAX - 10) + b"\r\n")
    r.wait_for_line(rb"^b4 BAD", 5)
    r.sock.sendall(b"i IDLE\r\n")
    assert r.f.readline().startswith(b"+ ")
    r.sock.sendall(b"NOT DONE\r\n")
    r.wait_for_line(rb"^i BAD", 5)
    r.cmd(b"t NOOP")
    # a literal+ over its limit: its bytes are coming, the connection ends
    r.sock.sendall(b"c1 SELECT {999999+}\r\n")
    r.wait_for_line(rb"^c1 BAD \[TOOBIG\]", 5)
    r.wait_for_line(rb"^\* BYE", 5)
    assert r.f.readline() == b""
    r.close()
    # a line longer than can be skipped ends the connection, a byte over is enough
    r = Raw(imap, OTHER)
    try:
        r.sock.sendall(b"d1 NOOP " + b"y" * (DISCARD_MAX - 9) + b"\r\n")
    except OSError:
        pass
    r.wait_for_line(rb"^\* BYE", 5)
    r.close()
    # the others of the user were not disturbed
    c = connect(imap, OTHER)
    ok(c.noop())
    c.logout()


def test_error_limit_ends_at_once():
    """The refusal that reaches imapd_error_limit (here a NUL, answered by the
    reader before any command runs) says BYE and the connection ends then: the
    command sent after it is not run."""
    inst = _instance(imapd_error_limit="2")
    try:
        r = Raw(inst, OTHER)
        r.sock.sendall(b"e1 NOOP\x00\r\n")
        r.wait_for_line(rb"^e1 BAD", 5)
        r.sock.sendall(b"e2 NOOP\x00\r\ne3 NOOP\r\n")
        lines = []
        for _ in range(10):
            ln = r.f.readline()
            if not ln:
                break
            lines.append(ln)
        assert any(ln.startswith(b"* BYE") for ln in lines), lines
        assert not any(ln.startswith(b"e3 ") for ln in lines), lines
        r.close()
    finally:
        inst.cleanup()


def test_line_limits_before_login(imap):
    """The pre-login reader holds the same bounds: one byte over the line limit
    ended by a bare LF is BAD, a line skipped to 65536 bytes is BAD, one byte more
    is BYE."""
    s = socket.create_connection(("127.0.0.1", imap.port("imap")), timeout=TIMEOUT)
    f = s.makefile("rb")
    try:
        assert f.readline().startswith(b"* OK")
        s.sendall(b"p1 NOOP " + b"x" * (LINE_MAX + 1 - 8) + b"\n")
        ln = f.readline()
        assert ln.startswith(b"p1 BAD") and b"too long" in ln, ln
        s.sendall(b"p2 NOOP " + b"x" * (DISCARD_MAX - 10) + b"\r\n")
        ln = f.readline()
        assert ln.startswith(b"p2 BAD") and b"too long" in ln, ln
        s.sendall(b"p3 NOOP\r\n")
        assert f.readline().startswith(b"p3 OK")
        try:
            s.sendall(b"p4 NOOP " + b"x" * (DISCARD_MAX - 9) + b"\r\n")
        except OSError:
            pass
        assert f.readline().startswith(b"* BYE")
    finally:
        f.close()
        s.close()

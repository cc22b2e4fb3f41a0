"""CONDSTORE and QRESYNC (RFC 7162) through imaplib, with the commands imaplib lacks
sent as raw lines over its connection: ENABLE, HIGHESTMODSEQ in SELECT and STATUS,
FETCH MODSEQ and CHANGEDSINCE, STORE UNCHANGEDSINCE with MODIFIED, SEARCH MODSEQ; two
sessions on one folder where one changes and expunges and the other resyncs with
SELECT (QRESYNC ...), before and after a restart; VANISHED instead of EXPUNGE once
QRESYNC is on (also in IDLE); MODSEQ never going back when the session process is
killed with SIGKILL mid-command; and bad arguments answered BAD."""

import imaplib
import os
import re
import signal
import time

import pytest

from conftest import start_instance
from instance import wait_for
from imap_instance import greets as _greets

PASSWORD = "secret"
USERS = ("alice@example.test", "bob@example.test", "carol@example.test",
         "dave@example.test", "erin@example.test", "frank@example.test")


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=USERS, domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "imapd_loopback_plaintext_login": "yes",
                                  "imapd_error_limit": "200"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


def connect(inst, user):
    c = imaplib.IMAP4("127.0.0.1", inst.port("imap"), timeout=60)
    c.login(user, PASSWORD)
    return c


def raw(c, line):
    """Sends "TAG line" on imaplib's connection and reads up to the tagged reply:
    (status, tagged text, untagged lines).  Literals are read and kept inline."""
    tag = c._new_tag()
    c.send(tag + b" " + (line.encode() if isinstance(line, str) else line) + b"\r\n")
    untagged = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ln = c._get_line()
        m = re.search(rb"\{(\d+)\}$", ln)
        if m:
            ln += b"\r\n" + c.read(int(m.group(1))) + c._get_line()
        if ln.startswith(tag + b" "):
            status, _, text = ln[len(tag) + 1:].partition(b" ")
            return status.decode(), text.decode(errors="replace"), untagged
        untagged.append(ln.decode(errors="replace"))
    raise AssertionError(f"no tagged reply to {line!r}")


def ok(c, line):
    status, text, untagged = raw(c, line)
    assert status == "OK", (line, status, text, untagged)
    return text, untagged


def bad(c, line):
    status, text, untagged = raw(c, line)
    assert status == "BAD", (line, status, text, untagged)
    return text


def code(lines, name):
    """The number of response code [NAME n] in the lines, or None."""
    for ln in lines:
        m = re.search(r"\[" + name + r" (\d+)\]", ln)
        if m:
            return int(m.group(1))
    return None


def fetches(lines):
    """{uid: (flags, modseq)} of the untagged FETCH lines."""
    out = {}
    for ln in lines:
        if not re.match(r"\* \d+ FETCH ", ln):
            continue
        uid = re.search(r"UID (\d+)", ln)
        ms = re.search(r"MODSEQ \((\d+)\)", ln)
        fl = re.search(r"FLAGS \(([^)]*)\)", ln)
        out[int(uid.group(1)) if uid else None] = (
            set(fl.group(1).split()) if fl else None, int(ms.group(1)) if ms else None)
    return out


def vanished(lines, earlier):
    """The UIDs of the VANISHED lines of the kind asked for."""
    out = set()
    for ln in lines:
        m = re.match(r"\* VANISHED (\(EARLIER\) )?([\d:,]+)$", ln)
        if m and bool(m.group(1)) == earlier:
            for part in m.group(2).split(","):
                lo, _, hi = part.partition(":")
                out.update(range(int(lo), int(hi or lo) + 1))
    return out


def fill(inst, user, n, folder="INBOX"):
    c = connect(inst, user)
    for i in range(n):
        typ, data = c.append(folder, None, None,
                             b"Subject: m%d\r\nFrom: a@example.test\r\n\r\nbody %d\r\n" % (i, i))
        assert typ == "OK", data
    c.logout()


def select_state(c, args=""):
    text, lines = ok(c, "SELECT INBOX" + args)
    return code(lines, "UIDVALIDITY"), code(lines + [text], "HIGHESTMODSEQ"), lines


def test_capability_and_enable(imap):
    c = connect(imap, USERS[0])
    text, lines = ok(c, "CAPABILITY")
    caps = lines[0].split()
    assert "CONDSTORE" in caps and "QRESYNC" in caps
    _, lines = ok(c, "ENABLE QRESYNC")
    assert lines == ["* ENABLED QRESYNC"]
    _, lines = ok(c, "ENABLE QRESYNC CONDSTORE X-UNKNOWN")
    assert lines == ["* ENABLED"]          # both on already (QRESYNC implies CONDSTORE)
    c.logout()


def test_modseq_fetch_changedsince_status(imap):
    user = USERS[0]
    fill(imap, user, 4)
    c = connect(imap, user)
    text, lines = ok(c, "STATUS INBOX (MESSAGES HIGHESTMODSEQ)")
    st = re.search(r"HIGHESTMODSEQ (\d+)", lines[0])
    assert st and "MESSAGES 4" in lines[0], lines
    uv, hms, _ = select_state(c, " (CONDSTORE)")
    assert hms == int(st.group(1)) and hms > 0
    _, lines = ok(c, "UID FETCH 1:* (FLAGS MODSEQ)")
    f = fetches(lines)
    assert len(f) == 4 and all(ms is not None and 0 < ms <= hms for _, ms in f.values())
    uids = sorted(f)
    # A flag change gives that message alone a MODSEQ above every other.
    _, lines = ok(c, "UID STORE %d +FLAGS (\\Flagged)" % uids[1])
    after = fetches(lines)
    assert after[uids[1]][1] > hms and "\\Flagged" in after[uids[1]][0], lines
    _, lines = ok(c, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
    changed = fetches(lines)
    assert set(changed) == {uids[1]} and changed[uids[1]][1] == after[uids[1]][1], lines
    # non-UID FETCH with CHANGEDSINCE: MODSEQ implied
    _, lines = ok(c, "FETCH 1:* (UID) (CHANGEDSINCE %d)" % hms)
    assert set(fetches(lines)) == {uids[1]}
    # An implicit \Seen by a body FETCH carries the new MODSEQ once CONDSTORE is on.
    _, lines = ok(c, "UID FETCH %d (BODY[TEXT])" % uids[2])
    f2 = fetches(lines)
    assert "\\Seen" in f2[uids[2]][0] and f2[uids[2]][1] > after[uids[1]][1], lines
    text, lines = ok(c, "SEARCH MODSEQ %d" % (hms + 1))
    m = re.match(r"\* SEARCH ([\d ]+) \(MODSEQ (\d+)\)$", lines[0])
    assert m and sorted(map(int, m.group(1).split())) == [2, 3], lines
    assert int(m.group(2)) == f2[uids[2]][1]
    text, lines = ok(c, 'UID SEARCH MODSEQ "/flags/\\\\flagged" all %d' % (hms + 1))
    assert re.match(r"\* SEARCH [\d ]+ \(MODSEQ \d+\)$", lines[0]), lines
    text, lines = ok(c, "SEARCH MODSEQ 9223372036854775807")
    assert lines == ["* SEARCH"]
    # ESEARCH (RFC 4731) carries the highest MODSEQ of what matched (RFC 7162 3.1.5)
    text, lines = ok(c, "SEARCH RETURN (ALL COUNT) MODSEQ %d" % (hms + 1))
    m = re.match(r'\* ESEARCH \(TAG "[^"]+"\) COUNT 2 ALL 2:3 MODSEQ (\d+)$', lines[0])
    assert m and int(m.group(1)) == f2[uids[2]][1], lines
    text, lines = ok(c, "SEARCH RETURN (COUNT) MODSEQ 9223372036854775807")
    assert re.match(r'\* ESEARCH \(TAG "[^"]+"\) COUNT 0$', lines[0]), lines
    c.logout()


def test_unchangedsince(imap):
    user = USERS[1]
    fill(imap, user, 3)
    a, b = connect(imap, user), connect(imap, user)
    ok(a, "ENABLE CONDSTORE")
    _, hms, _ = select_state(a)
    select_state(b)
    _, lines = ok(a, "UID FETCH 1:* (MODSEQ)")
    ms = {u: m for u, (_, m) in fetches(lines).items()}
    u1, u2, u3 = sorted(ms)
    ok(b, "UID STORE %d +FLAGS (\\Answered)" % u2)     # the other session changes u2
    text, lines = ok(a, "UID STORE %d:%d (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)"
                     % (u1, u3, max(ms.values())))
    assert "[MODIFIED %d]" % u2 in text, (text, lines)
    got = fetches(lines)
    assert u1 in got and u3 in got and got[u1][1] > max(ms.values()), lines
    # u2 is told only as the other session's change (its flags, no \Seen)
    assert u2 not in got or "\\Seen" not in got[u2][0], lines
    assert got[u1][0] is None and got[u3][0] is None    # .SILENT: MODSEQ alone
    _, lines = ok(a, "UID FETCH %d (FLAGS)" % u2)
    assert "\\Seen" not in fetches(lines)[u2][0]
    # Non-UID STORE: MODIFIED names message numbers; 0 fails every message.
    text, lines = ok(a, "STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\\Draft)")
    assert "[MODIFIED 1:3]" in text and not fetches(lines), (text, lines)
    _, lines = ok(a, "UID FETCH 1:* (MODSEQ)")
    now = {u: m for u, (_, m) in fetches(lines).items()}
    text, lines = ok(a, "STORE 2 (UNCHANGEDSINCE %d) -FLAGS (\\Answered)" % now[u2])
    assert "MODIFIED" not in text and fetches(lines)[u2][1] > now[u2], (text, lines)
    a.logout()
    b.logout()


def test_qresync_two_sessions_and_restart(imap):
    user = USERS[2]
    fill(imap, user, 8)
    a = connect(imap, user)
    ok(a, "ENABLE QRESYNC")
    uv, hms, _ = select_state(a)
    _, lines = ok(a, "UID FETCH 1:* (FLAGS MODSEQ)")
    known = sorted(fetches(lines))
    assert len(known) == 8
    a.logout()
    # Another session changes flags and expunges while the first is away.
    b = connect(imap, user)
    ok(b, "SELECT INBOX")
    ok(b, "UID STORE %d,%d +FLAGS (\\Flagged)" % (known[0], known[5]))
    ok(b, "UID STORE %d,%d,%d +FLAGS (\\Deleted)" % (known[1], known[2], known[6]))
    _, lines = ok(b, "EXPUNGE")
    assert sum(1 for ln in lines if ln.endswith(" EXPUNGE")) == 3      # no QRESYNC: EXPUNGE
    b.logout()
    want_gone = {known[1], known[2], known[6]}

    def resync(c, args):
        text, lines = ok(c, "SELECT INBOX (QRESYNC (%d %d%s))" % (uv, hms, args))
        return lines, vanished(lines, True), fetches(lines)

    a = connect(imap, user)
    ok(a, "ENABLE QRESYNC")
    lines, gone, changed = resync(a, " %d:%d" % (known[0], known[-1]))
    assert gone == want_gone, lines
    assert set(changed) == {known[0], known[5]}, lines
    assert all("\\Flagged" in fl and ms > hms for fl, ms in changed.values())
    before = changed
    # known-uids restricts both answers
    lines, gone, changed = resync(a, " %d,%d" % (known[0], known[1]))
    assert gone == {known[1]} and set(changed) == {known[0]}, lines
    # Reselecting says CLOSED for the folder it replaces.
    assert any("[CLOSED]" in ln for ln in lines)
    # A stale UIDVALIDITY: no resync at all.
    text, lines = ok(a, "SELECT INBOX (QRESYNC (%d %d))" % (uv + 1, hms))
    assert not vanished(lines, True) and not fetches(lines)
    a.logout()

    imap.stop()
    imap.start()
    wait_for(lambda: _greets(imap), what="IMAP port to answer after the restart")
    a = connect(imap, user)
    ok(a, "ENABLE QRESYNC")
    lines, gone, changed = resync(a, "")
    assert gone == want_gone and changed == before, lines
    uv2, hms2, _ = select_state(a)
    assert uv2 == uv and hms2 >= max(ms for _, ms in before.values())
    a.logout()


def test_vanished_live_idle_and_fetch(imap):
    user = USERS[3]
    fill(imap, user, 6)
    a, b = connect(imap, user), connect(imap, user)
    ok(a, "ENABLE QRESYNC")
    uv, hms, _ = select_state(a)
    ok(b, "SELECT INBOX")
    _, lines = ok(a, "UID FETCH 1:* (UID)")
    uids = sorted(fetches(lines))
    ok(b, "UID STORE %d +FLAGS (\\Deleted)" % uids[0])
    ok(b, "EXPUNGE")
    _, lines = ok(a, "NOOP")
    assert vanished(lines, False) == {uids[0]} and not any("EXPUNGE" in ln for ln in lines)
    # IDLE: the other session's expunge arrives as VANISHED.
    tag = a._new_tag()
    a.send(tag + b" IDLE\r\n")
    assert a._get_line().startswith(b"+ ")
    ok(b, "UID STORE %d +FLAGS (\\Deleted)" % uids[1])
    ok(b, "EXPUNGE")
    # the \Deleted flag may be told first, as its own FETCH; never an EXPUNGE
    for _ in range(5):
        line = a._get_line().decode()
        if not re.match(r"\* \d+ FETCH \(FLAGS \(\\Deleted\) UID %d MODSEQ" % uids[1], line):
            break
    assert line == "* VANISHED %d" % uids[1], line
    a.send(b"DONE\r\n")
    assert a._get_line().startswith(tag + b" OK")
    # Our own EXPUNGE answers VANISHED too.
    ok(a, "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[2])
    _, lines = ok(a, "EXPUNGE")
    assert vanished(lines, False) == {uids[2]}
    # UID FETCH ... (CHANGEDSINCE n VANISHED)
    ok(b, "UID STORE %d +FLAGS (\\Seen)" % uids[4])
    _, lines = ok(a, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % hms)
    assert vanished(lines, True) == set(uids[:3]), lines
    assert set(fetches(lines)) == {uids[4]}, lines
    _, lines = ok(a, "UID FETCH %d:%d (FLAGS) (CHANGEDSINCE %d VANISHED)"
                  % (uids[1], uids[1], hms))
    assert vanished(lines, True) == {uids[1]} and not fetches(lines)
    a.logout()
    b.logout()


def session_pid(inst, user, mark):
    lines = inst.log_lines("session: user=<%s>" % user, since=mark)
    return int(re.search(r"\[(\d+)\]:", lines[-1]).group(1)) if lines else None


def test_kill9_never_takes_modseq_back(imap):
    user = USERS[4]
    fill(imap, user, 5)
    seen = {}               # uid -> highest MODSEQ ever told to a client
    top = 0
    uv0 = None
    deadline = time.monotonic() + 240
    for rnd in range(6):
        assert time.monotonic() < deadline
        mark = imap.log_mark()
        c = wait_for(lambda: _try_connect(imap, user), timeout=60, what="a login after the kill")
        ok(c, "ENABLE CONDSTORE")
        uv, hms, _ = select_state(c)
        uv0 = uv0 or uv
        assert uv == uv0, "the UID list was rebuilt"
        assert hms >= top, (hms, top)
        _, lines = ok(c, "UID FETCH 1:* (MODSEQ)")
        for u, (_, ms) in fetches(lines).items():
            assert ms >= seen.get(u, 0), (u, ms, seen)
        # Pipelined flag changes; the process dies among them.
        burst = b"".join(b"k%d UID STORE 1:* %sFLAGS (\\Flagged)\r\n" % (i, b"+-"[i % 2:i % 2 + 1])
                         for i in range(40))
        c.send(burst)
        got = []
        for i in range(3 + rnd):
            ln = c._get_line().decode()
            got.append(ln)
        pid = wait_for(lambda: session_pid(imap, user, mark), what="the session's pid")
        os.kill(pid, signal.SIGKILL)
        try:
            while True:
                got.append(c._get_line().decode())
        except (imaplib.IMAP4.abort, OSError, EOFError):
            pass
        for u, (_, ms) in fetches(got).items():
            seen[u] = max(seen.get(u, 0), ms)
            top = max(top, ms)
        wait_for(lambda: not _alive(pid), what="the killed session to be gone")
    c = wait_for(lambda: _try_connect(imap, user), timeout=60, what="a final login")
    ok(c, "ENABLE CONDSTORE")
    uv, hms, _ = select_state(c)
    assert uv == uv0 and hms >= top
    c.logout()


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _try_connect(inst, user):
    try:
        return connect(inst, user)
    except (imaplib.IMAP4.error, OSError):
        return None


def test_bad_arguments(imap):
    user = USERS[5]
    fill(imap, user, 3)
    c = connect(imap, user)
    bad(c, "SELECT INBOX (QRESYNC (1 1))")          # QRESYNC not enabled
    ok(c, "ENABLE QRESYNC")
    uv, hms, _ = select_state(c)
    for args in ("(QRESYNC (%d 0))" % uv,
                 "(QRESYNC (%d 9223372036854775808))" % uv,
                 "(QRESYNC (%d 99999999999999999999999))" % uv,
                 "(QRESYNC (0 1))", "(QRESYNC (4294967296 1))",
                 "(QRESYNC (%d 1 1:*))" % uv,
                 "(QRESYNC (%d 1 1:3 (1:2 1:3)))" % uv,
                 "(QRESYNC (%d 1 1:3 (1:2 1:2))" % uv,
                 "(QRESYNC (%d 1 1:3 (1:2)))" % uv,
                 "(QRESYNC (%d 1 0:3))" % uv,
                 "(QRESYNC %d 1)" % uv, "(QRESYNC)", "(QRESYNC ())",
                 "(QRESYNC (%d 1) QRESYNC (%d 1))" % (uv, uv),
                 "(CONDSTORE CONDSTORE)", "(FOO)", "()", "(CONDSTORE", "CONDSTORE"):
        bad(c, "SELECT INBOX " + args)
    # 10,000 ranges of known UIDs: too long a line, then too many ranges in one.
    many = ",".join("%d" % (2 * i + 1) for i in range(10000))
    bad(c, "SELECT INBOX (QRESYNC (%d 1 %s))" % (uv, many))
    many = ",".join("%d" % (2 * i + 1) for i in range(1500))
    bad(c, "SELECT INBOX (QRESYNC (%d 1 %s))" % (uv, many))
    # a seq-match walk as long as it may be is still answered
    ok(c, "SELECT INBOX (QRESYNC (%d 1 1:4294967294 (1:4294967294 1:4294967294)))" % uv)
    for cmd in ("FETCH 1 (FLAGS) (CHANGEDSINCE 0)",
                "FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)",
                "FETCH 1 (FLAGS) (CHANGEDSINCE)", "FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)",
                "UID FETCH 1:* (FLAGS) (VANISHED)", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE -1)",
                "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)",
                "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1", "UID FETCH 1:* (FLAGS) ()",
                "STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)",
                "STORE 1 (UNCHANGEDSINCE 18446744073709551616) +FLAGS (\\Seen)",
                "STORE 1 (UNCHANGEDSINCE 5 +FLAGS (\\Seen)",
                "STORE 1 (CHANGEDSINCE 5) +FLAGS (\\Seen)",
                "SEARCH MODSEQ", "SEARCH MODSEQ x", "SEARCH MODSEQ 99999999999999999999",
                'SEARCH MODSEQ "/flags/\\\\seen" bogus 5', 'SEARCH MODSEQ "/other" all 5',
                "STATUS INBOX (HIGHESTMODSEQ X)"):
        bad(c, cmd)
    ok(c, "NOOP")
    assert c.socket().fileno() >= 0
    c.logout()
    assert "AddressSanitizer" not in imap.log() and "runtime error" not in imap.log()

"""IMAP extensions after login, through imaplib and a small line client where imaplib
has no command for them: ESEARCH and SEARCHRES ("$" in FETCH, STORE, COPY, MOVE,
SEARCH and the UID forms, emptied by SELECT), LIST-EXTENDED and LIST-STATUS,
STATUS=SIZE and DELETED, APPENDLIMIT ([TOOBIG] before the literal is read),
CREATE-SPECIAL-USE ([USEATTR]), UTF8=ACCEPT (UTF-8 folder names, APPEND UTF8), and
IMAP4rev2 after ENABLE (no \\Recent, ESEARCH, LIST in SELECT); then offlineimap3
syncing both ways and a second run that changes nothing."""

import imaplib
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import start_instance
from instance import wait_for
from imap_instance import greets as _greets

PASSWORD = "secret"
USERS = ("erin@example.test", "frank@example.test", "gina@example.test",
         "hugo@example.test", "ivy@example.test")
LIMIT = 200000


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=USERS, domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "message_size_limit": str(LIMIT),
                                  "imapd_loopback_plaintext_login": "yes",
                                  "imapd_error_limit": "100"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


class Raw:
    """One logged-in connection speaking raw lines."""

    def __init__(self, inst, user):
        self.sock = socket.create_connection(("127.0.0.1", inst.port("imap")), timeout=30)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        out = self.cmd(b"l LOGIN %s %s" % (user.encode(), PASSWORD.encode()))
        assert out[-1].startswith(b"l OK"), out

    def cmd(self, line, tag=None):
        tag = tag or line.split(b" ", 1)[0]
        self.sock.sendall(line + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        out = []
        for _ in range(100000):
            ln = self.f.readline()
            assert ln, out
            out.append(ln)
            if ln.startswith(tag + b" "):
                return out
        raise AssertionError("no tagged reply")

    def ok(self, line):
        out = self.cmd(line)
        assert out[-1].split(b" ")[1] == b"OK", out
        return out[:-1]

    def close(self):
        try:
            self.cmd(b"z LOGOUT")
        finally:
            self.sock.close()


def append(r, box, body, flags=b""):
    r.sock.sendall(b"a APPEND %s %s{%d+}\r\n" % (box, flags + b" " if flags else b"",
                                                  len(body)) + body + b"\r\n")
    out = r.until(b"a")
    assert out[-1].startswith(b"a OK"), out
    return int(re.search(rb"APPENDUID \d+ (\d+)", out[-1]).group(1))


def msg(i):
    return (b"From: x@example.test\r\nSubject: m%d\r\nMessage-ID: <e%d@example.test>\r\n"
            b"\r\nbody %d\r\n" % (i, i, i))


def esearch(out):
    lines = [ln for ln in out if ln.startswith(b"* ESEARCH")]
    assert len(lines) == 1, out
    return lines[0].rstrip(b"\r\n")


def test_capabilities(imap):
    r = Raw(imap, USERS[0])
    capa = r.ok(b"c CAPABILITY")[0].split()
    for want in (b"IMAP4rev1", b"IMAP4rev2", b"ESEARCH", b"SEARCHRES", b"LIST-EXTENDED",
                 b"LIST-STATUS", b"STATUS=SIZE", b"CREATE-SPECIAL-USE", b"UTF8=ACCEPT",
                 b"SPECIAL-USE", b"APPENDLIMIT=%d" % LIMIT):
        assert want in capa, capa
    r.close()


def test_esearch_and_searchres(imap):
    r = Raw(imap, USERS[0])
    r.ok(b"c CREATE Res")
    r.ok(b"c CREATE ResTo")
    uids = [append(r, b"Res", msg(i), b"(\\Seen)" if i % 2 else b"") for i in range(6)]
    r.ok(b"s SELECT Res")
    # seq 1..6; unseen ones are 1, 3, 5
    line = esearch(r.ok(b"t1 SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN"))
    assert line == b'* ESEARCH (TAG "t1") MIN 1 MAX 5 COUNT 3 ALL 1,3,5', line
    line = esearch(r.ok(b"t2 UID SEARCH RETURN (COUNT) SEEN"))
    assert line == b'* ESEARCH (TAG "t2") UID COUNT 3', line
    line = esearch(r.ok(b"t3 UID SEARCH RETURN () ALL"))
    assert line == b'* ESEARCH (TAG "t3") UID ALL %d:%d' % (uids[0], uids[-1]), line
    line = esearch(r.ok(b"t4 SEARCH RETURN (MIN COUNT) SUBJECT nothing-like-it"))
    assert line == b'* ESEARCH (TAG "t4") COUNT 0', line
    # plain SEARCH keeps the RFC 3501 answer
    assert r.ok(b"t5 SEARCH UNSEEN")[0] == b"* SEARCH 1 3 5\r\n"
    # SAVE alone: no ESEARCH, then "$" in FETCH, STORE, SEARCH, COPY, MOVE and UID forms
    out = r.ok(b"v1 SEARCH RETURN (SAVE) UNSEEN")
    assert not any(ln.startswith(b"* ESEARCH") for ln in out), out
    out = r.ok(b"v2 FETCH $ (UID)")
    got = sorted(int(m) for m in re.findall(rb"UID (\d+)", b"".join(out)))
    assert got == [uids[0], uids[2], uids[4]], out
    r.ok(b"v3 STORE $ +FLAGS.SILENT (\\Flagged)")
    assert r.ok(b"v4 SEARCH FLAGGED")[0] == b"* SEARCH 1 3 5\r\n"
    assert r.ok(b"v5 UID SEARCH $ SUBJECT m2")[0] == b"* SEARCH %d\r\n" % uids[2]
    r.ok(b"v6 UID COPY $ ResTo")
    st = r.ok(b"v7 STATUS ResTo (MESSAGES)")[0]
    assert b"MESSAGES 3" in st, st
    # SAVE with MIN and MAX only keeps those two
    r.ok(b"v8 UID SEARCH RETURN (SAVE MIN MAX) ALL")
    out = r.ok(b"v9 UID FETCH $ (UID)")
    got = sorted(int(m) for m in re.findall(rb"UID (\d+)", b"".join(out)))
    assert got == [uids[0], uids[-1]], out
    out = r.ok(b"w1 MOVE $ ResTo")
    assert [ln for ln in out if ln.endswith(b"EXPUNGE\r\n")] == [b"* 1 EXPUNGE\r\n",
                                                                 b"* 5 EXPUNGE\r\n"], out
    line = esearch(r.ok(b"w3 SEARCH RETURN (COUNT) ALL"))
    assert line.endswith(b"COUNT 4"), line
    # a failed SEARCH with SAVE empties "$"; SELECT does too
    r.ok(b"x1 SEARCH RETURN (SAVE) ALL")
    out = r.cmd(b"x2 SEARCH RETURN (SAVE) FROB")
    assert out[-1].startswith(b"x2 BAD"), out
    assert not re.search(rb"FETCH", b"".join(r.ok(b"x3 FETCH $ (UID)")))
    r.ok(b"x4 SEARCH RETURN (SAVE) ALL")
    r.ok(b"x5 SELECT Res")
    assert not re.search(rb"FETCH", b"".join(r.ok(b"x6 FETCH $ (UID)")))
    assert r.cmd(b"x7 SEARCH RETURN (BOGUS) ALL")[-1].startswith(b"x7 BAD")
    r.close()


def list_lines(out):
    res = {}
    for ln in out:
        m = re.match(rb'\* LIST \(([^)]*)\) "\." ("[^"]*"|\S+)(.*)\r\n$', ln)
        if m:
            res[m.group(2).strip(b'"').decode()] = (m.group(1).decode().split(),
                                                    m.group(3).decode())
    return res


def test_list_extended_and_status(imap):
    r = Raw(imap, USERS[1])
    for name in (b"Proj", b"Proj.A", b"Proj.B", b"Deep.Sub.Leaf"):
        r.ok(b"c CREATE " + name)
    r.ok(b"s SUBSCRIBE Proj.A")
    r.ok(b"s SUBSCRIBE Deep.Sub.Leaf")
    r.ok(b"s SUBSCRIBE Gone")
    append(r, b"Proj.A", msg(1), b"(\\Deleted)")
    append(r, b"Proj.A", msg(2))
    # SUBSCRIBED selection: \Subscribed, and \NonExistent for a subscribed missing name
    got = list_lines(r.ok(b'l1 LIST (SUBSCRIBED) "" "*"'))
    assert "\\Subscribed" in got["Proj.A"][0]
    assert "\\NonExistent" in got["Gone"][0] and "\\Subscribed" in got["Gone"][0]
    assert "Proj" not in got and "Proj.B" not in got
    # RECURSIVEMATCH: parents with a subscribed child get CHILDINFO
    got = list_lines(r.ok(b'l2 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert '("CHILDINFO" ("SUBSCRIBED"))' in got["Proj"][1], got
    assert "\\Subscribed" not in got["Proj"][0]
    assert '"CHILDINFO"' in got["Deep"][1] and "\\NonExistent" in got["Deep"][0], got
    assert r.cmd(b'l3 LIST (RECURSIVEMATCH) "" "*"')[-1].startswith(b"l3 BAD")
    # several patterns, return options
    got = list_lines(r.ok(b'l4 LIST "" ("Proj.%" "Deep") RETURN (SUBSCRIBED CHILDREN)'))
    assert set(got) == {"Proj.A", "Proj.B", "Deep"}, got
    assert "\\Subscribed" in got["Proj.A"][0] and "\\Subscribed" not in got["Proj.B"][0]
    assert "\\HasNoChildren" in got["Proj.B"][0] and "\\HasChildren" in got["Deep"][0]
    assert "\\NonExistent" in got["Deep"][0]
    # SPECIAL-USE selection: only the special folders made at the first login
    got = list_lines(r.ok(b'l5 LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)'))
    assert set(got) == {"Drafts", "Sent", "Trash", "Junk", "Archive"}, got
    assert "\\Sent" in got["Sent"][0]
    # LIST-STATUS with SIZE and DELETED
    out = r.ok(b'l6 LIST "" "Proj*" RETURN (STATUS (MESSAGES DELETED SIZE UIDNEXT))')
    st = [ln for ln in out if ln.startswith(b"* STATUS")]
    assert len(st) == 3, out
    a = next(ln for ln in st if b'"Proj.A"' in ln or b" Proj.A " in ln)
    size = len(msg(1)) + len(msg(2))
    for item in (b"MESSAGES 2", b"DELETED 1", b"SIZE %d" % size, b"UIDNEXT 3"):
        assert re.search(rb"[( ]%s[ )]" % item, a), (item, a)
    # plain LIST still says \Noselect for a parent without a directory
    got = list_lines(r.ok(b'l7 LIST "" "Deep"'))
    assert "\\Noselect" in got["Deep"][0], got
    st = r.ok(b"l8 STATUS Proj.A (SIZE DELETED APPENDLIMIT)")[0]
    for item in (b"DELETED 1", b"SIZE %d" % size, b"APPENDLIMIT %d" % LIMIT):
        assert re.search(rb"[( ]%s[ )]" % item, st), (item, st)
    assert r.cmd(b'l9 LIST (FROB) "" "*"')[-1].startswith(b"l9 BAD")
    assert r.cmd(b"la STATUS Proj.A (FROB)")[-1].startswith(b"la BAD")
    assert r.cmd(b"lb STATUS Nope (MESSAGES)")[-1].startswith(b"lb NO [NONEXISTENT]")
    r.close()


def test_appendlimit_toobig(imap):
    r = Raw(imap, USERS[2])
    mark = imap.log_mark()
    r.sock.sendall(b"a1 APPEND INBOX {%d}\r\n" % (LIMIT + 1))
    line = r.f.readline()
    assert line.startswith(b"a1 NO [TOOBIG]"), line
    imap.wait_log("NO: client=", "[TOOBIG]", since=mark)
    # nothing of it was read: the connection goes on
    assert r.ok(b"a2 NOOP") == []
    body = b"Subject: fits\r\n\r\n" + b"x" * 1000 + b"\r\n"
    append(r, b"INBOX", body)
    r.close()


def test_create_special_use(imap):
    c = imaplib.IMAP4("127.0.0.1", imap.port("imap"), timeout=30)
    c.login(USERS[2], PASSWORD)
    typ, data = c._simple_command("CREATE", "Outbox", "(USE (\\Sent))")
    assert typ == "OK", data
    typ, data = c.list('""', "Outbox")
    assert typ == "OK" and b"\\Sent" in data[0], data
    maildir = imap.maildir(USERS[2])
    with open(os.path.join(maildir, ".Outbox", "postern-special-use")) as f:
        assert f.read().strip() == "\\Sent"
    typ, data = c._simple_command("CREATE", "Everything", "(USE (\\All))")
    assert typ == "NO" and b"[USEATTR]" in data[-1], data
    typ, data = c.list('""', "Everything")
    assert data == [None], data
    typ, data = c._simple_command("CREATE", "Both", "(USE (\\Sent \\Trash))")
    assert typ == "NO" and b"[USEATTR]" in data[-1], data
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        c._simple_command("CREATE", "Odd", "(COLOR (red))")
    c.logout()


def test_utf8_accept(imap):
    r = Raw(imap, USERS[3])
    r.ok(b"c CREATE Caf&AOk-")
    out = r.ok(b"e ENABLE UTF8=ACCEPT")
    assert out[0] == b"* ENABLED UTF8=ACCEPT\r\n", out
    got = list_lines(r.ok(b'l LIST "" "Caf*"'))
    assert list(got) == ["Caf\u00e9"], got
    r.ok('c CREATE "Gr\u00fc\u00dfe"'.encode())
    r.ok('s SELECT "Gr\u00fc\u00dfe"'.encode())
    assert os.path.isdir(os.path.join(imap.maildir(USERS[3]), ".Gr&APwA3w-e"))
    body = "From: j\u00fcrgen@example.test\r\nSubject: gr\u00fc\u00dfe\r\n\r\nhallo\r\n".encode()
    r.sock.sendall(('a APPEND "Gr\u00fc\u00dfe" UTF8 (~{%d+}\r\n' % len(body)).encode()
                   + body + b")\r\n")
    out = r.until(b"a")
    assert out[-1].startswith(b"a OK [APPENDUID"), out
    st = r.ok('t STATUS "Gr\u00fc\u00dfe" (MESSAGES)'.encode())[0]
    assert st == '* STATUS "Gr\u00fc\u00dfe" (MESSAGES 1)\r\n'.encode(), st
    assert r.cmd(b'x CREATE "\xff\xfe"')[-1].startswith(b"x NO")
    r.close()
    # without ENABLE (a BAD one enables nothing): names stay modified UTF-7, UTF8
    # APPEND is refused
    r = Raw(imap, USERS[3])
    assert r.cmd(b"e ENABLE UTF8=ACCEPT (")[-1].startswith(b"e BAD")
    got = list_lines(r.ok(b'l LIST "" "Gr*"'))
    assert list(got) == ["Gr&APwA3w-e"], got
    out = r.cmd(b"a APPEND INBOX UTF8 (~{3+}\r\nabc)")
    assert out[-1].startswith(b"a BAD"), out
    r.close()


def test_imap4rev2(imap):
    user = USERS[4]
    r = Raw(imap, user)
    append(r, b"INBOX", msg(1))
    append(r, b"INBOX", msg(2), b"(\\Deleted)")
    out = r.ok(b"e ENABLE IMAP4rev2")
    assert out[0] == b"* ENABLED IMAP4rev2\r\n", out
    out = r.ok(b"s SELECT INBOX")
    text = b"".join(out)
    assert b"RECENT" not in text and b"[UNSEEN" not in text, out
    assert re.search(rb'\* LIST \([^)]*\) "\." "?INBOX"?\r\n', text), out
    out = r.ok(b"f FETCH 1:* (FLAGS)")
    assert b"\\Recent" not in b"".join(out), out
    # SEARCH answers with ESEARCH, also when nothing matches
    assert esearch(r.ok(b"q1 SEARCH ALL")) == b'* ESEARCH (TAG "q1") ALL 1:2'
    assert esearch(r.ok(b"q2 UID SEARCH SUBJECT zzz")) == b'* ESEARCH (TAG "q2") UID'
    st = r.ok(b"q3 STATUS INBOX (MESSAGES DELETED SIZE)")[0]
    assert re.search(rb"MESSAGES 2 DELETED 1 SIZE \d+", st), st
    # a delivery: EXISTS without RECENT
    imap.submit("x@example.test", [user], b"Subject: rev2\r\n\r\nhello\r\n")
    imap.wait_message(user, about="rev2", timeout=60)
    text = b"".join(r.ok(b"n NOOP"))
    assert b"* 3 EXISTS" in text and b"RECENT" not in text, text
    # LIST (SUBSCRIBED) in place of LSUB
    got = list_lines(r.ok(b'l LIST (SUBSCRIBED) "" "*"'))
    assert "\\Subscribed" in got["Sent"][0], got
    r.close()


def _offlineimap_rc(imap, tmp_path, local):
    rc = tmp_path / "offlineimaprc"
    rc.write_text(f"""[general]
accounts = test
metadata = {tmp_path}/meta
ui = basic

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}
sep = .

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {imap.port("imap")}
remoteuser = {USERS[0]}
remotepass = {PASSWORD}
ssl = no
starttls = no
folderfilter = lambda f: f in ("INBOX", "Shared")
createfolders = True
""")
    return rc


@pytest.mark.skipif(shutil.which("offlineimap") is None, reason="offlineimap3 not installed")
def test_offlineimap_both_ways(imap, tmp_path):
    user = USERS[0]
    c = imaplib.IMAP4("127.0.0.1", imap.port("imap"), timeout=30)
    c.login(user, PASSWORD)
    assert c.create("Shared")[0] == "OK"
    for i in range(3):
        assert c.append("INBOX", None, None, msg(100 + i))[0] == "OK"
    assert c.append("Shared", "(\\Flagged)", None, msg(200))[0] == "OK"
    local = tmp_path / "local"
    local.mkdir()
    rc = _offlineimap_rc(imap, tmp_path, local)
    env = dict(os.environ, HOME=str(tmp_path))

    def run():
        p = subprocess.run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"], env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0 and "ERROR" not in p.stderr, p.stdout + p.stderr
        return p

    run()
    import mailbox
    inbox = mailbox.Maildir(str(local / "INBOX"), create=False)
    ids = sorted(m["Message-ID"] for m in inbox)
    assert ids == [f"<e{100 + i}@example.test>" for i in range(3)], ids
    shared = mailbox.Maildir(str(local / "Shared"), create=False)
    assert [m.get_flags() for m in shared] == ["F"]
    # local to remote: a new message and a flag change
    new = mailbox.MaildirMessage(msg(300))
    new.set_subdir("cur")
    new.set_flags("S")
    shared.add(new)
    key = next(k for k, m in inbox.items() if m["Message-ID"] == "<e100@example.test>")
    m0 = inbox[key]
    m0.add_flag("S")
    m0.set_subdir("cur")
    inbox[key] = m0
    # remote to local: a flag changed on the server
    c.select("INBOX")
    typ, data = c.search(None, 'HEADER Message-ID "<e101@example.test>"')
    assert c.store(data[0].decode(), "+FLAGS", "(\\Answered)")[0] == "OK"
    run()
    typ, data = c.select("Shared")
    assert data[0] == b"2", data
    typ, data = c.search(None, 'SEEN HEADER Message-ID "<e300@example.test>"')
    assert data[0].strip(), "local message not uploaded with its flag"
    c.select("INBOX")
    typ, data = c.search(None, 'SEEN HEADER Message-ID "<e100@example.test>"')
    assert data[0].strip(), "local flag not synced"
    inbox = mailbox.Maildir(str(local / "INBOX"), create=False)
    e101 = next(m for m in inbox if m["Message-ID"] == "<e101@example.test>")
    assert "R" in e101.get_flags()

    def state():
        files = sorted(p.name for d in (local / "INBOX", local / "Shared")
                       for sub in ("cur", "new") for p in (d / sub).iterdir())
        remote = []
        for box in ("INBOX", "Shared"):
            c.select(box, readonly=True)
            typ, data = c.fetch("1:*", "(UID FLAGS)")
            remote += sorted(re.sub(rb" ?\\Recent", b"", d) for d in data)
        return files, remote

    before = state()
    run()
    assert state() == before
    c.logout()


def test_utf8_append_literal8(imap):
    """RFC 6855 4: APPEND's UTF8 data item is a literal8 (RFC 3516), synchronizing or
    not, so a message with a NUL in it is taken, byte for byte."""
    r = Raw(imap, USERS[3])
    r.ok(b"e ENABLE UTF8=ACCEPT")
    body = ("From: j\u00fcrgen@example.test\r\nSubject: nul \u00fc\r\n"
            "Content-Transfer-Encoding: binary\r\n\r\nbefore\0after\r\n").encode()
    r.sock.sendall(b"a1 APPEND INBOX UTF8 (~{%d+}\r\n" % len(body) + body + b")\r\n")
    out = r.until(b"a1")
    assert out[-1].startswith(b"a1 OK [APPENDUID"), out
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", out[-1]).group(1))
    # the synchronizing form waits for "+"
    r.sock.sendall(b"a2 APPEND INBOX UTF8 (~{%d}\r\n" % len(body))
    assert r.f.readline().startswith(b"+")
    r.sock.sendall(body + b")\r\n")
    out = r.until(b"a2")
    assert out[-1].startswith(b"a2 OK [APPENDUID"), out
    r.ok(b"x EXAMINE INBOX")
    r.sock.sendall(b"f UID FETCH %d (BINARY.PEEK[])\r\n" % uid)
    head = r.f.readline()
    assert head.endswith(b"BINARY[] ~{%d}\r\n" % len(body)), head
    assert r.f.read(len(body)) == body
    assert r.until(b"f")[-1].startswith(b"f OK")
    # a plain literal, or no closing parenthesis, is not the UTF8 form
    out = r.cmd(b"a3 APPEND INBOX UTF8 ({3+}\r\nabc)")
    assert out[-1].startswith(b"a3 BAD"), out
    out = r.cmd(b"a4 APPEND INBOX UTF8 (~{3+}\r\nabc")
    assert out[-1].startswith(b"a4 BAD"), out
    r.close()

"""IMAP after login through imaplib: folders (CREATE, DELETE, RENAME, SUBSCRIBE,
LIST with SPECIAL-USE and CHILDREN, LSUB, STATUS), APPEND with literals, SELECT and
EXAMINE, FETCH of every item, STORE, COPY, MOVE, EXPUNGE and their UID forms, SEARCH,
CLOSE and UNSELECT; sessions of one user kept in step (flags, expunge, move, IDLE woken
by a delivery and by another session's STORE); and bad input answered BAD or NO."""

import imaplib
import re
import time

import pytest

from conftest import start_instance
from instance import wait_for
from imap_instance import LineClient, greets as _greets

USER = "alice@example.test"
PASSWORD = "secret"

imaplib.Commands.setdefault("MOVE", ("SELECTED",))
imaplib.Commands.setdefault("UNSELECT", ("SELECTED",))
imaplib.Commands.setdefault("IDLE", ("AUTH", "SELECTED"))

MSG = (b"From: Alice Example <alice@example.test>\r\n"
       b"To: bob@example.test\r\n"
       b"Subject: =?UTF-8?Q?caf=C3=A9?= plans\r\n"
       b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
       b"Message-ID: <m1@example.test>\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
       b"\r\n"
       b"--b1\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n"
       b"\r\n"
       b"Meet at the caf=C3=A9 at noon.\r\n"
       b"--b1\r\n"
       b"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
       b"Content-Transfer-Encoding: base64\r\n"
       b"\r\n"
       b"AAECAw==\r\n"
       b"--b1--\r\n")


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=(USER, "bob@example.test", "carol@example.test"),
                          domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "imapd_loopback_plaintext_login": "yes",
                                  "imapd_error_limit": "50"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


def connect(inst, user=USER):
    c = imaplib.IMAP4("127.0.0.1", inst.port("imap"), timeout=30)
    c.login(user, PASSWORD)
    return c


def ok(res):
    typ, data = res
    assert typ == "OK", data
    return data


def test_folders(imap):
    c = connect(imap, "bob@example.test")
    ok(c.create("Work"))
    ok(c.create("Work.Projects"))
    typ, data = c.create("Work")
    assert typ == "NO"
    # made at the first login, subscribed
    assert c.create("Sent")[0] == "NO"
    lsub = b" ".join(ok(c.lsub()))
    for name in (b"Drafts", b"Sent", b"Trash", b"Junk", b"Archive"):
        assert name in lsub
    names = {}
    for line in ok(c.list()):
        m = re.match(rb'\((.*?)\) "\." "?([^"]*)"?$', line)
        names[m.group(2).decode()] = m.group(1).decode().split()
    assert "INBOX" in names and "Work.Projects" in names
    assert "\\HasChildren" in names["Work"]
    assert "\\HasNoChildren" in names["Work.Projects"]
    assert "\\Sent" in names["Sent"] and "\\Trash" in names["Trash"]
    assert "\\Junk" in names["Junk"] and "\\Drafts" in names["Drafts"]
    assert "\\Archive" in names["Archive"]
    lines = ok(c.list('""', "Work.%"))
    assert len(lines) == 1 and b"Work.Projects" in lines[0]
    assert ok(c.list('""', '""')) == [b'(\\Noselect) "." ""']
    ok(c.subscribe("Work"))
    assert any(b"Work" in ln for ln in ok(c.lsub()) if ln)
    ok(c.unsubscribe("Work"))
    assert not any(b'"Work"' in ln or ln.endswith(b" Work") for ln in ok(c.lsub()) if ln)
    ok(c.rename("Work", "Job"))
    listed = b" ".join(ok(c.list()))
    assert b"Job.Projects" in listed and b"Work" not in listed
    ok(c.delete("Job.Projects"))
    assert c.delete("Nope")[0] == "NO"
    assert c.delete("INBOX")[0] == "NO"
    st = ok(c.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)"))[0]
    assert re.search(rb"MESSAGES 0 RECENT 0 UIDNEXT \d+ UIDVALIDITY \d+ UNSEEN 0", st), st
    c.logout()


def test_bad_folder_names(imap):
    c = connect(imap, "bob@example.test")
    for name in ("..", "a/../b", ".hidden", "a..b", "x/y", "a\x01b"):
        typ, data = c.create('"%s"' % name)
        assert typ == "NO", (name, data)
    typ, data = c.select('"../.."')
    assert typ == "NO"
    c.logout()


def test_append_select_fetch(imap):
    c = connect(imap)
    typ, data = c.append("INBOX", "(\\Flagged $Work)", '"02-Mar-2026 10:00:00 +0100"', MSG)
    assert typ == "OK"
    m = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    assert m, data
    uid = int(m.group(2))
    typ, data = c.select("INBOX")
    assert typ == "OK" and int(data[0]) >= 1
    assert "READ-WRITE" in str(c.untagged_responses.get("READ-WRITE", "")) or True
    typ, data = c.uid("FETCH", str(uid),
                      "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE "
                      "BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[1] BODY.PEEK[]<0.10>)")
    assert typ == "OK"
    blob = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
    assert b"\\Flagged" in blob and b"$Work" in blob and b"\\Seen" not in blob
    assert b'INTERNALDATE "02-Mar-2026 09:00:00 +0000"' in blob
    assert b"RFC822.SIZE %d" % len(MSG) in blob
    assert b"<m1@example.test>" in blob and b'"Alice Example"' in blob
    assert b'"application" "octet-stream"' in blob.replace(b"APPLICATION", b"application")\
        .replace(b"OCTET-STREAM", b"octet-stream")
    assert b"Subject: =?UTF-8?Q?caf=C3=A9?= plans" in blob
    assert b"Meet at the caf=C3=A9 at noon." in blob
    assert b"BODY[]<0> {10}" in blob and MSG[:10] in blob
    # BODY[] without PEEK sets \Seen and says so
    typ, data = c.uid("FETCH", str(uid), "(BODY[TEXT])")
    blob = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
    assert b"\\Seen" in blob
    typ, data = c.fetch("1:*", "(FLAGS)")
    assert typ == "OK"
    typ, data = c.fetch("1", "(RFC822.HEADER)")
    assert data[0][1].startswith(b"From: Alice")
    typ, data = c.fetch("1", "FAST")
    assert typ == "OK"
    c.close()
    c.logout()


def test_fetch_of_bodies_sets_seen_on_each(imap):
    """FETCH BODY[] of a range sets \\Seen on every unseen message of it (in one
    change of the folder) and each FETCH response says so; PEEK and EXAMINE do not."""
    c = connect(imap, "carol@example.test")
    ok(c.create("SeenRange"))
    for i in range(4):
        ok(c.append("SeenRange", None, None, b"Subject: s%d\r\n\r\nbody %d\r\n" % (i, i)))
    ok(c.select("SeenRange", readonly=True))
    typ, data = c.fetch("1:4", "(BODY[TEXT])")
    assert typ == "OK"
    assert not any(b"\\Seen" in x[0] for x in data if isinstance(x, tuple)), data
    ok(c.select("SeenRange"))
    typ, data = c.fetch("2:4", "(BODY.PEEK[TEXT])")
    assert typ == "OK"
    typ, data = c.fetch("1:*", "(FLAGS)")
    assert not any(b"\\Seen" in x for x in data), data
    typ, data = c.fetch("2:4", "(BODY[TEXT])")
    assert typ == "OK"
    heads = [x[0] for x in data if isinstance(x, tuple)]
    assert len(heads) == 3 and all(b"\\Seen" in h for h in heads), data
    typ, data = c.fetch("1:*", "(FLAGS)")
    flags = sorted(data)
    assert b"\\Seen" not in flags[0] and all(b"\\Seen" in x for x in flags[1:]), data
    c.close()
    c.logout()


def test_store_copy_move_expunge_search(imap):
    c = connect(imap, "carol@example.test")
    for i in range(5):
        ok(c.append("INBOX", None, None,
                    b"From: x@example.test\r\nSubject: note %d\r\n\r\nbody %d text\r\n" % (i, i)))
    typ, data = c.select("INBOX")
    assert int(data[0]) == 5
    data = ok(c.store("1:2", "+FLAGS", "(\\Seen \\Answered)"))
    assert len(data) == 2 and b"\\Seen" in data[0]
    data = ok(c.store("2", "-FLAGS.SILENT", "(\\Answered)"))
    assert data == [None]
    assert ok(c.search(None, "SEEN"))[0] == b"1 2"
    assert ok(c.search(None, "UNSEEN"))[0] == b"3 4 5"
    assert ok(c.search(None, "ANSWERED"))[0] == b"1"
    assert ok(c.search(None, "SUBJECT", '"note 3"'))[0] == b"4"
    assert ok(c.search(None, "BODY", "TEXT"))[0] == b"1 2 3 4 5"
    assert ok(c.search(None, "OR", "1", "5"))[0] == b"1 5"
    assert ok(c.search(None, "NOT", "(OR SEEN OR 3 4)"))[0] == b"5"
    assert ok(c.search("UTF-8", "FROM", "x@example"))[0] == b"1 2 3 4 5"
    assert ok(c.search(None, "LARGER", "10", "SMALLER", "100000"))[0] == b"1 2 3 4 5"
    assert ok(c.search(None, "HEADER", "Subject", '"note 1"'))[0] == b"2"
    assert ok(c.search(None, "SINCE", "1-Jan-2000"))[0] == b"1 2 3 4 5"
    assert ok(c.search(None, "BEFORE", "1-Jan-2000"))[0] == b""
    uids = ok(c.uid("SEARCH", None, "ALL"))[0].split()
    assert len(uids) == 5
    typ, data = c.copy("1:2", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = c._simple_command("MOVE", "3", "Archive")
    assert typ == "OK"
    assert c.untagged_responses.pop("EXPUNGE", None) == [b"3"]
    assert c.select("Archive")[1][0] == b"3"
    c.select("INBOX")
    ok(c.store("1", "+FLAGS", "\\Deleted"))
    typ, data = c.expunge()
    assert typ == "OK" and data == [b"1"]
    ok(c.uid("STORE", uids[4].decode(), "+FLAGS", "(\\Deleted)"))
    ok(c.uid("STORE", uids[3].decode(), "+FLAGS", "(\\Deleted)"))
    typ, data = c.uid("EXPUNGE", uids[4].decode())
    assert typ == "OK" and c.untagged_responses.pop("EXPUNGE", None) == [b"3"]
    typ, data = c.select("INBOX", readonly=True)
    assert data[0] == b"2"
    typ, data = c.store("1", "+FLAGS", "\\Seen")
    assert typ == "NO"
    c._simple_command("UNSELECT")
    c.select("INBOX")
    c.close()                       # expunges the \Deleted one
    typ, data = c.select("INBOX")
    assert data[0] == b"1"
    c.logout()


def test_sessions_in_step(imap):
    a = connect(imap, "bob@example.test")
    b = connect(imap, "bob@example.test")
    for i in range(3):
        ok(a.append("INBOX", None, None, b"Subject: s%d\r\n\r\nx\r\n" % i))
    a.select("INBOX")
    b.select("INBOX")
    ok(a.store("1", "+FLAGS", "(\\Flagged)"))
    ok(b.noop())
    fetched = b.untagged_responses.pop("FETCH", [])
    assert any(b"\\Flagged" in x for x in fetched), fetched
    ok(a.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
    ok(a.expunge())
    ok(b.noop())
    assert b.untagged_responses.pop("EXPUNGE", None) == [b"2"]
    ok(a.create("Moved"))
    ok(a._simple_command("MOVE", "1", "Moved"))
    ok(b.noop())
    assert b.untagged_responses.pop("EXPUNGE", None) == [b"1"]
    # a third session appends: the two others see EXISTS
    a.untagged_responses.pop("EXISTS", None)
    c = connect(imap, "bob@example.test")
    ok(c.append("INBOX", None, None, b"Subject: third\r\n\r\nx\r\n"))
    ok(a.noop())
    assert a.untagged_responses.pop("EXISTS", None) == [b"2"]
    c.logout()
    a.logout()
    b.logout()


def RawSession(inst, user):
    """A logged-in connection read line by line; the caller checks the answers."""
    return LineClient(inst, user, PASSWORD, timeout=15, check=False)


def test_idle_woken_by_delivery_and_store(imap):
    user = "carol@example.test"
    r = RawSession(imap, user)
    r.cmd(b"s SELECT INBOX")
    r.sock.sendall(b"i IDLE\r\n")
    assert r.f.readline().startswith(b"+ ")
    start = time.monotonic()
    imap.submit("x@example.test", [user], b"Subject: wake\r\n\r\nhello\r\n")
    line = r.f.readline()
    assert re.match(rb"\* \d+ EXISTS", line), line
    assert time.monotonic() - start < 15
    # another session's STORE reaches the idler at once
    other = connect(imap, user)
    other.select("INBOX")
    ok(other.store("1", "+FLAGS", "(\\Flagged)"))
    t0 = time.monotonic()
    line = r.f.readline()
    while line.startswith(b"* ") and b"FETCH" not in line:
        line = r.f.readline()
    assert b"FETCH" in line and b"\\Flagged" in line, line
    assert time.monotonic() - t0 < 2
    r.sock.sendall(b"DONE\r\n")
    assert r.f.readline().startswith(b"i OK")
    other.logout()
    r.close()


def test_bad_input_after_login(imap):
    r = RawSession(imap, "bob@example.test")
    assert r.cmd(b"a1 FETCH 1 FLAGS")[-1].startswith(b"a1 BAD")    # not selected
    r.cmd(b"a2 SELECT INBOX")
    for bad in (b"*:0", b"1:4294967296", b"0", b"1,,2", b"1:"):
        out = r.cmd(b"b FETCH " + bad + b" FLAGS", tag=b"b")
        assert out[-1].startswith(b"b BAD"), (bad, out)
    many = b",".join(b"%d" % i for i in range(1, 10001))
    assert r.cmd(b"c UID FETCH " + many + b" FLAGS")[-1].startswith(b"c BAD")
    assert r.cmd(b"d SEARCH (SEEN")[-1].startswith(b"d BAD")
    assert r.cmd(b"e SEARCH " + b"(" * 40 + b"ALL" + b")" * 40)[-1].startswith(b"e BAD")
    assert r.cmd(b"f FETCH 1 (FLAGS")[-1].startswith(b"f BAD")
    assert r.cmd(b"g STORE 1 +FLAGS (\\Recent)")[-1].startswith(b"g BAD")
    assert r.cmd(b"h FETCH 1 BODY[1.2.3.HEADER.FIELDS]")[-1].startswith(b"h BAD")
    assert r.cmd(b"i FROB")[-1].startswith(b"i BAD")
    assert r.cmd(b'j SEARCH CHARSET KOI8-R ALL')[-1].startswith(b"j NO")
    assert r.cmd(b"k APPEND INBOX {99999999999}")[-1].startswith(b"k NO [TOOBIG]")
    assert r.cmd(b"l NOOP")[-1].startswith(b"l OK")
    r.cmd(b"z LOGOUT")
    r.close()


def test_no_expunge_during_fetch(imap):
    user = "bob@example.test"
    a = connect(imap, user)
    ok(a.create("Defer"))
    for i in range(3):
        ok(a.append("Defer", None, None, b"Subject: d%d\r\n\r\nx\r\n" % i))
    a.select("Defer")
    r = RawSession(imap, user)
    r.cmd(b"s SELECT Defer")
    ok(a.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
    ok(a.expunge())
    out = r.cmd(b"f FETCH 1:3 (FLAGS)")
    # no untagged EXPUNGE during FETCH (RFC 3501 7.4.1); the tagged reply may say
    # EXPUNGEISSUED (RFC 5530), as here where the view is the one both connections share
    assert not any(ln.startswith(b"* ") and ln.rstrip().endswith(b" EXPUNGE") for ln in out), out
    assert out[-1].startswith(b"f NO [EXPUNGEISSUED]") or out[-1].startswith(b"f OK"), out
    out = r.cmd(b"n NOOP")
    assert out[0] == b"* 2 EXPUNGE\r\n", out
    out = r.cmd(b"g FETCH 1:* (UID)")
    assert len([ln for ln in out if b"FETCH (" in ln]) == 2, out
    r.cmd(b"z LOGOUT")
    r.close()
    a.logout()

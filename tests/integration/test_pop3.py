"""POP3 (pop3d -l in front, pop3d behind): every command through Python's poplib and
raw sockets, deletion only at QUIT, locking, UIDL stability, bad input, TLS, fetchmail,
a 10,000-message mailbox, and (as root) the identities of the processes."""

import base64
import mailbox
import os
import poplib
import pwd
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import start_instance
from instance import wait_for

USERS = ("alice@example.test", "bob@example.test", "carol@example.test",
         "dave@example.test", "erin@example.test", "fred@example.test",
         "gina@example.test", "hank@example.test", "ivan@example.test")
PASSWORD = "secret"


@pytest.fixture(scope="module")
def pop(request):
    inst = start_instance(users=USERS, domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24"})
    wait_for(lambda: _answers(inst), what="POP3 port to answer")
    yield inst
    inst.cleanup()


def _answers(inst):
    try:
        with socket.create_connection(("127.0.0.1", inst.port("pop3")), timeout=2) as s:
            s.settimeout(5)
            return s.recv(100).startswith(b"+OK")
    except OSError:
        return False


_counter = [0]


def fill(inst, address, bodies, sub="new", with_sizes=True):
    """Writes messages straight into address's Maildir; returns their file names."""
    md = inst.maildir(address)
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, d), exist_ok=True)
    names = []
    for body in bodies:
        _counter[0] += 1
        data = body if isinstance(body, bytes) else body.encode()
        name = f"{1700000000 + _counter[0]}.M{_counter[0]}P1.test"
        if with_sizes:
            w = len(data) + data.count(b"\n") - data.count(b"\r\n")
            name += f",S={len(data)},W={w}"
        if sub == "cur":
            name += ":2,"
        with open(os.path.join(md, sub, name), "wb") as f:
            f.write(data)
        names.append(name)
    chown_vmail(inst, address)
    return names


def chown_vmail(inst, address):
    if os.geteuid() != 0:
        return
    vm = pwd.getpwnam("vmail")
    top = os.path.dirname(inst.maildir(address))
    for root, dirs, files in os.walk(top):
        os.chown(root, vm.pw_uid, vm.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), vm.pw_uid, vm.pw_gid)


def files(inst, address):
    md = inst.maildir(address)
    out = []
    for d in ("new", "cur"):
        p = os.path.join(md, d)
        if os.path.isdir(p):
            out += [f"{d}/{n}" for n in os.listdir(p)]
    return sorted(out)


def login(inst, address, password=PASSWORD):
    p = poplib.POP3("127.0.0.1", inst.port("pop3"), timeout=30)
    p.user(address)
    p.pass_(password)
    return p


class Raw:
    """A line-oriented raw client for what poplib cannot send."""

    def __init__(self, inst, port=None):
        self.s = socket.create_connection(("127.0.0.1", port or inst.port("pop3")), timeout=30)
        self.f = self.s.makefile("rb")
        self.greeting = self.line()

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def line(self):
        return self.f.readline().rstrip(b"\r\n")

    def multi(self):
        lines = []
        while True:
            ln = self.line()
            if ln == b".":
                return lines
            lines.append(ln)

    def close(self):
        self.f.close()
        self.s.close()


MSG1 = "From: a@b\nSubject: one\n\nline 1\n.dot line\nline 3\n"
MSG2 = "From: a@b\nSubject: two\n\nbody two\n"
MSG3 = "From: a@b\nSubject: three\r\n\r\nno final newline"


def test_commands(pop):
    addr = "alice@example.test"
    fill(pop, addr, [MSG1, MSG2, MSG3])
    p = poplib.POP3("127.0.0.1", pop.port("pop3"), timeout=30)
    caps = p.capa()
    for c in ("USER", "SASL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "TOP", "UIDL",
              "IMPLEMENTATION"):
        assert c in caps, caps
    assert caps["SASL"] == ["PLAIN", "LOGIN"]
    assert p.user(addr).startswith(b"+OK")
    assert p.pass_(PASSWORD).startswith(b"+OK 3 messages")
    sizes = [len(m.replace("\r\n", "\n").replace("\n", "\r\n")) for m in (MSG1, MSG2, MSG3)]
    assert p.stat() == (3, sum(sizes))
    resp, lines, _ = p.list()
    assert lines == [f"{i + 1} {s}".encode() for i, s in enumerate(sizes)]
    assert p.list(2) == f"+OK 2 {sizes[1]}".encode()
    resp, uids, _ = p.uidl()
    assert len(uids) == 3 and all(len(u.split()[1]) <= 70 for u in uids)
    assert p.uidl(1).split()[2] == uids[0].split()[1]
    # poplib undoes the dot-stuffing; the raw test below checks it on the wire.
    resp, lines, octets = p.retr(1)
    assert resp.startswith(f"+OK {sizes[0]}".encode())
    assert lines == [b"From: a@b", b"Subject: one", b"", b"line 1", b".dot line", b"line 3"]
    resp, lines, _ = p.retr(3)
    assert lines[-1] == b"no final newline"
    resp, lines, _ = p.top(1, 0)
    assert lines == [b"From: a@b", b"Subject: one", b""]
    resp, lines, _ = p.top(1, 2)
    assert lines == [b"From: a@b", b"Subject: one", b"", b"line 1", b".dot line"]
    assert p.noop().startswith(b"+OK")
    assert p.dele(2).startswith(b"+OK")
    assert p.stat() == (2, sizes[0] + sizes[2])
    with pytest.raises(poplib.error_proto, match=r"already deleted"):
        p.retr(2)
    assert p.rset().startswith(b"+OK")
    assert p.stat() == (3, sum(sizes))
    assert p.quit().startswith(b"+OK")
    # Everything moved to cur/ at login, nothing deleted.
    assert [f for f in files(pop, addr) if f.startswith("new/")] == []
    assert len(files(pop, addr)) == 3


def test_dot_stuffing_on_the_wire(pop):
    addr = "alice@example.test"
    r = Raw(pop)
    r.cmd(f"USER {addr}")
    assert r.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    assert r.cmd("RETR 1").startswith(b"+OK")
    body = r.multi()
    assert b"..dot line" in body
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()


def test_auth_plain_and_login(pop):
    addr = "bob@example.test"
    fill(pop, addr, [MSG2])
    cred = base64.b64encode(f"\0{addr}\0{PASSWORD}".encode()).decode()
    # With an initial response.
    r = Raw(pop)
    assert r.cmd(f"AUTH PLAIN {cred}").startswith(b"+OK 1 messages")
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()
    # With the "+ " continuation.
    r = Raw(pop)
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd(cred).startswith(b"+OK")
    assert r.cmd("STAT") == f"+OK 1 {len(MSG2) + MSG2.count(chr(10))}".encode()
    r.cmd("QUIT")
    r.close()
    # LOGIN, and a cancelled exchange first.
    r = Raw(pop)
    assert r.cmd("AUTH LOGIN").startswith(b"+ ")
    assert r.cmd("*").startswith(b"-ERR")
    assert r.cmd("AUTH LOGIN").startswith(b"+ ")
    assert r.cmd(base64.b64encode(addr.encode()).decode()).startswith(b"+ ")
    assert r.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(b"+OK")
    r.cmd("QUIT")
    r.close()
    # Malformed PLAIN and a proxy authorization identity.
    r = Raw(pop)
    assert r.cmd("AUTH PLAIN !!!!").startswith(b"-ERR")
    bad = base64.b64encode(f"carol@example.test\0{addr}\0{PASSWORD}".encode()).decode()
    assert r.cmd(f"AUTH PLAIN {bad}").startswith(b"-ERR")
    assert r.cmd("AUTH CRAM-MD5").startswith(b"-ERR")
    r.close()


def test_wrong_password_delayed(pop):
    r = Raw(pop)
    r.cmd("USER alice@example.test")
    t0 = time.monotonic()
    reply = r.cmd("PASS wrong")
    assert reply.startswith(b"-ERR [AUTH]"), reply
    assert time.monotonic() - t0 >= 0.9
    r.cmd("USER nobody-here@example.test")
    assert r.cmd("PASS x").startswith(b"-ERR [AUTH]")
    r.close()


def test_delete_only_at_quit(pop):
    addr = "carol@example.test"
    fill(pop, addr, [MSG1, MSG2, MSG3])
    before = files(pop, addr)
    p = login(pop, addr)
    assert p.dele(1).startswith(b"+OK")
    assert p.dele(3).startswith(b"+OK")
    assert len(files(pop, addr)) == 3       # only marked so far
    assert p.quit().startswith(b"+OK")
    after = files(pop, addr)
    assert len(after) == 1 and len(before) == 3
    p = login(pop, addr)
    assert p.stat()[0] == 1
    assert p.retr(1)[1][1] == b"Subject: two"
    p.quit()


def test_dropped_connection_deletes_nothing(pop):
    addr = "dave@example.test"
    fill(pop, addr, [MSG1, MSG2])
    mark = pop.log_mark()
    r = Raw(pop)
    r.cmd(f"USER {addr}")
    assert r.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    assert r.cmd("DELE 1").startswith(b"+OK")
    assert r.cmd("DELE 2").startswith(b"+OK")
    r.s.shutdown(socket.SHUT_RDWR)
    r.close()
    line = pop.wait_log(f"logout: user=<{addr}>", since=mark)
    assert "disconnected" in line and "del=0/2" in line, line
    # The lock is released once the session has gone: a new one sees both.
    p = wait_for(lambda: _try_login(pop, addr), what="mailbox to be free again")
    assert p.stat()[0] == 2
    p.quit()


def _try_login(inst, addr):
    try:
        return login(inst, addr)
    except poplib.error_proto:
        return None


def test_in_use(pop):
    addr = "erin@example.test"
    fill(pop, addr, [MSG1])
    p1 = login(pop, addr)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        login(pop, addr)
    p1.quit()
    p2 = wait_for(lambda: _try_login(pop, addr), what="mailbox to be free")
    p2.quit()


def test_uidl_stable(pop):
    addr = "fred@example.test"
    fill(pop, addr, [MSG1, MSG2], sub="new")
    fill(pop, addr, [MSG3], sub="cur")
    long_name = "1690000000.M1P1." + "h" * 100 + ",S=4,W=5"
    with open(os.path.join(pop.maildir(addr), "cur", long_name + ":2,S"), "wb") as f:
        f.write(b"x\ny\n"[:4])
    chown_vmail(pop, addr)
    p = login(pop, addr)
    first = p.uidl()[1]
    p.quit()
    p = login(pop, addr)
    second = p.uidl()[1]
    p.quit()
    assert first == second and len(first) == 4
    for ln in first:
        uid = ln.split()[1]
        assert 1 <= len(uid) <= 70 and all(0x21 <= c <= 0x7e for c in uid)
    # The message with the long name came first (oldest), its id is a digest.
    assert len(first[0].split()[1]) == 64


def test_reused_session_sees_changes(pop):
    """Session processes of virtual users are reused and keep the Maildir listing while
    cur/ and new/ are unchanged (and were settled, 2 s old): every change shows."""
    addr = "ivan@example.test"
    md = pop.maildir(addr)
    names = fill(pop, addr, [MSG1, MSG2, MSG2], sub="cur")

    def stat_and_uids():
        p = login(pop, addr)
        st = p.stat()
        uids = [ln.split()[1].decode() for ln in p.uidl()[1]]
        for i in range(1, st[0] + 1):
            assert p.retr(i)[0].startswith(b"+OK")
        p.quit()
        return st[0], uids

    def settle():
        wait_for(lambda: settled(md), timeout=10, what="cur/ and new/ to be 2 s old")
        assert stat_and_uids()[0] == stat_and_uids()[0]   # read, then from the cache

    settle()
    # A delivery into new/.
    fill(pop, addr, [MSG3], sub="new")
    n, uids = stat_and_uids()
    assert n == 4
    settle()
    # A flag change (a rename in cur/): the new name is the one read.
    old = os.path.join(md, "cur", names[0])
    os.rename(old, old + "S")
    n, uids2 = stat_and_uids()
    assert n == 4 and uids2 == uids
    settle()
    # Deletion by another reader, then a DELE of ours.
    os.unlink(os.path.join(md, "cur", names[1]))
    assert stat_and_uids()[0] == 3
    settle()
    p = login(pop, addr)
    p.dele(1)
    p.quit()
    assert stat_and_uids()[0] == 2


def settled(md):
    """Are cur/ and new/ unchanged (mtime and ctime) for the 2 s after which pop3d keeps
    their listing?"""
    now = int(time.time())
    for d in ("cur", "new"):
        st = os.stat(os.path.join(md, d))
        if int(st.st_mtime) + 2 > now or int(st.st_ctime) + 2 > now:
            return False
    return True


def test_bad_input(pop):
    r = Raw(pop)
    assert r.cmd("STAT").startswith(b"-ERR")           # not logged in
    assert r.cmd("NOOP").startswith(b"-ERR")
    assert r.cmd("X" * 300).startswith(b"-ERR")         # too long
    assert r.cmd("US\0ER x").startswith(b"-ERR")        # NUL
    assert r.cmd("FROB").startswith(b"-ERR")
    assert r.cmd("PASS x").startswith(b"-ERR")          # no USER
    r.cmd("USER alice@example.test")
    assert r.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    for arg in ("0", "-1", "99999999999999999999999", "1x", "", "+1", "4"):
        assert r.cmd(f"RETR {arg}").startswith(b"-ERR"), arg
    # 10 errors in this session (the pre-auth ones stayed there): closed after the limit.
    assert r.cmd("TOP 1").startswith(b"-ERR")
    assert r.cmd("USER x").startswith(b"-ERR")
    last = r.cmd("LIST 1000")
    assert last.startswith(b"-ERR")
    assert r.line().startswith(b"-ERR too many errors")
    assert r.line() == b""                              # closed
    r.close()


def test_pipelining(pop):
    addr = "bob@example.test"
    r = Raw(pop)
    r.send(f"USER {addr}\r\nPASS {PASSWORD}\r\nSTAT\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n")
    replies = [r.line() for _ in range(6)]
    assert replies[0] == b"+OK"
    assert replies[1].startswith(b"+OK 1 messages")
    assert replies[2].startswith(b"+OK 1 ")
    assert replies[3].startswith(b"+OK 1 ")
    assert replies[4] == b"+OK"
    assert replies[5].startswith(b"+OK")
    r.close()


def test_stls_and_pop3s(pop):
    addr = "bob@example.test"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    p = poplib.POP3("127.0.0.1", pop.port("pop3"), timeout=30)
    assert "STLS" in p.capa()
    p.stls(context=ctx)
    assert "STLS" not in p.capa()
    p.user(addr)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    assert p.retr(1)[1][1] == b"Subject: two"
    assert p.quit().startswith(b"+OK")
    p = poplib.POP3_SSL("127.0.0.1", pop.port("pop3s"), timeout=30, context=ctx)
    p.user(addr)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    resp, lines, _ = p.list()
    assert len(lines) == 1
    assert p.quit().startswith(b"+OK")


def test_delivered_mail(pop):
    """Mail delivered through SMTP and local carries its sizes and reads back."""
    addr = "gina@example.test"
    mid = f"<via-smtp.{time.time()}@remote.test>"
    body = f"Subject: via smtp\r\nMessage-ID: {mid}\r\n\r\nhello\r\n.leading dot\r\n"
    with pop.smtp() as s:
        s.sendmail("x@remote.test", [addr], body.encode())
    pop.wait_message(addr, mid)
    assert any(",W=" in f for f in files(pop, addr))
    [name] = files(pop, addr)
    with open(os.path.join(pop.maildir(addr), name), "rb") as f:
        data = f.read()
    p = login(pop, addr)
    count, size = p.stat()
    assert count == 1
    assert size == len(data) + data.count(b"\n") - data.count(b"\r\n")
    assert f",W={size}" in name
    resp, lines, octets = p.retr(1)
    assert b".leading dot" in lines and b"hello" in lines
    p.quit()


def session_pids(inst):
    """Post-login session processes: pop3d children of a pop3d process."""
    pids = set(inst.daemon_pids("pop3d"))
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                ppid = int([ln for ln in f if ln.startswith("PPid:")][0].split()[1])
        except (OSError, IndexError):
            continue
        if ppid in pids:
            out.append(pid)
    return out


def session_in(inst, maildir):
    """The session processes whose working directory is maildir (a session process
    stays in its user's Maildir, its root too when run by root, between sessions)."""
    want = os.path.realpath(maildir)
    out = []
    for pid in session_pids(inst):
        try:
            if os.readlink(f"/proc/{pid}/cwd") == want:
                out.append(pid)
        except OSError:
            continue
    return out


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def test_ten_thousand(pop):
    addr = "hank@example.test"
    md = pop.maildir(addr)
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, d), exist_ok=True)
    body = b"From: a@b\nSubject: bulk\n\n" + b"x" * 200 + b"\n"
    w = len(body) + body.count(b"\n")
    for i in range(10000):
        name = f"{1600000000 + i}.M{i}P7.bulk,S={len(body)},W={w}"
        with open(os.path.join(md, "new", name), "wb") as f:
            f.write(body)
    chown_vmail(pop, addr)
    t0 = time.monotonic()
    p = login(pop, addr)
    assert p.stat() == (10000, 10000 * w)
    elapsed = time.monotonic() - t0
    assert elapsed < 5, elapsed
    resp, lines, _ = p.uidl()
    assert len(lines) == 10000
    resp, lines, _ = p.list()
    assert len(lines) == 10000
    sess = session_in(pop, md)
    assert len(sess) == 1
    rss_kb = int(proc_status(sess[0])["VmRSS"].split()[0])
    assert rss_kb < 30 * 1024, rss_kb
    assert p.retr(10000)[1][1] == b"Subject: bulk"
    p.quit()


@pytest.mark.skipif(os.geteuid() != 0, reason="privilege separation needs root")
def test_identities(pop):
    addr = "bob@example.test"
    r = Raw(pop)                                   # a pre-auth process is serving this
    queue = os.path.realpath(pop.queue_dir())
    pre = []
    for pid in pop.daemon_pids("pop3d"):
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"-l" in f.read().split(b"\0"):
                pre.append(pid)
    assert pre
    for pid in pre:
        st = proc_status(pid)
        assert all(int(x) != 0 for x in st["Uid"].split()), st["Uid"]
        assert all(int(x) != 0 for x in st["Gid"].split()), st["Gid"]
        assert os.readlink(f"/proc/{pid}/root") == os.path.join(queue, "login")
    r.cmd(f"USER {addr}")
    assert r.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    sess = session_in(pop, pop.maildir(addr))
    assert len(sess) == 1
    vm = pwd.getpwnam("vmail")
    st = proc_status(sess[0])
    assert [int(x) for x in st["Uid"].split()] == [vm.pw_uid] * 4
    assert [int(x) for x in st["Gid"].split()] == [vm.pw_gid] * 4
    assert st["Groups"].split() == [str(vm.pw_gid)]
    assert os.readlink(f"/proc/{sess[0]}/cwd") == os.path.realpath(pop.maildir(addr))
    r.cmd("QUIT")
    r.close()


def _fetchmail(inst, tmp, address, *extra):
    rc = os.path.join(tmp, "fetchmailrc")
    with open(rc, "w") as f:
        f.write(f'poll 127.0.0.1 with proto POP3 port {inst.port("pop3")} '
                f'user "{address}" there with password "{PASSWORD}" is "root" here\n')
    os.chmod(rc, 0o600)
    out = os.path.join(tmp, "out.mbox")
    mda = os.path.join(tmp, "mda.sh")
    with open(mda, "w") as f:
        f.write(f"#!/bin/sh\n{{ echo 'From fetchmail'; cat; echo; }} >> {out}\n")
    os.chmod(mda, 0o755)
    env = dict(os.environ, HOME=tmp, FETCHMAILHOME=tmp)
    cmd = ["fetchmail", "-f", rc, "--nosyslog", "--sslproto", "", "--mda", mda,
           "-i", os.path.join(tmp, "idfile"), "--pidfile", os.path.join(tmp, "pid"),
           "--nodetach"] + list(extra)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    ids = []
    if os.path.exists(out):
        ids = [m["Message-ID"] for m in mailbox.mbox(out, create=False)]
    return p, ids


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
def test_fetchmail(pop, tmp_path):
    addr = "hank@example.test"
    # Empty hank's box from the bulk test first.
    p = login(pop, addr)
    n = p.stat()[0]
    for i in range(1, n + 1):
        p.dele(i)
    p.quit()
    first = [f"<fm-{i}@x>" for i in range(500)]
    fill(pop, addr, [f"From: f@x\nSubject: fm {i}\nMessage-ID: {mid}\n\nbody {i}\n"
                     for i, mid in enumerate(first)])
    tmp = str(tmp_path)
    os.chmod(tmp, 0o755)
    p, ids = _fetchmail(pop, tmp, addr, "--keep", "--uidl")
    assert p.returncode == 0, p.stderr + p.stdout
    assert sorted(ids) == sorted(first)
    # Again with the same id file: nothing new.
    p, ids = _fetchmail(pop, tmp, addr, "--keep", "--uidl")
    assert p.returncode in (0, 1), p.stderr + p.stdout     # 1: no new mail
    assert sorted(ids) == sorted(first)
    # Two more arrive; only they are fetched, then everything is deleted.
    fill(pop, addr, ["Subject: late 1\nMessage-ID: <late-1@x>\n\nx\n",
                     "Subject: late 2\nMessage-ID: <late-2@x>\n\ny\n"])
    p, ids = _fetchmail(pop, tmp, addr, "--uidl", "--flush")
    assert p.returncode == 0, p.stderr + p.stdout
    assert sorted(ids) == sorted(first + ["<late-1@x>", "<late-2@x>"])
    assert files(pop, addr) == []

"""Least privilege and Maildir safety: NoNewPrivs on every daemon, resolve chrooted,
each virtual user's POP3 session process confined to that user's Maildir, the
unprivileged users unable to read mail that is not theirs, and delivery refusing a
Maildir whose directories are symbolic links or belong to someone else (the mail is
deferred, never written through the link).  What needs root is skipped without it;
the rest runs either way."""

import os
import poplib
import pwd
import shutil
import subprocess

import pytest

from conftest import start_instance
from instance import LIBEXEC, accounts_lock, wait_for, wait_maildir_message

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="privilege separation needs root")

SYSUSER = f"pstncnf{os.getpid()}"       # one per test run: runs at once do not clash
SYSPASS = "Conf-pass-42"


@pytest.fixture(scope="module")
def inst():
    i = start_instance(users=("alice@example.test", "bob@example.test",
                              "carol@example.test", "dave@example.test"),
                       domains=("example.test",))
    yield i
    i.cleanup()


def status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == key:
                return v.split()
    return None


def root_of(pid):
    return os.readlink(f"/proc/{pid}/root")


def send(inst, rcpt, mid, subject="x"):
    with inst.smtp() as s:
        s.sendmail("a@remote.test", [rcpt],
                   f"Subject: {subject}\r\nMessage-ID: {mid}\r\n\r\nbody\r\n")


def login(inst, user, password="secret"):
    p = poplib.POP3("127.0.0.1", inst.port("pop3"), timeout=30)
    p.user(user)
    assert p.pass_(password).startswith(b"+OK")
    return p


def pop3_sessions(inst):
    """pids of pop3d processes that serve a session: neither the pre-auth processes
    nor the post-login process (children of the post-login process)."""
    post = set()
    pids = inst.daemon_pids("pop3d")
    for pid in pids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"-l" not in f.read().split(b"\0") and status_field(pid, "PPid")[0] \
                    == str(inst.master_pid()):
                post.add(pid)
    return [p for p in pids if p not in post and int(status_field(p, "PPid")[0]) in post]


def session_in(inst, maildir):
    """The session processes whose root (as root) or working directory is maildir."""
    want = os.path.realpath(maildir)
    out = []
    for pid in pop3_sessions(inst):
        try:
            where = root_of(pid) if ROOT else os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if where.rstrip("/") == want:
            out.append(pid)
    return out


def test_no_new_privs_everywhere(inst):
    """Every process of the instance, master included, has NoNewPrivs set, looked at
    while smtpd, qmgr, resolve, local, auth and pop3d (all three kinds) are running."""
    send(inst, "alice@example.test", "<nnp@remote.test>")
    inst.wait_message("alice@example.test", "<nnp@remote.test>")
    p = login(inst, "alice@example.test")
    try:
        with inst.smtp() as s:
            s.ehlo()
            pids = {inst.master_pid(): "master"}
            for name in os.listdir(LIBEXEC):
                for pid in inst.daemon_pids(name):
                    pids[pid] = name
            seen = set(pids.values())
            for name in ("master", "smtpd", "qmgr", "resolve", "local", "auth", "pop3d"):
                assert name in seen, (name, seen)
            assert pop3_sessions(inst), "no POP3 session process"
            for pid, name in pids.items():
                try:
                    nnp = status_field(pid, "NoNewPrivs")
                except FileNotFoundError:
                    continue            # gone meanwhile (an idle process leaving)
                assert nnp == ["1"], (name, pid, nnp)
    finally:
        p.quit()


@needs_root
def test_resolve_chrooted(inst):
    queue = os.path.realpath(inst.queue_dir())
    postern = pwd.getpwnam("postern")
    send(inst, "alice@example.test", "<chroot@remote.test>")
    inst.wait_message("alice@example.test", "<chroot@remote.test>")
    pids = inst.daemon_pids("resolve")
    assert pids
    for pid in pids:
        assert root_of(pid) == queue
        assert [int(x) for x in status_field(pid, "Uid")] == [postern.pw_uid] * 4


def test_resolve_sees_changes(inst):
    """resolve reads its maps and the system users before it chroots: a user added
    later, to a cdb map, is still accepted (a new resolve process reads it), and
    system users are known, unknown ones refused."""
    with inst.smtp() as s:
        s.ehlo()
        s.mail("a@remote.test")
        assert s.rcpt("alice@example.test")[0] == 250
        assert s.rcpt(f"nobody-here-{os.getpid()}@example.test")[0] == 550
        assert s.rcpt(f"root@{inst.hostname}")[0] == 250
        assert s.rcpt(f"no-such-user-{os.getpid()}@{inst.hostname}")[0] == 550
    inst.add_user("erin@example.test")
    with inst.smtp() as s:
        s.ehlo()
        s.mail("a@remote.test")
        code, text = s.rcpt("erin@example.test")
        assert code == 250, (code, text)


def test_pop3_session_per_user_in_maildir(inst):
    """A virtual user's session process has that user's Maildir as its root (as root;
    without root, as its working directory), runs as vmail, and serves nobody else:
    the next user gets another process even when the first one is idle."""
    for u in ("bob", "carol"):
        send(inst, f"{u}@example.test", f"<pop-{u}@remote.test>")
        inst.wait_message(f"{u}@example.test", f"<pop-{u}@remote.test>")
    bob_dir = inst.maildir("bob@example.test")
    carol_dir = inst.maildir("carol@example.test")

    p = login(inst, "bob@example.test")
    bob = session_in(inst, bob_dir)
    assert len(bob) == 1, bob
    if ROOT:
        vmail = pwd.getpwnam("vmail")
        assert [int(x) for x in status_field(bob[0], "Uid")] == [vmail.pw_uid] * 4
    assert b"pop-bob" in b"\n".join(p.retr(1)[1])
    p.quit()
    # bob's process is idle now; carol must not get it.
    q = login(inst, "carol@example.test")
    carol = session_in(inst, carol_dir)
    assert len(carol) == 1 and carol[0] != bob[0], (bob, carol)
    assert b"pop-carol" in b"\n".join(q.retr(1)[1])
    # Both at once: two processes, each in its own Maildir.
    p = login(inst, "bob@example.test")
    again = session_in(inst, bob_dir)
    assert len(again) == 1 and again[0] != carol[0]
    assert session_in(inst, carol_dir) == carol
    p.quit()
    q.quit()


@pytest.fixture(scope="module")
def sysuser():
    if not ROOT:
        pytest.skip("creating a system user needs root")
    home = f"/tmp/{SYSUSER}-home"
    with accounts_lock():
        subprocess.run(["userdel", "-r", SYSUSER], capture_output=True)
        subprocess.run(["useradd", "-m", "-d", home, "-s", "/usr/sbin/nologin", SYSUSER],
                       check=True)
        subprocess.run(["chpasswd"], input=f"{SYSUSER}:{SYSPASS}\n", text=True, check=True)
    os.chmod(home, 0o755)
    yield pwd.getpwnam(SYSUSER)
    with accounts_lock():
        subprocess.run(["userdel", "-r", SYSUSER], capture_output=True)


def one_file(d):
    names = os.listdir(d)
    assert len(names) == 1, names
    return os.path.join(d, names[0])


def read_as(user, path):
    """Runs cat path as user with no other group: the completed process."""
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                           "cat", path], capture_output=True, timeout=30)


def list_as(user, path):
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                           "ls", path], capture_output=True, timeout=30)


@needs_root
def test_unprivileged_users_cannot_read_mail(inst, sysuser):
    """postern (every chrooted daemon) reads no Maildir; vmail (every virtual user's
    session) reads no system user's Maildir."""
    mid = f"<sys-{os.getpid()}@remote.test>"
    send(inst, f"{SYSUSER}@{inst.hostname}", mid)
    sys_maildir = os.path.join(sysuser.pw_dir, "Maildir")
    wait_maildir_message(sys_maildir, mid)
    sys_file = one_file(os.path.join(sys_maildir, "new"))
    send(inst, "dave@example.test", "<dave@remote.test>")
    inst.wait_message("dave@example.test", "<dave@remote.test>")
    vfile = one_file(os.path.join(inst.maildir("dave@example.test"), "new"))
    assert os.stat(sys_file).st_uid == sysuser.pw_uid
    assert os.path.isfile(vfile)

    for path in (vfile, sys_file):
        r = read_as("postern", path)
        assert r.returncode != 0 and b"Permission denied" in r.stderr, (path, r)
    r = list_as("postern", inst.maildir("dave@example.test"))
    assert r.returncode != 0, r
    r = read_as("vmail", sys_file)
    assert r.returncode != 0 and b"Permission denied" in r.stderr, r
    r = list_as("vmail", os.path.join(sys_maildir, "new"))
    assert r.returncode != 0, r
    # The control: the owner can.
    r = read_as(sysuser.pw_name, sys_file)
    assert r.returncode == 0 and mid.encode() in r.stdout, r


@needs_root
def test_system_user_session_in_maildir(inst, sysuser):
    """A system user's session process keeps the user's uid and has the user's
    Maildir, not the home directory, as its root."""
    maildir = os.path.join(sysuser.pw_dir, "Maildir")
    mid = f"<sys-pop-{os.getpid()}@remote.test>"
    send(inst, f"{SYSUSER}@{inst.hostname}", mid)
    wait_maildir_message(maildir, mid)
    p = login(inst, SYSUSER, SYSPASS)
    try:
        pids = session_in(inst, maildir)
        assert len(pids) == 1, pids
        assert [int(x) for x in status_field(pids[0], "Uid")] == [sysuser.pw_uid] * 4
        assert status_field(pids[0], "NoNewPrivs") == ["1"]
        count, _ = p.stat()
        assert any(mid.encode() in b"\n".join(p.retr(i)[1]) for i in range(1, count + 1))
    finally:
        p.quit()


def make_maildir(path, uid, gid):
    for sub in ("", "tmp", "new", "cur"):
        d = os.path.join(path, sub)
        os.makedirs(d, mode=0o700, exist_ok=True)
        if ROOT:
            os.chown(d, uid, gid)


def test_symlinked_new_refused_and_deferred(inst):
    """new/ is a link to a directory elsewhere: delivery is deferred with a log line
    naming the reason, nothing reaches the link's target, and the mail is delivered
    once the Maildir is repaired."""
    owner = pwd.getpwnam("vmail") if ROOT else pwd.getpwuid(os.geteuid())
    addr = "frank@example.test"
    inst.add_user(addr)
    maildir = inst.maildir(addr)
    make_maildir(maildir, owner.pw_uid, owner.pw_gid)
    elsewhere = os.path.join(inst.dir, "elsewhere")
    make_maildir(elsewhere, owner.pw_uid, owner.pw_gid)
    os.rmdir(os.path.join(maildir, "new"))
    os.symlink(os.path.join(elsewhere, "new"), os.path.join(maildir, "new"))

    mark = inst.log_mark()
    mid = f"<symlink-{os.getpid()}@remote.test>"
    send(inst, addr, mid)
    try:
        line = inst.wait_log(f"to=<{addr}>", "status=deferred", since=mark, timeout=30)
    except AssertionError:
        print(inst.log_since(mark))
        raise
    assert "symbolic link" in line, line
    assert inst.log_lines("refused:", f"{maildir}/new is a symbolic link", since=mark)
    for sub in ("new", "tmp", "cur"):
        assert os.listdir(os.path.join(elsewhere, sub)) == []
    assert os.listdir(os.path.join(maildir, "tmp")) == []
    assert not inst.queue_empty()

    os.unlink(os.path.join(maildir, "new"))
    make_maildir(maildir, owner.pw_uid, owner.pw_gid)
    mark = inst.log_mark()
    inst.run("queue", "flush")
    inst.wait_message(addr, mid, timeout=30)
    assert os.listdir(os.path.join(elsewhere, "new")) == []


def test_symlinked_maildir_refused(inst):
    """The Maildir itself is a link (a user pointing it at someone else's): deferred."""
    addr = "gina@example.test"
    inst.add_user(addr)
    maildir = inst.maildir(addr)
    target = inst.maildir("alice@example.test")
    before = set(os.listdir(os.path.join(target, "new")))
    os.symlink(target, maildir)
    mark = inst.log_mark()
    send(inst, addr, f"<linked-{os.getpid()}@remote.test>")
    try:
        line = inst.wait_log(f"to=<{addr}>", "status=deferred", since=mark, timeout=30)
    except AssertionError:
        print(inst.log_since(mark))
        raise
    assert "symbolic link" in line, line
    assert set(os.listdir(os.path.join(target, "new"))) == before


@needs_root
def test_wrong_owner_refused(inst):
    """A Maildir that belongs to another uid than the mailbox owner's is refused."""
    addr = "hank@example.test"
    inst.add_user(addr)
    maildir = inst.maildir(addr)
    make_maildir(maildir, 65534, 65534)
    mark = inst.log_mark()
    send(inst, addr, f"<owner-{os.getpid()}@remote.test>")
    line = inst.wait_log(f"to=<{addr}>", "status=deferred", since=mark, timeout=30)
    assert "owned by uid 65534" in line, line
    for sub in ("tmp", "new"):
        assert os.listdir(os.path.join(maildir, sub)) == []
    # The same for new/ alone.
    vmail = pwd.getpwnam("vmail")
    shutil.rmtree(maildir)
    make_maildir(maildir, vmail.pw_uid, vmail.pw_gid)
    os.chown(os.path.join(maildir, "new"), 0, 0)
    mark = inst.log_mark()
    send(inst, addr, f"<owner2-{os.getpid()}@remote.test>")
    line = inst.wait_log(f"to=<{addr}>", "status=deferred", since=mark, timeout=30)
    assert "owned by uid 0" in line, line
    assert os.listdir(os.path.join(maildir, "new")) == []


@needs_root
def test_pop3_refuses_linked_maildir(inst):
    """A session whose Maildir is a symbolic link is refused, not chrooted there."""
    addr = "ivan@example.test"
    inst.add_user(addr)
    os.symlink(inst.maildir("alice@example.test"), inst.maildir(addr))
    p = poplib.POP3("127.0.0.1", inst.port("pop3"), timeout=30)
    p.user(addr)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("secret")
    assert b"SYS/TEMP" in e.value.args[0]
    p.close()
    wait_for(lambda: inst.log_lines(f"user=<{addr}>: cannot open the mailbox",
                                    "symbolic link", since=0),
             what="the refusal in the log")

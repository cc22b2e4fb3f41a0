"""A system user (from /etc/passwd and /etc/shadow) reads mail delivered to
user@myhostname over POP3; the session runs with that user's uid.  Needs root: it
creates a user for the test and removes it afterwards."""

import os
import poplib
import pwd
import subprocess

import pytest

from conftest import start_instance
from instance import accounts_lock, wait_maildir_message

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a system user needs root")

NAME = f"pstnpop{os.getpid()}"          # one per test run: runs at once do not clash
PASSWORD = "Sys-pass-42"


@pytest.fixture(scope="module")
def sysuser():
    home = f"/tmp/{NAME}-home"
    with accounts_lock():
        subprocess.run(["userdel", "-r", NAME], capture_output=True)
        subprocess.run(["useradd", "-m", "-d", home, "-s", "/usr/sbin/nologin", NAME],
                       check=True)
        subprocess.run(["chpasswd"], input=f"{NAME}:{PASSWORD}\n", text=True, check=True)
    os.chmod(home, 0o755)
    yield pwd.getpwnam(NAME)
    with accounts_lock():
        subprocess.run(["userdel", "-r", NAME], capture_output=True)


@pytest.fixture(scope="module")
def sysmta(sysuser):
    inst = start_instance(domains=("example.test",))
    yield inst
    inst.cleanup()


def session_uids(inst, maildir):
    """uids of processes whose working directory is maildir (the POP3 session)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").rstrip("/") == maildir.rstrip("/"):
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            out.append(int(line.split()[1]))
        except OSError:
            continue
    return out


def test_system_user_pop3(sysmta, sysuser):
    mid = f"<system-user.{os.getpid()}@remote.test>"
    with sysmta.smtp() as s:
        s.sendmail("a@remote.test", [f"{NAME}@{sysmta.hostname}"],
                   f"Subject: for a system user\r\nMessage-ID: {mid}\r\n\r\nhello\r\n")
    wait_maildir_message(os.path.join(sysuser.pw_dir, "Maildir"), mid)
    p = poplib.POP3("127.0.0.1", sysmta.port("pop3"), timeout=30)
    p.user(NAME)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    count, _ = p.stat()
    assert count == 1
    assert b"Subject: for a system user" in p.retr(1)[1]
    uids = session_uids(sysmta, os.path.join(sysuser.pw_dir, "Maildir"))
    assert uids and all(u == sysuser.pw_uid for u in uids), uids
    p.quit()
    q = poplib.POP3("127.0.0.1", sysmta.port("pop3"), timeout=30)
    q.user(NAME)
    with pytest.raises(poplib.error_proto):
        q.pass_("wrong")
    q.close()

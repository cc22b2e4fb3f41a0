"""Run as root, each daemon has the uid, gid and root directory DESIGN.md gives it."""

import os
import pwd
import socket

import pytest

from conftest import start_instance
from instance import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege separation needs root")


@pytest.fixture(scope="module")
def relay():
    """A relay host that accepts connections and never answers: an smtp process that
    reaches it stays in its session until the test lets go."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.settimeout(30)
    yield s
    s.close()


@pytest.fixture(scope="module")
def root_mta(relay):
    inst = start_instance(users=("alice@example.test",), domains=("example.test",),
                          config={"relayhost": f"[127.0.0.1]:{relay.getsockname()[1]}"})
    yield inst
    inst.cleanup()


def ids(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid"):
                out[k] = [int(x) for x in v.split()]   # real, effective, saved, fs
    out["root"] = os.readlink(f"/proc/{pid}/root")
    return out


def test_daemon_identities(root_mta):
    mark = root_mta.log_mark()
    with root_mta.smtp() as s:
        s.sendmail("a@remote.test", ["alice@example.test"],
                   b"Subject: p\r\nMessage-ID: <identities@remote.test>\r\n\r\nx\r\n")
        root_mta.wait_message("alice@example.test", "<identities@remote.test>")
        # local switches back to root only after its last fsync: wait for qmgr's word.
        root_mta.wait_log("to=<alice@example.test>", "status=sent", since=mark)
        # smtpd is busy with this session now, so it is surely running.
        postern = pwd.getpwnam("postern")
        queue = os.path.realpath(root_mta.queue_dir())
        expect = {
            "master": (0, 0, "/"),
            "smtpd": (postern.pw_uid, postern.pw_gid, queue),
            "qmgr": (postern.pw_uid, postern.pw_gid, queue),
            "resolve": (postern.pw_uid, postern.pw_gid, queue),
            "local": (0, 0, "/"),
        }
        for name, (uid, gid, root) in expect.items():
            pids = root_mta.daemon_pids(name)
            assert pids, f"no {name} process"
            for pid in pids:
                got = ids(pid)
                assert got["Uid"] == [uid] * 4, (name, got)
                assert got["Gid"] == [gid] * 4, (name, got)
                assert got["root"] == root, (name, got)


def login_pids(inst, daemon):
    """The pre-auth (-l) processes of pop3d or imapd."""
    out = []
    for pid in inst.daemon_pids(daemon):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"-l" in f.read().split(b"\0"):
                    out.append(pid)
        except OSError:
            pass
    return out


def test_pickup_smtp_anvil_and_imap_login_roots(root_mta, relay):
    """pickup, smtp (during an outbound delivery) and anvil run as postern chrooted
    into the queue directory; the pre-auth imapd as nobody chrooted into login/."""
    postern = pwd.getpwnam("postern")
    nobody = pwd.getpwnam("nobody")
    queue = os.path.realpath(root_mta.queue_dir())
    held = []
    try:
        # smtp: a message for a remote domain goes to the relay, which keeps it talking
        with root_mta.smtp() as s:
            s.sendmail("a@remote.test", ["far@elsewhere.test"],
                       b"Subject: p\r\nMessage-ID: <roots@remote.test>\r\n\r\nx\r\n")
        conn, _ = relay.accept()
        held.append(conn)
        # anvil: a client of its private socket keeps it running
        a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        a.connect(os.path.join(root_mta.queue_dir(), "private", "anvil"))
        held.append(a)
        wait_for(lambda: root_mta.daemon_pids("anvil"), what="an anvil process")
        # imapd -l: a client waiting at the greeting
        i = socket.create_connection(("127.0.0.1", root_mta.port("imap")), timeout=10)
        held.append(i)
        assert i.recv(100).startswith(b"* OK")
        expect = {
            "pickup": (postern.pw_uid, postern.pw_gid, queue, root_mta.daemon_pids),
            "smtp": (postern.pw_uid, postern.pw_gid, queue, root_mta.daemon_pids),
            "anvil": (postern.pw_uid, postern.pw_gid, queue, root_mta.daemon_pids),
            "imapd": (nobody.pw_uid, nobody.pw_gid, os.path.join(queue, "login"),
                      lambda name: login_pids(root_mta, name)),
        }
        for name, (uid, gid, root, pids_of) in expect.items():
            pids = pids_of(name)
            assert pids, f"no {name} process"
            for pid in pids:
                got = ids(pid)
                assert got["Uid"] == [uid] * 4, (name, got)
                assert got["Gid"] == [gid] * 4, (name, got)
                assert got["root"] == root, (name, got)
    finally:
        for s in held:
            s.close()

"""Run as root, each daemon has the uid, gid and root directory DESIGN.md gives it."""

import os
import pwd

import pytest

from conftest import start_instance

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="privilege separation needs root")


@pytest.fixture(scope="module")
def root_mta():
    inst = start_instance(users=("alice@example.test",), domains=("example.test",))
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

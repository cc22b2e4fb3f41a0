"""Regression tests for security fixes in the admin command and master: `postern init`
run as root refuses paths other users control; a password map made by `postern user
add` is never world-readable; after a reload only one qmgr runs at a time."""

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import start_instance
from instance import POSTERN, Instance, wait_for

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def postern(*args, input=None):
    return subprocess.run([POSTERN] + list(args), input=input, capture_output=True,
                          text=True, timeout=60)


@root_only
def test_init_as_root_refuses_a_directory_owned_by_another_user():
    top = tempfile.mkdtemp(prefix="postern-hard-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        theirs = os.path.join(top, "theirs")
        os.mkdir(theirs, 0o755)
        os.chown(theirs, 65534, 65534)            # nobody could swap names in it
        p = postern("init", os.path.join(theirs, "inst"), "--domain", "example.test")
        assert p.returncode != 0
        assert "owned by uid 65534" in p.stderr
        assert not os.path.exists(os.path.join(theirs, "inst", "queue"))

        open_dir = os.path.join(top, "open")
        os.mkdir(open_dir)
        os.chmod(open_dir, 0o777)                 # writable by all, not sticky
        p = postern("init", os.path.join(open_dir, "inst"), "--domain", "example.test")
        assert p.returncode != 0
        assert "writable by other users" in p.stderr

        sticky = os.path.join(top, "sticky")
        os.mkdir(sticky)
        os.chmod(sticky, 0o1777)                  # like /tmp: fine as an ancestor
        p = postern("init", os.path.join(sticky, "inst"), "--domain", "example.test")
        assert p.returncode == 0, p.stderr
        p = postern("init", sticky, "--domain", "example.test")   # but not as DIR
        assert p.returncode != 0
        assert "writable by other users" in p.stderr
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_user_add_makes_a_missing_password_map_private():
    inst = Instance()
    try:
        pw = inst.map_path("passwd")
        os.unlink(pw)
        os.unlink(pw + ".cdb")
        inst.add_user("carol@example.test", "pw")
        assert stat.S_IMODE(os.stat(pw).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(pw + ".cdb").st_mode) & 0o077 == 0
        # The mailbox map, public by nature, keeps its mode.
        assert stat.S_IMODE(os.stat(inst.map_path("vmailbox")).st_mode) == 0o644
    finally:
        inst.cleanup()


def test_reload_never_runs_two_qmgrs():
    inst = start_instance(users=("dave@example.test",), domains=("example.test",))
    try:
        wait_for(lambda: len(inst.daemon_pids("qmgr")) == 1, what="qmgr")
        old = inst.daemon_pids("qmgr")
        inst.run("reload")
        deadline = time.monotonic() + 8
        seen_new = False
        while time.monotonic() < deadline:
            pids = inst.daemon_pids("qmgr")
            assert len(pids) <= 1, f"two qmgr processes at once: {pids}"
            if pids and pids != old:
                seen_new = True
                break
            time.sleep(0.01)
        assert seen_new, "no new qmgr after the reload"
        with inst.smtp() as s:
            s.sendmail("a@remote.test", ["dave@example.test"],
                       b"Subject: r\r\nMessage-ID: <after-reload@remote.test>\r\n\r\nx\r\n")
        inst.wait_message("dave@example.test", "<after-reload@remote.test>")
    finally:
        inst.cleanup()


def test_reload_with_an_unopenable_log_file_keeps_master_running():
    inst = start_instance(users=("erin@example.test",), domains=("example.test",))
    try:
        pid = inst.master_pid()
        mark = inst.log_mark()
        inst.config(maillog_file="/nonexistent/postern/maillog")
        # postern reload checks first and refuses; master, told directly, refuses too
        p = inst.run("reload", check=False)
        assert p.returncode == 1 and "maillog_file" in p.stderr
        os.kill(pid, signal.SIGHUP)
        inst.wait_log("reload failed", "cannot open maillog_file", since=mark)
        # and status says so
        wait_for(lambda: "last reload failed (the running configuration stays): cannot open "
                 "maillog_file /nonexistent/postern/maillog" in inst.run("status").stdout,
                 what="status to show the failed reload")
        assert inst.run("status", check=False).returncode == 0
        assert inst.master_pid() == pid
        # Daemons read postern.conf themselves when they start: put it right, and
        # the same master serves again.
        inst.config(maillog_file=inst.logfile)
        with inst.smtp() as s:
            s.sendmail("a@remote.test", ["erin@example.test"],
                       b"Subject: l\r\nMessage-ID: <log-back@remote.test>\r\n\r\nx\r\n")
        inst.wait_message("erin@example.test", "<log-back@remote.test>")
    finally:
        inst.cleanup()

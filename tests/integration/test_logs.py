"""Logs that are never lost: without a syslog daemon and without maillog_file, `start`
says so and everything logs to DIR/log/maillog; `postern logrotate` renames the log
file and the processes open a new one; the final status of each delivery is logged
under the delivery agent's name (smtp, local), so that pflogsumm --syslog-name=postern
counts it as it does Postfix's."""

import gzip
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import start_instance
from instance import reserve_port, wait_for

USER = "alice@example.test"


def syslog_listens():
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            s.connect("/dev/log")
            return True
        except OSError:
            pass
        finally:
            s.close()
    return False


def test_without_syslog_start_says_so_and_logs_to_the_instance():
    i = start_instance(users=(USER,), start=False)
    try:
        i.run("config", "-X", "maillog_file")
        fallback = os.path.join(i.conf_dir, "log", "maillog")
        p = i.run("start")
        i.started = True
        if syslog_listens():
            # a syslog daemon listens: the lines go there, and start has nothing to say
            assert "syslog" not in p.stderr
            assert not os.path.exists(fallback)
            return
        assert (f"no syslog daemon listens on /dev/log and maillog_file is not set: "
                f"logging to {fallback}") in p.stderr
        i.logfile = fallback
        mark = 0
        qid = i.submit("bob@remote.test", [USER], "Message-ID: <fb@test>\r\n\r\nx\r\n")
        i.wait_message(USER, "<fb@test>")
        i.wait_log(f"postern/local[", f"{qid}: to=<{USER}>", "status=sent", since=mark)
        assert i.log_lines("postern/master[", "daemon started", since=mark)
        assert i.log_lines("postern/smtpd[", f"{qid}: client=", since=mark)
        # the admin command's actions land there too
        i.run("queue", "delete", "0" * 21, check=False)
    finally:
        i.cleanup()


def test_logrotate_renames_and_new_processes_log_afresh():
    i = start_instance(users=(USER,))
    try:
        old_size = os.path.getsize(i.logfile)
        assert old_size > 0
        p = i.run("logrotate")
        m = re.search(r"rotated to (\S+)\n", p.stdout)
        assert m, p.stdout
        rotated = m.group(1)
        assert rotated.startswith(i.logfile + ".")
        assert re.fullmatch(r"\d{8}-\d{6}", rotated[len(i.logfile) + 1:])
        assert os.path.getsize(rotated) >= old_size
        assert "reloading" in p.stdout
        # master reopens at its reload; the processes it starts log to the new file
        wait_for(lambda: os.path.exists(i.logfile), what="the new log file")
        with open(rotated) as f:
            assert "reload -- configuration" in f.read()
        qid = i.submit("bob@remote.test", [USER], "Message-ID: <rot@test>\r\n\r\nx\r\n")
        i.wait_message(USER, "<rot@test>")
        i.wait_log(f"{qid}: to=<{USER}>", "status=sent", since=0)
        assert not os.path.exists(rotated + ".gz")     # the newest waits
        # the next rotation compresses the one before (gzip by default); the stamp
        # has a second's resolution: a second rotation in the same second is refused
        p2 = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
            i.run("logrotate", check=False)), what="a second rotation", timeout=5)
        assert f"{rotated}: compressed with gzip" in p2.stdout, p2.stdout
        with gzip.open(rotated + ".gz", "rt") as f:
            assert "reload -- configuration" in f.read()
        assert not os.path.exists(rotated)
        newest = re.search(r"rotated to (\S+)\n", p2.stdout).group(1)
        assert os.path.exists(newest) and not os.path.exists(newest + ".gz")
    finally:
        i.cleanup()


def test_logrotate_compressor_is_checked_and_can_be_off():
    i = start_instance(users=(USER,), config={"maillog_file_compressor": ""})
    try:
        for _ in range(2):
            p = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
                i.run("logrotate", check=False)), what="a rotation", timeout=5)
            assert "compressed" not in p.stdout
        assert not [f for f in os.listdir(os.path.dirname(i.logfile)) if f.endswith(".gz")]
        p = i.run("config", "maillog_file_compressor=compress", check=False)
        assert p.returncode != 0 and "maillog_file_compressor" in p.stderr
    finally:
        i.cleanup()


@pytest.mark.skipif(shutil.which("pflogsumm") is None,
                    reason="pflogsumm not installed (Debian package pflogsumm)")
def test_pflogsumm_counts_a_test_run(tmp_path):
    dead = reserve_port()
    i = start_instance(users=(USER, "bob@example.test"),
                       config={"relayhost": f"[127.0.0.1]:{dead}",
                               "mynetworks": "127.0.0.0/8", "minimal_backoff_time": "1h",
                               "maximal_backoff_time": "2h"})
    try:
        mark = i.log_mark()
        local = []
        for n in range(3):
            local.append(i.submit("x@remote.test", [USER, "bob@example.test"],
                                  f"Message-ID: <p{n}@test>\r\n\r\nbody {n}\r\n"))
        for n in range(3):
            i.wait_message(USER, f"<p{n}@test>")
            i.wait_message("bob@example.test", f"<p{n}@test>")
        far = [i.submit(USER, [f"far{n}@remote.test"], "Subject: far\r\n\r\nx\r\n")
               for n in range(2)]
        for q in far:
            i.wait_log(f"{q}: to=<", "status=deferred", since=mark)
        # an unknown local recipient is refused at RCPT: a reject, not a delivery
        with i.smtp() as s:
            s.ehlo()
            s.mail("x@remote.test")
            assert s.rcpt("nobody@example.test")[0] == 550
        log = tmp_path / "maillog"
        with open(i.logfile, "rb") as f:
            f.seek(mark)
            log.write_bytes(f.read())
        text = log.read_text(errors="replace")
        # the final status lines carry the agent's name, as in Postfix
        assert re.search(r" postern/local\[\d+\]: \w+: to=<alice@example\.test>, relay=local,"
                         r" .*status=sent", text)
        assert re.search(r" postern/smtp\[\d+\]: \w+: to=<far0@remote\.test>, .*"
                         r"status=deferred", text)
        assert not re.search(r" postern/qmgr\[\d+\]: \w+: to=<[^>]*>, relay=local", text)

        p = subprocess.run(["pflogsumm", "--syslog-name=postern", str(log)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        totals = {}
        for ln in p.stdout.splitlines():
            m = re.fullmatch(r"\s*(\d+)\s+(received|delivered|deferred|bounced|rejected)"
                             r"(?:\s+\(\d+%\)|\s+\(\d+\s+deferrals?\))?", ln)
            if m and m.group(2) not in totals:
                totals[m.group(2)] = int(m.group(1))
        assert totals.get("received") == 5, p.stdout
        assert totals.get("delivered") == 6, p.stdout         # 3 messages x 2 recipients
        assert totals.get("deferred") == 2, p.stdout
        assert totals.get("bounced") == 0, p.stdout
        assert totals.get("rejected") == 1, p.stdout
    finally:
        i.cleanup()

"""The admin command as an operator meets it: `postern init` writes the postmaster and
root aliases, postmaster@ every local and virtual domain is accepted (RFC 5321 4.5.1),
`postern status` (and --json) shows each service's state, the queue's counts and the
age of the oldest deferred message."""

import json
import re
import os
import subprocess

import pytest

from conftest import start_instance
from instance import POSTERN, wait_for

USER = "alice@example.test"


@pytest.fixture(scope="module")
def inst():
    i = start_instance(users=(USER,), domains=("example.test", "other.test"),
                       config={"mynetworks": "127.0.0.0/8"})
    yield i
    i.cleanup()


def test_init_writes_postmaster_and_root_aliases(inst):
    entries = {}
    with open(inst.map_path("aliases")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                k, v = line.split(None, 1)
                entries[k] = v.strip()
    # postmaster goes to root, root to the first user added
    assert entries == {"postmaster": "root", "root": USER}


def test_init_with_postmaster_option(tmp_path):
    d = tmp_path / "i"
    p = subprocess.run([POSTERN, "init", str(d), "--domain", "example.test",
                        "--postmaster", "admin@example.net"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    text = (d / "maps" / "aliases").read_text()
    assert "\npostmaster root\n" in text and "\nroot admin@example.net\n" in text
    # a later first user does not take root's mail away from the chosen address
    p = subprocess.run([POSTERN, "-c", str(d), "user", "add", "bob@example.test"],
                       input="pw\n", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "\nroot admin@example.net\n" in (d / "maps" / "aliases").read_text()
    assert "root" not in p.stdout
    for bad in ("a b@example.net", "x@y, z@w", "|/bin/sh", ""):
        p = subprocess.run([POSTERN, "init", str(tmp_path / "j"), "--postmaster", bad],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "--postmaster" in p.stderr, bad
        assert not (tmp_path / "j" / "postern.conf").exists()


@pytest.mark.parametrize("rcpt", ["postmaster@example.test", "PostMaster@other.test",
                                  "postmaster@mx.example.test", "postmaster"])
def test_postmaster_reaches_the_first_user(inst, rcpt):
    mid = f"<pm-{rcpt.replace('@', '.')}@test>"
    inst.submit("someone@remote.test", [rcpt],
                f"Message-ID: {mid}\r\nSubject: hello postmaster\r\n\r\nhi\r\n")
    inst.wait_message(USER, mid)


def test_postmaster_accepted_without_any_alias(inst):
    saved = open(inst.map_path("aliases")).read()
    try:
        inst.write_map("aliases", "")
        with inst.smtp() as s:
            s.ehlo()
            assert s.mail("someone@remote.test")[0] == 250
            assert s.rcpt("postmaster@other.test")[0] == 250
            assert s.rcpt("nobody-at-all@other.test")[0] == 550
            s.rset()
    finally:
        inst.write_map("aliases", saved)


def test_status_text_and_json(inst):
    p = inst.run("status")
    assert p.stdout.startswith(f"postern is running (pid {inst.master_pid()})\n")
    lines = p.stdout.splitlines()
    services = lines[lines.index("services:") + 1:lines.index("queue:")]
    names = {ln.split()[0]: ln.split()[1] for ln in services}
    assert names["smtp"] == "running" and names["qmgr"] == "running"
    assert "deferred" in p.stdout and "hold" in p.stdout

    p = inst.run("status", "--json")
    assert p.stdout.count("\n") == 1
    st = json.loads(p.stdout)
    assert st["running"] is True and st["pid"] == inst.master_pid()
    assert {s["name"]: s["state"] for s in st["services"]}["qmgr"] == "running"
    assert set(st["queue"]) == {"maildrop", "incoming", "active", "deferred", "hold",
                                "corrupt"}
    assert all(isinstance(v, int) for v in st["queue"].values())


def test_status_counts_and_oldest_deferred(inst):
    # a message for an unreachable relay host stays deferred
    inst.config(relayhost="[127.0.0.1]:9")
    inst.reload()
    try:
        mark = inst.log_mark()
        qid = inst.submit("alice@example.test", ["far@remote.test"],
                          "Subject: stuck\r\n\r\nbody\r\n")
        inst.wait_log(f"{qid}: ", "status=deferred", since=mark)
        wait_for(lambda: qid in inst.queue_files("deferred"), what="the deferred file")
        st = json.loads(inst.run("status", "--json").stdout)
        assert st["queue"]["deferred"] >= 1
        assert st["oldest_deferred_age"] is not None and 0 <= st["oldest_deferred_age"] < 600
        text = inst.run("status").stdout
        assert [ln for ln in text.splitlines() if ln.split()[:1] == ["deferred"]
                and "(oldest " in ln]
    finally:
        inst.run("queue", "delete", qid, check=False)
        inst.config(relayhost="")
        inst.reload()


def test_status_shows_a_throttled_service(tmp_path):
    i = start_instance(start=False)
    try:
        # a service whose daemon cannot start: its processes fail, master throttles it
        with open(os.path.join(i.conf_dir, "master.conf"), "a") as f:
            f.write("broken       daemon  private/broken    -        n       1      qmgr -Z\n")
        i.start()

        def throttled():
            st = json.loads(i.run("status", "--json").stdout)
            return [s for s in st["services"] if s["name"] == "broken"
                    and s["state"] == "throttled" and s["failures"] >= 1]
        svc = wait_for(throttled, what="the broken service to be throttled")[0]
        assert svc["last_failure"] == "exit status 1"
        text = i.run("status").stdout
        assert [ln for ln in text.splitlines()
                if ln.split()[:2] == ["broken", "throttled"] and "failed process" in ln]
    finally:
        i.cleanup()


def test_status_when_stopped(inst, tmp_path):
    d = tmp_path / "stopped"
    subprocess.run([POSTERN, "init", str(d)], check=True, capture_output=True, timeout=60)
    p = subprocess.run([POSTERN, "-c", str(d), "status", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1
    st = json.loads(p.stdout)
    assert st["running"] is False and st["services"] == []
    assert st["queue"]["deferred"] == 0 and st["oldest_deferred_age"] is None


# ---- the command is safe to use ----

def run(*args, input=None, env=None):
    return subprocess.run([POSTERN, *args], input=input, capture_output=True, text=True,
                          timeout=60, env=env)


def test_missing_instance_is_an_error(tmp_path):
    for args in (["-c", str(tmp_path / "nowhere"), "status"],
                 ["-c", str(tmp_path), "config"],          # a directory without postern.conf
                 ["-c", str(tmp_path), "queue", "list"],
                 ["-c", str(tmp_path), "stop"]):
        p = run(*args)
        assert p.returncode == 1, args
        assert p.stdout == "" and "postern.conf" in p.stderr or "no instance" in p.stderr, \
            (args, p.stderr)
    env = dict(os.environ, POSTERN_CONFIG_DIR=str(tmp_path / "nowhere"))
    assert run("status", env=env).returncode == 1
    # the defaults need no instance
    p = run("-c", str(tmp_path / "nowhere"), "config", "-d", "queue_run_delay")
    assert p.returncode == 0 and p.stdout == "queue_run_delay = 300s\n"


def test_help_and_version():
    for args in (["--help"], ["-h"], ["help"]):
        p = run(*args)
        assert p.returncode == 0 and p.stderr == ""
        assert p.stdout.startswith("usage: postern ") and "queue" in p.stdout
    p = run("queue", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: postern [-c DIR] queue")
    p = run("--version")
    assert p.returncode == 0 and re.fullmatch(r"postern \S+\n", p.stdout)
    p = run("--bogus")
    assert p.returncode == 2 and "usage:" in p.stderr and p.stdout == ""


def test_stop_and_status_with_a_broken_postern_conf():
    i = start_instance()
    try:
        conf = os.path.join(i.conf_dir, "postern.conf")
        with open(conf, "a") as f:
            f.write("queue_run_dely = 10s\n")           # a typo: an unknown key
        p = i.run("status", check=False)
        assert p.returncode == 0 and p.stdout.startswith("postern is running")
        assert "queue_run_dely" in p.stderr
        # other commands refuse the file
        p = i.run("queue", "list", check=False)
        assert p.returncode == 1 and "queue_run_dely" in p.stderr
        p = i.run("stop", check=False)
        assert p.returncode == 0, p.stderr
        assert "postern stopped" in p.stdout
        i.started = False
        assert not i.master_pid() or i.run("status", check=False).returncode == 1
    finally:
        i.cleanup()


def test_map_query_follows_the_daemons_order(inst):
    inst.write_map("virtual", "info@example.test alice@example.test\n"
                              "@other.test catch@example.test\n")
    try:
        p = inst.run("map", "query", "virtual_alias_maps", "Info+tag@Example.TEST")
        assert p.stdout == "alice@example.test\t(found as info@example.test)\n"
        p = inst.run("map", "query", "virtual_alias_maps", "x@other.test")
        assert p.stdout == "catch@example.test\t(found as @other.test)\n"
        p = inst.run("map", "query", "virtual_alias_maps", "x@example.test", check=False)
        assert p.returncode == 1 and "not found" in p.stderr
        p = inst.run("map", "query", "alias_maps", "postmaster+x@anything")
        assert p.stdout == "root\t(found as postmaster)\n"
        p = inst.run("map", "query", "inline:{a=b}", "A")
        assert p.stdout == "b\t(found as a)\n"
        p = inst.run("map", "query", "mail_name", "x", check=False)
        assert p.returncode == 1 and "names tables" in p.stderr
        p = inst.run("map", "query", "cdb:/nonexistent/table", "x", check=False)
        assert p.returncode == 3
    finally:
        inst.write_map("virtual", "")


def auth_ok(inst, user, password):
    import smtplib
    with smtplib.SMTP("127.0.0.1", inst.port("submission"), timeout=30) as s:
        s.starttls()
        s.ehlo()
        try:
            s.login(user, password)
            return True
        except smtplib.SMTPAuthenticationError:
            return False


def test_user_passwd_from_stdin(inst):
    p = inst.run("user", "passwd", USER, input="n3w-secret\n")
    assert p.stdout == f"{USER}: password changed\n"
    assert auth_ok(inst, USER, "n3w-secret") and not auth_ok(inst, USER, "secret")
    p = inst.run("user", "passwd", "nobody@example.test", input="x\n", check=False)
    assert p.returncode == 1 and "no such user" in p.stderr
    inst.run("user", "passwd", USER, input="secret\n")


def tty_run(args, answers, timeout=30):
    """Runs postern on a pseudo-terminal, answering each prompt; returns (status,
    everything the terminal showed)."""
    import pty
    import select
    import time
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(POSTERN, [POSTERN, *args])
    shown = b""
    deadline = time.monotonic() + timeout
    pending = list(answers)
    try:
        while True:                     # until the child closes the terminal
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                raise AssertionError(f"timed out; terminal showed {shown!r}")
            r, _, _ = select.select([fd], [], [], 0.5)
            if not r:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:             # EIO: the child has gone
                break
            if not data:
                break
            shown += data
            if pending and shown.endswith(b": "):     # a prompt waits
                os.write(fd, pending.pop(0).encode() + b"\n")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_password_from_a_terminal_is_not_echoed_and_asked_twice(inst):
    code, shown = tty_run(["-c", inst.conf_dir, "user", "add", "tty@example.test"],
                          ["Tty-Pass-1", "Tty-Pass-1"])
    assert code == 0, shown
    assert "Password: " in shown and "Password again: " in shown
    assert "Tty-Pass-1" not in shown
    assert auth_ok(inst, "tty@example.test", "Tty-Pass-1")
    code, shown = tty_run(["-c", inst.conf_dir, "user", "passwd", "tty@example.test"],
                          ["One-Pass", "Other-Pass"])
    assert code == 1 and "differ" in shown
    assert auth_ok(inst, "tty@example.test", "Tty-Pass-1")
    inst.run("user", "del", "tty@example.test")


def test_config_n_x_and_X(inst):
    p = inst.run("config", "-n")
    keys = [ln.split(" = ")[0] for ln in p.stdout.splitlines()]
    assert "queue_directory" in keys and "maillog_file" in keys
    assert "smtpd_timeout" not in keys and "mail_name" not in keys
    p = inst.run("config", "-x", "smtpd_banner")
    assert p.stdout == "smtpd_banner = mx.example.test ESMTP Postern\n"
    assert inst.run("config", "smtpd_banner").stdout == \
        "smtpd_banner = $myhostname ESMTP $mail_name\n"
    inst.run("config", "smtpd_timeout=77s")
    assert "smtpd_timeout" in inst.run("config", "-n").stdout
    p = inst.run("config", "-X", "smtpd_timeout")
    assert "removed" in p.stdout
    assert "smtpd_timeout" not in open(os.path.join(inst.conf_dir, "postern.conf")).read()
    assert inst.run("config", "smtpd_timeout").stdout == "smtpd_timeout = 300s\n"
    p = inst.run("config", "-X", "no_such_key", check=False)
    assert p.returncode == 1 and "unknown key" in p.stderr

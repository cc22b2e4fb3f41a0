"""`postern check` (as `postfix check`): every value, values that do not go together,
every table a key names, the files keys name, the queue tree's owners and modes, and
master.conf.  `start` and `reload` run it first and refuse to go on; a running system
keeps its settings.  A daemon that cannot start anyway is throttled by master, shown
by `postern status`, and its clients get a temporary refusal instead of a hang."""

import json
import os
import socket

import pytest

from conftest import start_instance
from instance import wait_for
from test_config_check import BAD

USER = "alice@example.test"

# Values each valid alone (or files that are gone), refused by check: key, value, what
# the message says.
BAD_TOGETHER = [
    ("minimal_backoff_time", "2h", "minimal_backoff_time = 2h is longer than maximal_backoff_time"),
    ("queue_run_delay", "2h", "queue_run_delay = 2h is longer than maximal_backoff_time"),
    ("smtpd_soft_error_limit", "50", "smtpd_soft_error_limit = 50 is above smtpd_hard_error_limit"),
    ("smtpd_client_auth_required", "yes", "needs smtpd_sasl_auth_enable = yes"),
    ("alias_maps", "cdb:/nonexistent/aliases", "alias_maps: cdb:/nonexistent/aliases"),
    ("transport_maps", "cdb:/nonexistent/transport", "/nonexistent/transport.cdb"),
    ("smtpd_tls_cert_file", "/nonexistent/cert.pem", "smtpd_tls_cert_file = /nonexistent/cert.pem"),
    ("smtp_tls_CAfile", "/nonexistent/ca.pem", "smtp_tls_CAfile = /nonexistent/ca.pem"),
    ("maillog_file", "/nonexistent/dir/maillog", "its directory /nonexistent/dir does not exist"),
    ("daemon_directory", "/nonexistent", "daemon_directory: /nonexistent/master"),
    ("virtual_mailbox_base", "/nonexistent/mail", "virtual_mailbox_base = /nonexistent/mail"),
]


@pytest.fixture(scope="module")
def inst():
    i = start_instance(users=(USER,), start=False)
    yield i
    i.cleanup()


def conf_path(inst):
    return os.path.join(inst.conf_dir, "postern.conf")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def test_check_passes_on_a_new_instance(inst):
    p = inst.run("check", check=False)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stderr


@pytest.mark.parametrize("key,value,shown,rule", BAD, ids=[f"{k}={v}" for k, v, _, _ in BAD])
def test_check_and_start_refuse_a_bad_value_in_the_file(inst, key, value, shown, rule):
    path = conf_path(inst)
    good = read(path)
    try:
        write(path, good + f"{key} = {value}\n".encode())
        p = inst.run("check", check=False)
        assert p.returncode == 1
        assert f"{key} = {shown}: " in p.stderr and rule in p.stderr, p.stderr
        p = inst.run("start", check=False)
        assert p.returncode == 1 and rule in p.stderr, p.stderr
        assert inst.run("status", check=False).returncode == 1
    finally:
        write(path, good)


@pytest.mark.parametrize("key,value,message", BAD_TOGETHER,
                         ids=[f"{k}={v}" for k, v, _ in BAD_TOGETHER])
def test_check_and_start_refuse_what_cannot_work(inst, key, value, message):
    path = conf_path(inst)
    good = read(path)
    try:
        inst.config(**{key: value})     # each value passes its own check
        p = inst.run("check", check=False)
        assert p.returncode == 1
        assert f"postern: check: " in p.stderr and message in p.stderr, p.stderr
        assert "1 error" in p.stderr.splitlines()[-1]
        p = inst.run("start", check=False)
        assert p.returncode == 1 and message in p.stderr and "not started" in p.stderr
        assert inst.run("status", check=False).returncode == 1
    finally:
        write(path, good)


def test_check_reports_every_problem(inst):
    path = conf_path(inst)
    good = read(path)
    try:
        inst.config(alias_maps="cdb:/nonexistent/a", smtp_tls_CAfile="/nonexistent/ca")
        p = inst.run("check", check=False)
        assert p.returncode == 1
        assert "/nonexistent/a" in p.stderr and "/nonexistent/ca" in p.stderr
        assert "2 errors" in p.stderr
    finally:
        write(path, good)


def test_check_queue_owners_and_modes(inst):
    inst.start()
    inst.stop()
    deferred = os.path.join(inst.queue_dir(), "deferred")
    mode = os.stat(deferred).st_mode & 0o7777
    try:
        os.chmod(deferred, 0o777)
        p = inst.run("check", check=False)
        assert p.returncode == 1
        assert f"{deferred}: mode 0777, expected 0700" in p.stderr
    finally:
        os.chmod(deferred, mode)
    assert inst.run("check", check=False).returncode == 0


def test_check_master_conf(inst):
    path = os.path.join(inst.conf_dir, "master.conf")
    good = read(path)
    try:
        write(path, good + b"bogus inet 1:2:3 - n - smtpd\n")
        p = inst.run("check", check=False)
        assert p.returncode == 1 and "master.conf" in p.stderr
    finally:
        write(path, good)


def test_reload_refuses_and_the_running_system_keeps_its_settings():
    i = start_instance(users=(USER,))
    try:
        pid = i.master_pid()
        path = conf_path(i)
        good = read(path)
        write(path, good + b"alias_maps = cdb:/nonexistent/aliases\n")
        p = i.run("reload", check=False)
        assert p.returncode == 1
        assert "/nonexistent/aliases" in p.stderr and "not reloaded" in p.stderr
        assert "reloading" not in p.stdout
        assert i.master_pid() == pid
        write(path, good)
        # a good one: postern reload waits until master has taken it
        p = i.run("reload")
        assert p.stdout == f"postern reloaded (pid {pid})\n"
        assert json.loads(i.run("status", "--json").stdout)["reload_error"] is None
        i.submit("a@remote.test", [USER], "Message-ID: <kept@test>\r\n\r\nstill here\r\n")
        i.wait_message(USER, "<kept@test>")
    finally:
        i.cleanup()


def test_a_daemon_that_cannot_start_is_shown_and_clients_get_421():
    i = start_instance(users=(USER,), start=False)
    try:
        table = i.map_path("virtual")
        i.config(smtpd_sender_login_maps=f"cdb:{table}")
        i.start()
        # the table goes away after the check: every new smtpd dies on start
        os.unlink(table + ".cdb")
        deadline_reply = None

        def refused():
            try:
                with socket.create_connection(("127.0.0.1", i.port("smtp")), timeout=10) as s:
                    s.settimeout(10)
                    data = s.recv(200)
            except OSError:
                return None
            return data if data.startswith(b"421 ") else None
        # the first smtpd is already running from the start-up check of the port
        for pid in i.daemon_pids("smtpd"):
            os.kill(pid, 15)
        deadline_reply = wait_for(refused, timeout=30, what="a 421 from the throttled smtp")
        assert deadline_reply.startswith(b"421 4.3.2 ")

        st = json.loads(i.run("status", "--json").stdout)
        smtp = [s for s in st["services"] if s["name"] == "smtp"][0]
        assert smtp["failures"] >= 1 and smtp["last_failure"] == "exit status 1"
    finally:
        i.cleanup()


@pytest.mark.skipif(os.geteuid() != 0, reason="daemons change users only when run as root")
def test_check_tables_the_daemons_cannot_read(inst):
    path = conf_path(inst)
    good = read(path)
    table = inst.map_path("virtual")
    try:
        os.chmod(table + ".cdb", 0o600)         # root's alone: resolve runs as postern
        p = inst.run("check", check=False)
        assert p.returncode == 1
        assert f"virtual_alias_maps: cdb:{table}: not readable by mail_owner postern" \
            in p.stderr, p.stderr
        p = inst.run("start", check=False)
        assert p.returncode == 1 and "not started" in p.stderr
    finally:
        os.chmod(table + ".cdb", 0o644)
        write(path, good)


@pytest.mark.skipif(os.geteuid() != 0, reason="daemons change users only when run as root")
def test_rcpt_gets_451_when_resolve_cannot_start():
    i = start_instance(users=(USER,))
    try:
        # after the check: the service every RCPT needs dies at start from now on
        # (resolve opens its tables as root before its chroot: a table it cannot
        # parse, not one it cannot read, stops it)
        with open(i.map_path("aliases") + ".cdb", "wb") as f:
            f.write(b"not a cdb file")
        for pid in i.daemon_pids("resolve"):
            os.kill(pid, 15)
        mark = i.log_mark()
        with i.smtp() as s:
            s.ehlo()
            assert s.mail("a@remote.test")[0] == 250
            code, text = s.rcpt(USER)
            assert code == 451 and b"4.3.0" in text
        i.wait_log("service resolve: throttling after failure", since=mark)
        assert not i.log_lines("smtpd", "killed by signal", since=mark)
    finally:
        i.cleanup()

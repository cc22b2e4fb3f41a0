"""Configuration values are checked against their key's type and bounds whenever they
are set: `postern config KEY=VALUE` refuses a bad one and leaves postern.conf alone,
`postern start` refuses a bad file, and `postern reload` refuses it while the running
instance keeps serving with the settings it has."""

import os
import signal
import socket

import pytest

from client_socket import read_line
from conftest import start_instance
from instance import wait_for

USER = "alice@example.test"

# key, value, the value as the message shows it (after expansion), the rule broken
BAD = [
    ("ipc_timeout", "0", "0", "must be at least 1s"),
    ("ipc_timeout", "2h", "2h", "must be at most 1h"),
    ("queue_run_delay", "0s", "0s", "must be at least 1s"),
    ("smtpd_timeout", "5min", "5min", "must be a time"),
    ("max_use", "0", "0", "must be at least 1"),
    ("default_process_limit", "5000", "5000", "must be at most 1000"),
    ("smtp_destination_port", "65536", "65536", "must be at most 65535"),
    ("smtp_destination_port", "$mail_name", "Postern", "must be a whole number"),
    ("line_length_limit", "100", "100", "must be at least 1000"),
    ("message_size_limit", "2g", "2g", "must be at most 1g"),
    ("bounce_size_limit", "ten", "ten", "must be a size"),
    ("smtputf8_enable", "maybe", "maybe", "must be yes or no"),
    ("smtp_tls_security_level", "secure", "secure",
     "must be one of none, may, encrypt or verify"),
    ("smtpd_tls_security_level", "verify", "verify",
     "must be empty or one of none, may or encrypt"),
    ("syslog_facility", "mail2", "mail2", "must be one of mail, daemon"),
    ("myhostname", "bad..host", "bad..host", "must be a host name"),
    ("myorigin", "", "", "must not be empty"),
    ("mydestination", "example.test, a..b", "example.test, a..b",
     '"a..b" is not a domain name'),
    ("mynetworks", "10.0.0.0/33", "10.0.0.0/33", "bad network"),
    ("inet_interfaces", "eth0", "eth0", '"eth0" is not an IP address, all or loopback-only'),
    ("dns_servers", "ns.example.test", "ns.example.test",
     '"ns.example.test" is not an IP address or [address]:port'),
    ("dns_servers", "127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4",
     "127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4", "must have at most 3 items"),
    ("relayhost", "[mx.example.test]:0", "[mx.example.test]:0",
     "must be host, host:port, [host] or [host]:port"),
    ("queue_directory", "queue", "queue", "must be an absolute path"),
    ("home_mailbox", "../Maildir/", "../Maildir/", "must be a relative path"),
    ("mail_owner", "-root", "-root", "must be a user name"),
    ("alias_maps", "hash:/etc/aliases", "hash:/etc/aliases", 'unknown map type "hash"'),
    ("virtual_alias_maps", "cdb:maps/virtual", "cdb:maps/virtual",
     "the file needs an absolute path"),
    ("transport_maps", "inline:{a=b", "inline:{a=b", "missing '}'"),
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


@pytest.mark.parametrize("key,value,shown,rule", BAD,
                         ids=[f"{k}={v}" for k, v, _, _ in BAD])
def test_config_refuses_bad_value(inst, key, value, shown, rule):
    before = read(conf_path(inst))
    p = inst.run("config", f"{key}={value}", check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"postern: {key} = {shown}: "), p.stderr
    assert rule in lines[0], p.stderr
    assert read(conf_path(inst)) == before


def test_config_refuses_all_when_one_is_bad(inst):
    before = read(conf_path(inst))
    p = inst.run("config", "ipc_timeout=30s", "max_idle=0", check=False)
    assert p.returncode != 0
    assert "max_idle = 0: must be at least 1s" in p.stderr
    assert read(conf_path(inst)) == before


def test_config_accepts_good_values(inst):
    inst.config(ipc_timeout="30s", smtp_destination_port="2525", relayhost="[192.0.2.1]:587",
                dns_servers="127.0.0.1, [::1]:5353")
    out = inst.run("config", "ipc_timeout", "smtp_destination_port", "relayhost").stdout
    assert out == ("ipc_timeout = 30s\nsmtp_destination_port = 2525\n"
                   "relayhost = [192.0.2.1]:587\n")
    inst.config(smtp_destination_port="25", relayhost="", dns_servers="")


def test_start_refuses_bad_file(inst):
    path = conf_path(inst)
    good = read(path)
    try:
        write(path, good + b"# set by hand\nipc_timeout = 0s\n")
        lineno = (good + b"# set by hand\nipc_timeout = 0s\n").count(b"\n")
        p = inst.run("start", check=False)
        assert p.returncode != 0
        assert f"{path}:{lineno}: ipc_timeout = 0s: must be at least 1s" in p.stderr
        assert inst.run("status", check=False).returncode == 1

        # config refuses a change that leaves the file bad, and repairs it
        p = inst.run("config", "max_use=5", check=False)
        assert p.returncode != 0
        assert f"{path}:{lineno}: ipc_timeout = 0s: must be at least 1s" in p.stderr
        inst.run("config", "ipc_timeout=5s")
        assert inst.run("config", "ipc_timeout").stdout == "ipc_timeout = 5s\n"

        # the same from a $reference: checked after expansion, named by its key
        write(path, good + b"smtp_destination_port = $mail_name\n")
        p = inst.run("start", check=False)
        assert p.returncode != 0
        assert "smtp_destination_port = Postern: must be a whole number" in p.stderr
        assert inst.run("status", check=False).returncode == 1
    finally:
        write(path, good)


def test_start_refuses_bad_override(inst):
    path = os.path.join(inst.conf_dir, "master.conf")
    good = read(path)
    try:
        text = good.decode().replace("pop3d -l -o pop3d_tls_wrapper=yes",
                                     "pop3d -l -o pop3d_tls_wrapper=yes -o pop3d_timeout=0")
        assert text != good.decode()
        write(path, text.encode())
        p = inst.run("start", check=False)
        assert p.returncode != 0
        assert "master.conf:" in p.stderr
        assert "-o pop3d_timeout = 0: must be at least 1s" in p.stderr
        assert inst.run("status", check=False).returncode == 1
    finally:
        write(path, good)


def banners(inst, n):
    """The greetings of n connections open at the same time: some are served by
    smtpd processes started for them."""
    socks = [socket.create_connection(("127.0.0.1", inst.port("smtp")), timeout=10)
             for _ in range(n)]
    try:
        return [read_line(s).decode() for s in socks]
    finally:
        for s in socks:
            s.close()


def test_reload_refuses_bad_file_and_keeps_serving(inst):
    inst.start()
    path = conf_path(inst)
    good = read(path)
    old = "220 mx.example.test ESMTP Postern\r\n"
    pid = inst.master_pid()
    assert banners(inst, 1) == [old]
    try:
        # a new banner and a bad value, by hand
        write(path, good + b"smtpd_banner = mx.example.test new banner\nipc_timeout = 0\n")
        p = inst.run("reload", check=False)
        assert p.returncode != 0
        assert "ipc_timeout = 0: must be at least 1s" in p.stderr
        assert inst.run("status", check=False).returncode == 0
        assert inst.master_pid() == pid

        # a bad override in master.conf: refused the same way
        mpath = os.path.join(inst.conf_dir, "master.conf")
        mgood = read(mpath)
        write(path, good)
        write(mpath, mgood.replace(b"    smtpd\n", b"    smtpd -o smtpd_timeout=0\n", 1))
        p = inst.run("reload", check=False)
        assert p.returncode != 0
        assert "-o smtpd_timeout = 0: must be at least 1s" in p.stderr
        write(mpath, mgood)

        # master itself, told directly, refuses and logs it
        write(path, good + b"smtpd_banner = mx.example.test new banner\nipc_timeout = 0\n")
        mark = inst.log_mark()
        os.kill(pid, signal.SIGHUP)
        inst.wait_log("reload failed, keeping the running configuration: "
                      f"{path}:", since=mark)
        assert "ipc_timeout = 0: must be at least 1s" in inst.log_since(mark)
        assert inst.master_pid() == pid

        # still serving, with the old settings, also in smtpd processes started now
        assert banners(inst, 4) == [old] * 4
        with inst.smtp() as s:
            s.sendmail("someone@remote.test", [USER],
                       b"Subject: after\r\nMessage-ID: <after-reload@cfg.test>\r\n\r\n"
                       b"still here\r\n")
        inst.wait_message(USER, "<after-reload@cfg.test>")

        # put right: the reload goes through, and the new banner comes
        write(path, good + b"smtpd_banner = mx.example.test new banner\n")
        inst.run("reload")
        new = "220 mx.example.test new banner\r\n"
        wait_for(lambda: banners(inst, 1) == [new], what="the new banner")
    finally:
        write(path, good)

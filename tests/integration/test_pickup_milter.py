"""non_smtpd_milters: mail from sendmail(1), moved into the queue by pickup, goes
through the milters as mail from localhost [127.0.0.1]: opendkim signs it (checked
with python3-dkim), the test's own milter (milter_peer.py) sees the emulated
stages and its changes are applied; a reject bounces the message to its sender
(sendmail has gone: nobody else can hear it), a tempfail or a filter that is down
leaves it in maildrop/ until the filter answers, and milter_default_action =
accept lets it through."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import start_instance
from instance import BUILD, reserve_port, wait_for
from milter_peer import ACCEPT, TEMPFAIL, Milter, add_header, add_rcpt, reply
from test_milter_filters import Daemon, need

SENDMAIL = os.path.join(BUILD, "bin", "sendmail")
ME = pwd.getpwuid(os.getuid()).pw_name
SENDER = "alice@example.test"


def sendmail_t(inst, text, sender=SENDER):
    """sendmail -t -f sender as a trusted user; the message in text (\\n line ends)."""
    p = subprocess.run([SENDMAIL, "-C", inst.conf_dir, "-t", "-f", sender],
                       input=text.encode(), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def message(subject, body="hello", to="bob@example.test"):
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@example.test>"
    return mid, (f"From: {SENDER}\nTo: {to}\nSubject: {subject}\nMessage-ID: {mid}\n"
                 f"Date: Sat, 05 Dec 2026 08:00:00 +0000\n\n{body}\n")


def behaviour(stage, info):
    if stage != "eom":
        return None
    body = info["body"]
    if b"REJECTME" in body:
        return [reply("550 5.7.1 refused by the test milter")]
    if b"TEMPFAILME" in body:
        return [TEMPFAIL]
    out = [add_header("X-Pickup-Milter", "seen")]
    if b"ADDRCPTME" in body:
        out.append(add_rcpt("<carol@example.test>"))
    return out + [ACCEPT]


@pytest.fixture(scope="module")
def env():
    port = reserve_port()
    flt = Milter(port, behaviour)
    inst = start_instance(users=(SENDER, "bob@example.test", "carol@example.test"),
                          config={"non_smtpd_milters": f"inet:127.0.0.1:{port}",
                                  "trusted_users": ME,
                                  "message_size_limit": "100000000",
                                  "milter_command_timeout": "5s",
                                  "milter_content_timeout": "5s",
                                  "milter_connect_timeout": "5s"})
    yield inst, flt
    inst.cleanup()
    flt.stop()


def test_pickup_mail_goes_through_the_milter(env):
    inst, flt = env
    mark = inst.log_mark()
    mid, text = message("through the milter", body="ADDRCPTME")
    sendmail_t(inst, text)
    got = inst.wait_message("bob@example.test", mid, timeout=30)
    assert b"X-Pickup-Milter: seen" in got
    inst.wait_message("carol@example.test", mid, timeout=30)
    inst.wait_log("milter: recipient added: <carol@example.test>", since=mark)
    # the emulated SMTP stages, as Postfix's cleanup presents mail from sendmail
    stages = [s for s, _ in flt.log]
    for st in ("connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body", "eom"):
        assert st in stages
    assert ("connect", {"host": "localhost"}) in flt.log
    assert flt.macros["C"]["{client_addr}"] == "127.0.0.1"
    assert flt.macros["M"]["{mail_addr}"] == SENDER
    assert flt.macros["R"]["{rcpt_addr}"] == "bob@example.test"
    # the smtpd side is not filtered by non_smtpd_milters
    mid2 = f"<smtp.{time.time()}@example.test>"
    inst.submit("someone@remote.test", ["bob@example.test"],
                f"Subject: smtp\r\nMessage-ID: {mid2}\r\n\r\nx\r\n".encode())
    assert b"X-Pickup-Milter" not in inst.wait_message("bob@example.test", mid2)


def test_reject_bounces_to_the_sender(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, text = message("rejected", body="REJECTME")
    sendmail_t(inst, text)
    notice = inst.wait_message(SENDER, about=mid, timeout=30)
    assert b"5.7.1" in notice and b"refused by the test milter" in notice
    inst.wait_log("milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]", since=mark)
    inst.wait_settled(mark, timeout=30)
    assert not inst.find_messages("bob@example.test", mid)
    assert not inst.queue_files("maildrop")


def test_too_large_for_the_filters_bounces(env):
    """More than pickup keeps in memory for the filters (64 MiB) would wait in maildrop/
    for ever: it is bounced to its sender with 5.3.4, and nobody else gets it."""
    inst, flt = env
    mark = inst.log_mark()
    seen = len(flt.messages)
    line = "x" * 76 + "\n"
    mid, text = message("too large", body=line * (65 * 1024 * 1024 // len(line) + 1))
    sendmail_t(inst, text)
    notice = inst.wait_message(SENDER, about=mid, timeout=60)
    assert b"5.3.4" in notice and b"too large for the mail filters" in notice
    inst.wait_log("more than", "to keep for the milters", since=mark, timeout=30)
    inst.wait_settled(mark, timeout=60)
    assert not inst.find_messages("bob@example.test", mid)
    assert not inst.queue_files("maildrop")
    assert len(flt.messages) == seen


def test_tempfail_keeps_the_file_in_maildrop(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, text = message("tempfail", body="TEMPFAILME")
    sendmail_t(inst, text)
    inst.wait_log("will try again", since=mark, timeout=30)
    files = inst.queue_files("maildrop")
    assert len(files) == 1
    assert not inst.find_messages("bob@example.test", mid)
    # the file is still whole: pickup takes it once the filter is out of the way
    inst.config(non_smtpd_milters="")
    inst.reload(daemons=("pickup",))
    wait_for(lambda: not inst.queue_files("maildrop"), timeout=90, what="maildrop emptied")
    got = inst.wait_message("bob@example.test", mid, timeout=30)
    assert b"TEMPFAILME" in got and b"X-Pickup-Milter" not in got
    inst.config(non_smtpd_milters=f"inet:127.0.0.1:{env[1].port}")
    inst.reload(daemons=("pickup",))


@pytest.mark.parametrize("action", ["tempfail", "accept"])
def test_filter_down(action):
    port = reserve_port()           # nobody listens there
    inst = start_instance(users=(SENDER, "bob@example.test"),
                          config={"non_smtpd_milters": f"inet:127.0.0.1:{port}",
                                  "trusted_users": ME,
                                  "milter_default_action": action})
    try:
        mark = inst.log_mark()
        mid, text = message(f"down {action}")
        sendmail_t(inst, text)
        inst.wait_log(f"milter inet:127.0.0.1:{port}: cannot connect", since=mark,
                      timeout=30)
        if action == "accept":
            inst.wait_message("bob@example.test", mid, timeout=30)
        else:
            inst.wait_log("will try again", since=mark, timeout=30)
            assert len(inst.queue_files("maildrop")) == 1
            assert not inst.find_messages("bob@example.test", mid)
        log = inst.log_since(mark)
        assert "panic" not in log and "fatal" not in log
    finally:
        inst.cleanup()


def test_bad_non_smtpd_milters_name_is_refused():
    inst = start_instance(start=False)
    try:
        inst.config(non_smtpd_milters="tcp:127.0.0.1:1")
        p = inst.run("check", check=False)
        assert p.returncode != 0 and "non_smtpd_milters" in p.stdout + p.stderr
    finally:
        inst.cleanup()


def test_opendkim_signs_mail_from_sendmail():
    need("opendkim", "opendkim-genkey", package="opendkim, opendkim-tools")
    dkim = pytest.importorskip("dkim", reason="python3-dkim not installed")
    tmp = tempfile.mkdtemp(prefix="postern-opendkim-")
    port = reserve_port()
    subprocess.run(["opendkim-genkey", "-b", "2048", "-D", tmp, "-d", "example.test",
                    "-s", "test"], check=True, timeout=60)
    conf = os.path.join(tmp, "opendkim.conf")
    with open(conf, "w") as f:
        f.write(f"Syslog no\nMode s\nDomain example.test\nSelector test\n"
                f"KeyFile {tmp}/test.private\nCanonicalization relaxed/relaxed\n"
                f"Socket inet:{port}@127.0.0.1\nPidFile {tmp}/opendkim.pid\n"
                f"RequireSafeKeys no\nInternalHosts 127.0.0.1\nUserID root\n")
    d = Daemon(["opendkim", "-f", "-x", conf], os.path.join(tmp, "log"))
    inst = None
    try:
        d.wait_port(port)
        inst = start_instance(users=(SENDER, "bob@example.test"),
                              config={"non_smtpd_milters": f"inet:127.0.0.1:{port}",
                                      "trusted_users": ME})
        mid, text = message("dkim from sendmail", body="signed body\nline two")
        sendmail_t(inst, text)
        got = inst.wait_message("bob@example.test", mid, timeout=30)
        assert b"DKIM-Signature:" in got
        record = open(os.path.join(tmp, "test.txt")).read()
        txt = "".join(record.split('"')[1::2]).encode()

        def dns(name, timeout=5):
            return txt if name == b"test._domainkey.example.test." else None
        assert dkim.verify(got.replace(b"\n", b"\r\n"), dnsfunc=dns)
        tampered = got.replace(b"signed body", b"changed body").replace(b"\n", b"\r\n")
        assert not dkim.verify(tampered, dnsfunc=dns)
    finally:
        if inst:
            inst.cleanup()
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)

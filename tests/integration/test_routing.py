"""Recipient resolution: aliases with lists, virtual aliases, catch-all entries,
address extensions, system users, relay from trusted networks, remote mail deferred."""

import os
import pwd
import subprocess
import time

import pytest

from conftest import start_instance
from instance import accounts_lock, wait_maildir_message

SENDER = "sender@remote.test"


@pytest.fixture(scope="module")
def trusted_mta():
    # Default mynetworks: loopback is trusted here.
    inst = start_instance(users=("alice@example.test", "bob@example.test", "carol@virtual.test"),
                          domains=("example.test", "virtual.test"), start=False,
                          # No DNS server answers there: remote mail waits in the queue.
                          config={"dns_servers": "[127.0.0.1]:9"})
    inst.write_map("aliases", "postmaster alice@example.test\n"
                              "team alice@example.test, bob@example.test\n"
                              "loop1 loop2\nloop2 loop1\n")
    inst.write_map("virtual", "info@example.test bob@example.test\n"
                              "sales@example.test team@mx.example.test, carol@virtual.test\n"
                              "@virtual.test carol@virtual.test\n")
    inst.start()
    yield inst
    inst.cleanup()


def message(subject):
    """(Message-ID, the message)"""
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@remote.test>"
    return mid, (f"From: {SENDER}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n\r\n"
                 f"body of {subject}\r\n").encode()


def send(inst, rcpts, subject):
    """(Message-ID, queue id)"""
    mid, data = message(subject)
    return mid, inst.submit(SENDER, rcpts, data)


def test_alias_list_in_local_domain(trusted_mta):
    mid, _ = send(trusted_mta, ["team@mx.example.test"], "alias list")
    got = trusted_mta.wait_message("alice@example.test", mid)
    assert b"Delivered-To: alice@example.test\n" in got
    trusted_mta.wait_message("bob@example.test", mid)


def test_bare_postmaster(trusted_mta):
    mid, data = message("pm")
    with trusted_mta.smtp() as s:
        s.ehlo()
        s.mail(SENDER)
        assert s.docmd("RCPT TO:<postmaster>")[0] == 250
        assert s.data(data)[0] == 250
    trusted_mta.wait_message("alice@example.test", mid)


def test_virtual_alias_nested(trusted_mta):
    mid, _ = send(trusted_mta, ["sales@example.test"], "nested")
    for rcpt in ("alice@example.test", "bob@example.test", "carol@virtual.test"):
        trusted_mta.wait_message(rcpt, mid)


def test_catch_all(trusted_mta):
    mid, _ = send(trusted_mta, ["whoever@virtual.test"], "catch-all")
    got = trusted_mta.wait_message("carol@virtual.test", mid)
    assert b"Delivered-To: carol@virtual.test\n" in got


def test_address_extension(trusted_mta):
    mid, _ = send(trusted_mta, ["alice+lists@example.test"], "extension")
    got = trusted_mta.wait_message("alice@example.test", mid)
    assert b"body of extension" in got


def test_alias_loop_is_not_endless(trusted_mta):
    with trusted_mta.smtp() as s:
        s.ehlo()
        s.mail(SENDER)
        code, text = s.rcpt("loop1@mx.example.test")
    # A loop expands to nothing deliverable: refused, never hangs.
    assert code >= 400, text


def test_trusted_client_may_relay_and_remote_mail_waits(trusted_mta):
    mark = trusted_mta.log_mark()
    _, qid = send(trusted_mta, ["friend@elsewhere.test"], "relay")
    line = trusted_mta.wait_log(f"{qid}: to=<friend@elsewhere.test>", since=mark)
    assert "status=deferred" in line, line


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a system user")
def test_system_user_delivery(trusted_mta, tmp_path):
    name = f"pstn{os.getpid()}"            # one per test run: runs at once do not clash
    home = os.path.join(trusted_mta.dir, "home-" + name)
    with accounts_lock():
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", name],
                       check=True)
    try:
        os.mkdir(home)
        pw = pwd.getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        mid, _ = send(trusted_mta, [f"{name}@mx.example.test"], "system user")
        md = os.path.join(home, "Maildir")
        wait_maildir_message(md, mid)
        [name_in_new] = os.listdir(os.path.join(md, "new"))
        st = os.stat(os.path.join(md, "new", name_in_new))
        assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid)
    finally:
        with accounts_lock():
            subprocess.run(["userdel", name], capture_output=True)

"""Recipient resolution: aliases with lists, virtual aliases, catch-all entries,
address extensions, system users, relay from trusted networks, remote mail deferred."""

import os
import pwd
import subprocess

import pytest

from conftest import start_instance

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


def send(inst, rcpts, subject):
    data = f"From: {SENDER}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode()
    with inst.smtp() as s:
        return s.sendmail(SENDER, rcpts, data)


def count(inst, addr):
    return len(inst.messages(addr))


def test_alias_list_in_local_domain(trusted_mta):
    a, b = count(trusted_mta, "alice@example.test"), count(trusted_mta, "bob@example.test")
    send(trusted_mta, ["team@mx.example.test"], "alias list")
    got = trusted_mta.wait_messages("alice@example.test", a + 1)[-1]
    assert b"Delivered-To: alice@example.test\n" in got
    trusted_mta.wait_messages("bob@example.test", b + 1)


def test_bare_postmaster(trusted_mta):
    a = count(trusted_mta, "alice@example.test")
    with trusted_mta.smtp() as s:
        s.ehlo()
        s.mail(SENDER)
        assert s.docmd("RCPT TO:<postmaster>")[0] == 250
        assert s.data(b"Subject: pm\r\n\r\nhi\r\n")[0] == 250
    trusted_mta.wait_messages("alice@example.test", a + 1)


def test_virtual_alias_nested(trusted_mta):
    a, b, c = (count(trusted_mta, x) for x in
               ("alice@example.test", "bob@example.test", "carol@virtual.test"))
    send(trusted_mta, ["sales@example.test"], "nested")
    trusted_mta.wait_messages("alice@example.test", a + 1)
    trusted_mta.wait_messages("bob@example.test", b + 1)
    trusted_mta.wait_messages("carol@virtual.test", c + 1)


def test_catch_all(trusted_mta):
    c = count(trusted_mta, "carol@virtual.test")
    send(trusted_mta, ["whoever@virtual.test"], "catch-all")
    got = trusted_mta.wait_messages("carol@virtual.test", c + 1)[-1]
    assert b"Delivered-To: carol@virtual.test\n" in got


def test_address_extension(trusted_mta):
    a = count(trusted_mta, "alice@example.test")
    send(trusted_mta, ["alice+lists@example.test"], "extension")
    got = trusted_mta.wait_messages("alice@example.test", a + 1)[-1]
    assert b"body of extension" in got


def test_alias_loop_is_not_endless(trusted_mta):
    with trusted_mta.smtp() as s:
        s.ehlo()
        s.mail(SENDER)
        code, text = s.rcpt("loop1@mx.example.test")
    # A loop expands to nothing deliverable: refused, never hangs.
    assert code >= 400, text


def test_trusted_client_may_relay_and_remote_mail_waits(trusted_mta):
    refused = send(trusted_mta, ["friend@elsewhere.test"], "relay")
    assert refused == {}
    trusted_mta.wait_log("to=<friend@elsewhere.test>")
    line = [l for l in trusted_mta.log().splitlines() if "to=<friend@elsewhere.test>" in l][0]
    assert "status=deferred" in line, line


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a system user")
def test_system_user_delivery(trusted_mta, tmp_path):
    name = "pstntest"
    home = os.path.join(trusted_mta.dir, "home-" + name)
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", name], check=True)
    try:
        os.mkdir(home)
        pw = pwd.getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        send(trusted_mta, [f"{name}@mx.example.test"], "system user")
        md = os.path.join(home, "Maildir", "new")
        from instance import wait_for
        files = wait_for(lambda: os.path.isdir(md) and os.listdir(md), what="system delivery")
        st = os.stat(os.path.join(md, files[0]))
        assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid)
    finally:
        subprocess.run(["userdel", name], capture_output=True)

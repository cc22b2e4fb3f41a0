"""Outbound TLS and AUTH of the smtp client, against a real Postern instance B (domains
b.test, p.test; myhostname mx.b.test, whose certificate is the self-signed one that
`postern init` made), all on loopback.  A test DNS server gives b.test and p.test the
MX mx.b.test -> 127.0.0.1; instance A sends with each smtp_tls_security_level, with
smtp_tls_policy_maps entries that override it, and through B's submission port with
smtp_sasl_password_maps.  What B saw is read from its Received: header ("with ESMTPS",
"using TLSv1.x"; "ESMTPSA" once authenticated)."""

import base64
import os
import re
import socket
import ssl
import threading
import time

import pytest

from conftest import start_instance
from dnsserver import ZoneServer
from instance import message_id_of, reserve_port, wait_for

ALICE = "alice@a.test"
BOB = "bob@b.test"
PAT = "pat@p.test"
PASSWORD = "secret"

ZONE = """
b.test.           300 IN MX 10 mx.b.test.
p.test.           300 IN MX 10 mx.b.test.
mx.b.test.        300 IN A  127.0.0.1
"""


class LoginServer:
    """A server of the test that offers STARTTLS and, under TLS, only AUTH LOGIN; it
    keeps the user names and passwords it was given and the messages."""

    def __init__(self, cert, key):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.port = reserve_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.logins, self.messages = [], []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(20)
        try:
            self._smtp(conn)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def _smtp(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 login.test ESMTP\r\n")
        secure = False
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO"):
                ext = b"250-AUTH LOGIN CRAM-MD5\r\n" if secure else b"250-STARTTLS\r\n"
                conn.sendall(b"250-login.test\r\n" + ext + b"250 8BITMIME\r\n")
            elif cmd == b"STARTTLS" and not secure:
                conn.sendall(b"220 2.0.0 go ahead\r\n")
                conn = self.ctx.wrap_socket(conn, server_side=True)
                f, secure = conn.makefile("rb"), True
            elif cmd == b"AUTH LOGIN" and secure:
                conn.sendall(b"334 VXNlcm5hbWU6\r\n")
                user = base64.b64decode(f.readline().strip()).decode()
                conn.sendall(b"334 UGFzc3dvcmQ6\r\n")
                password = base64.b64decode(f.readline().strip()).decode()
                self.logins.append((user, password))
                conn.sendall(b"235 2.7.0 Authentication successful\r\n")
            elif cmd.startswith((b"MAIL", b"RCPT", b"RSET")):
                conn.sendall(b"250 2.0.0 Ok\r\n")
            elif cmd == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                data = b""
                while (part := f.readline()) and part != b".\r\n":
                    data += part
                self.messages.append(data)
                conn.sendall(b"250 2.0.0 Ok: kept\r\n")
            elif cmd == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 What\r\n")

    def stop(self):
        self.sock.close()


@pytest.fixture(scope="module")
def net():
    dns = ZoneServer(ZONE).start()
    b = start_instance(users=(BOB, PAT), domains=("b.test", "p.test"), hostname="mx.b.test",
                       start=False)
    try:
        # A relays its users' mail through B's submission as bob: bob may use a.test
        b.write_map("senders", f"@a.test {BOB}\n")
        b.config(smtpd_sender_login_maps="cdb:" + b.map_path("senders"))
        b.start()
    except Exception:
        b.cleanup()
        raise
    cert = os.path.join(b.conf_dir, "tls", "cert.pem")
    b25, b587 = b.port("smtp"), b.port("submission")
    login = LoginServer(cert, os.path.join(b.conf_dir, "tls", "key.pem"))
    a = None
    try:
        a = start_instance(users=(ALICE,), domains=("a.test",), hostname="mx.a.test",
                           start=False,
                           config={"dns_servers": f"[127.0.0.1]:{dns.port}",
                                   "smtp_destination_port": str(b25),
                                   "smtp_helo_timeout": "5s", "smtp_tls_CAfile": cert})
        # [127.0.0.1] and [127.0.0.1]:PORT are two next hops for the same server B
        a.write_map("transport", f"ip.test smtp:[127.0.0.1]\n"
                                 f"ipm.test smtp:[127.0.0.1]:{b25}\n"
                                 f"noauth.test smtp:[mx.b.test]:{b25}\n"
                                 f"login.test smtp:[127.0.0.1]:{login.port}\n")
        a.write_map("tls_policy", "p.test encrypt\n"
                                  "bad.test encrypt colour=blue\n"
                                  "[127.0.0.1] verify\n"
                                  f"[127.0.0.1]:{b25} verify match=mx.b.test\n")
        write_passwords(a, b587, PASSWORD, login.port)
        a.config(transport_maps="cdb:" + a.map_path("transport"),
                 smtp_tls_policy_maps="cdb:" + a.map_path("tls_policy"),
                 smtp_sasl_password_maps="cdb:" + a.map_path("sasl_passwd"))
        a.start()
        yield {"a": a, "b": b, "cert": cert, "b587": b587, "login": login}
    finally:
        for inst in (a, b):
            if inst is not None:
                print(f"---- maillog of {inst.hostname} (last 40 lines) ----")
                print("\n".join(inst.log().splitlines()[-40:]))
                inst.cleanup()
        dns.stop()
        login.stop()


def write_passwords(a, b587, password, login_port):
    a.write_map("sasl_passwd", f"[127.0.0.1]:{b587} {BOB}:{password}\n"
                               f"[mx.b.test] {BOB}:{password}\n"
                               f"[127.0.0.1]:{login_port} someone:pass:with:colons\n")


def reload_with(a, **kw):
    """The smtp client reads its settings and maps when it starts: reload."""
    a.config(**kw)
    a.reload()


def send(a, rcpt, subject):
    """(Message-ID, queue id at A)"""
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@a.test>"
    data = (f"From: {ALICE}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Message-ID: {mid}\r\n\r\nhi\r\n")
    return mid, a.submit(ALICE, [rcpt], data.encode())


def received_by(b, rcpt, mid, timeout=25):
    """The first Received: header of the message mid at B (unfolded)."""
    msg = b.wait_message(rcpt, mid, timeout=timeout)
    head = msg.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode(errors="replace")
    return re.search(r"^Received:.*?(?=^\S)", head + "\nX:", re.M | re.S).group(0)


def status_line(a, qid, rcpt, status, needle="", *, since, timeout=30):
    """A's log line since the mark about the delivery of message qid to rcpt with this
    status."""
    return a.wait_log(f"{qid}: to=<{rcpt}>", f"status={status}", needle, since=since,
                      timeout=timeout)


@pytest.mark.parametrize("level", ["none", "may", "encrypt"])
def test_levels(net, level):
    a, b = net["a"], net["b"]
    reload_with(a, smtp_tls_security_level=level)
    mid, _ = send(a, BOB, f"level {level}")
    got = received_by(b, BOB, mid)
    if level == "none":
        assert "with ESMTP id" in got and "using TLS" not in got, got
    else:
        assert "with ESMTPS id" in got and re.search(r"using TLSv1\.[23] ", got), got


def test_verify_with_ca(net):
    a, b = net["a"], net["b"]
    mark = a.log_mark()
    reload_with(a, smtp_tls_security_level="verify", smtp_tls_CAfile=net["cert"])
    mid, _ = send(a, BOB, "verify ca")
    got = received_by(b, BOB, mid)
    assert "with ESMTPS id" in got, got
    a.wait_log("Verified TLS connection established to mx.b.test[127.0.0.1]", since=mark)


def test_verify_without_ca_defers(net):
    a, b = net["a"], net["b"]
    mark = a.log_mark()
    try:
        reload_with(a, smtp_tls_security_level="verify", smtp_tls_CAfile="")
        mid, qid = send(a, BOB, "verify no ca")
        line = status_line(a, qid, BOB, "deferred", "certificate verification failed",
                           since=mark)
        assert "self-signed certificate" in line and "mx.b.test" in line, line
        assert not b.find_messages(BOB, mid)
    finally:
        reload_with(a, smtp_tls_security_level="may", smtp_tls_CAfile=net["cert"])
    # the deferred mail goes once the CA is known
    a.run("queue", "flush")
    assert "with ESMTPS" in received_by(b, BOB, mid, timeout=40)


def test_policy_map_overrides_global_level(net):
    a, b = net["a"], net["b"]
    try:
        # global none, but "p.test encrypt"
        reload_with(a, smtp_tls_security_level="none")
        p_none, _ = send(a, PAT, "policy p none")
        b_none, _ = send(a, BOB, "policy b none")
        assert "with ESMTPS id" in received_by(b, PAT, p_none)
        assert "with ESMTP id" in received_by(b, BOB, b_none)
        # global verify without a usable CA; "p.test encrypt" still delivers
        reload_with(a, smtp_tls_security_level="verify", smtp_tls_CAfile="")
        p_verify, _ = send(a, PAT, "policy p verify")
        assert "with ESMTPS id" in received_by(b, PAT, p_verify)
    finally:
        reload_with(a, smtp_tls_security_level="may", smtp_tls_CAfile=net["cert"])


def test_verify_bracketed_address_matches_policy_name(net):
    """For [127.0.0.1] verify checks the address, which B's certificate does not
    hold; "match=mx.b.test" in the policy checks that name instead."""
    a, b = net["a"], net["b"]
    mark = a.log_mark()
    _, qid = send(a, "bob@ip.test", "ip plain")
    line = status_line(a, qid, "bob@ip.test", "deferred", "certificate verification failed",
                       since=mark)
    assert "mismatch" in line, line
    _, qid = send(a, "bob@ipm.test", "ip match")
    # B takes it (loopback is in its mynetworks) and relays it further, which fails
    # there; what counts here is that A verified B and handed the message over
    a.wait_log(f"Verified TLS connection established to 127.0.0.1[127.0.0.1]:{b.port('smtp')}",
               since=mark)
    line = status_line(a, qid, "bob@ipm.test", "sent", since=mark)
    assert "dsn=2.0.0" in line, line


def test_relay_through_submission_with_auth(net):
    a, b = net["a"], net["b"]
    try:
        mark = a.log_mark()
        reload_with(a, relayhost=f"[127.0.0.1]:{net['b587']}", smtp_tls_security_level="encrypt")
        mid, _ = send(a, BOB, "relay auth")
        got = received_by(b, BOB, mid)
        assert "with ESMTPSA id" in got, got
        a.wait_log(f"authenticated to 127.0.0.1[127.0.0.1]:{net['b587']} as {BOB} (PLAIN)",
                   since=mark)
        assert PASSWORD not in a.log()          # never, in the whole log
        # a credential makes TLS required even where the level says none
        reload_with(a, smtp_tls_security_level="none")
        mid, _ = send(a, BOB, "relay auth none")
        assert "with ESMTPSA id" in received_by(b, BOB, mid)
    finally:
        reload_with(a, relayhost="", smtp_tls_security_level="may")


def test_relay_wrong_password_defers(net):
    a, b = net["a"], net["b"]
    mark = a.log_mark()
    try:
        write_passwords(a, net["b587"], "wrong-password", net["login"].port)
        reload_with(a, relayhost=f"[127.0.0.1]:{net['b587']}")
        mid, qid = send(a, BOB, "relay wrong")
        line = status_line(a, qid, BOB, "deferred", "SASL authentication failed", since=mark)
        assert "dsn=4.7.8" in line, line
        assert re.search(r"said: 535 5\.7\.8 .*\(in reply to AUTH PLAIN\)", line), line
        assert "wrong-password" not in a.log()  # never, in the whole log
    finally:
        write_passwords(a, net["b587"], PASSWORD, net["login"].port)
        reload_with(a, relayhost="")
    a.run("queue", "flush")
    received_by(b, BOB, mid, timeout=40)


def test_credential_but_no_auth_offered_defers(net):
    """B's port 25 offers STARTTLS but no AUTH: the credential configured for
    [mx.b.test] is not dropped silently."""
    a = net["a"]
    mark = a.log_mark()
    _, qid = send(a, "bob@noauth.test", "no auth")
    line = status_line(a, qid, "bob@noauth.test", "deferred", "offers no AUTH", since=mark)
    assert "dsn=4.7.0" in line, line


def test_auth_login_when_plain_not_offered(net):
    a, login = net["a"], net["login"]
    mark = a.log_mark()
    mid, _ = send(a, "x@login.test", "auth login")
    wait_for(lambda: [m for m in login.messages if message_id_of(m) == mid], timeout=25,
             what="message at the LOGIN server")
    assert login.logins == [("someone", "pass:with:colons")]
    a.wait_log(f"authenticated to 127.0.0.1[127.0.0.1]:{login.port} as someone (LOGIN)",
               since=mark)


def test_invalid_policy_defers(net):
    a = net["a"]
    mark = a.log_mark()
    _, qid = send(a, "x@bad.test", "bad policy")
    line = status_line(a, qid, "x@bad.test", "deferred", "invalid TLS policy for bad.test",
                       since=mark)
    assert "dsn=4.3.5" in line and 'unknown attribute "colour=blue"' in line, line

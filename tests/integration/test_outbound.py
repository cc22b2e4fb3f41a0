"""Outbound delivery by the smtp client, all on loopback: a test DNS server publishes
MX records; instance A (domain a.test) sends to instance B (domain b.test, MX
mx.b.test -> 127.0.0.1) and to fake servers run by the test."""

import email
import email.policy
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import start_instance
from dnsserver import ZoneServer
from instance import wait_for

ALICE = "alice@a.test"

ZONE = """
b.test.           300 IN MX 10 mx.b.test.
mx.b.test.        300 IN A  127.0.0.1
mx.tls.test.      300 IN A  127.0.0.1
nullmx.test.      300 IN MX 0 .
noaddr.test.      300 IN TXT "no mail here"
"""


class FakeServer:
    """A server of the test on 127.0.0.1.  mode: 'garbage' (not SMTP at all),
    'endless' (a reply that never ends), 'hang' (never says anything), 'plain' (a
    correct SMTP server without 8BITMIME that keeps what it receives)."""

    def __init__(self, mode, tls=None):
        self.mode = mode
        self.tls = tls          # an ssl.SSLContext: offer STARTTLS
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        self.connections = 0
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(30)
        try:
            if self.mode == "garbage":
                conn.sendall(b"HELLO I AM NOT A MAIL SERVER\x1b[31m\r\n" * 3)
                time.sleep(1)
            elif self.mode == "endless":
                conn.sendall(b"220-mx.fake.test\r\n")
                for _ in range(2000):
                    conn.sendall(b"220-still talking\r\n")
            elif self.mode == "hang":
                time.sleep(20)
            else:
                self._smtp(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def _smtp(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 mx.fake.test ESMTP\r\n")
        rcpts = []
        secure = False
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO"):
                offer = b"250-STARTTLS\r\n" if self.tls and not secure else b""
                offer += b"250-DSN\r\n" if self.mode == "dsn" else b""
                conn.sendall(b"250-mx.fake.test\r\n250-PIPELINING\r\n" + offer
                             + b"250 SIZE 100000000\r\n")
            elif cmd == b"STARTTLS" and self.tls and not secure:
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                conn = self.tls.wrap_socket(conn, server_side=True)
                f = conn.makefile("rb")
                secure = True
                self.tls_sessions = getattr(self, "tls_sessions", 0) + 1
            elif cmd.startswith(b"MAIL") or cmd.startswith(b"RSET"):
                rcpts = []
                conn.sendall(b"250 2.1.0 Ok\r\n")
            elif cmd.startswith(b"RCPT"):
                rcpts.append(line)
                self.rcpt_lines = getattr(self, "rcpt_lines", []) + [line]
                conn.sendall(b"250 2.1.5 Ok\r\n")
            elif cmd == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                data = b""
                while True:
                    part = f.readline()
                    if not part or part == b".\r\n":
                        break
                    data += part
                self.messages.append(data)
                conn.sendall(b"250 2.0.0 Ok: kept\r\n")
            elif cmd == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 What\r\n")

    def stop(self):
        self.stopping = True
        self.sock.close()


def make_cert(directory, host):
    """A self-signed certificate for host (made with openssl(1)): (cert, key) paths."""
    cert, key = os.path.join(directory, "fake-cert.pem"), os.path.join(directory, "fake-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", f"/CN={host}", "-addext",
                    f"subjectAltName=DNS:{host}"], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    dns = ZoneServer(ZONE).start()
    cert, key = make_cert(str(tmp_path_factory.mktemp("tls")), "mx.tls.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    fakes = {m: FakeServer(m) for m in ("garbage", "endless", "hang", "plain", "dsn")}
    fakes["tls"] = FakeServer("plain", tls=server_ctx)
    b = start_instance(users=("bob@b.test", "carol@b.test"), domains=("b.test",),
                       hostname="mx.b.test")
    a = start_instance(users=(ALICE,), domains=("a.test",), hostname="mx.a.test", start=False,
                       config={"dns_servers": f"[127.0.0.1]:{dns.port}",
                               "smtp_destination_port": str(b.port("smtp")),
                               "smtp_helo_timeout": "4s"})
    a.config(transport_maps="cdb:" + a.map_path("transport"))
    a.write_map("transport", "".join(f"{m}.test smtp:[127.0.0.1]:{f.port}\n"
                                     for m, f in fakes.items() if m != "tls")
                + f"tls.test smtp:[mx.tls.test]:{fakes['tls'].port}\n")
    a.start()
    yield {"a": a, "b": b, "dns": dns, "fakes": fakes, "cert": cert}
    for inst in (a, b):
        print(f"---- maillog of {inst.hostname} (last 40 lines) ----")
        print("\n".join(inst.log().splitlines()[-40:]))
    a.cleanup()
    b.cleanup()
    for f in fakes.values():
        f.stop()
    dns.stop()


def send(inst, rcpts, subject, body="hello\r\n", extra=b"", mail_options=()):
    data = (f"From: {ALICE}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time()}@a.test>\r\n").encode()
    data += extra + b"\r\n" + (body.encode() if isinstance(body, str) else body)
    with inst.smtp() as s:
        return s.sendmail(ALICE, rcpts, data, mail_options=list(mail_options))


def count(inst, addr):
    return len(inst.messages(addr))


def dsn_of(msg_bytes):
    """The per-recipient fields of a multipart/report, parsed by Python's email."""
    msg = email.message_from_bytes(msg_bytes, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    out = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload()[1:]:
                out.append({k.lower(): str(v) for k, v in block.items()})
    return out


def test_delivered_by_mx(net):
    a, b = net["a"], net["b"]
    n = count(b, "bob@b.test")
    send(a, ["bob@b.test"], "by mx")
    got = b.wait_messages("bob@b.test", n + 1)[-1]
    assert b"Subject: by mx" in got
    a.wait_log("status=sent")
    assert f"relay=mx.b.test[127.0.0.1]:{b.port('smtp')}" in a.log()
    assert ("b.test", "MX") in [(q.rstrip("."), t) for q, t in net["dns"].queries]


def test_session_reused(net):
    a, b = net["a"], net["b"]
    n = count(b, "bob@b.test")
    for i in range(3):
        send(a, ["bob@b.test"], f"reuse {i}")
    b.wait_messages("bob@b.test", n + 3)
    # qmgr may spread the messages over agents; at least one session carried two
    wait_for(lambda: "conn_use=2" in a.log(), what="a reused session")


def test_partial_rejection_bounces_to_sender(net):
    a, b = net["a"], net["b"]
    nb, na = count(b, "carol@b.test"), count(a, ALICE)
    send(a, ["carol@b.test", "nobody@b.test"], "partial")
    b.wait_messages("carol@b.test", nb + 1)
    notice = a.wait_messages(ALICE, na + 1)[-1]
    fields = dsn_of(notice)
    assert len(fields) == 1
    assert "nobody@b.test" in fields[0]["final-recipient"]
    assert fields[0]["status"] == "5.1.1"
    assert fields[0]["action"] == "failed"
    assert "mx.b.test" in fields[0].get("diagnostic-code", "") or b"mx.b.test" in notice


def test_null_mx_bounces_at_once(net):
    a = net["a"]
    na = count(a, ALICE)
    send(a, ["someone@nullmx.test"], "null mx")
    notice = a.wait_messages(ALICE, na + 1, timeout=15)[-1]
    fields = dsn_of(notice)
    assert fields[0]["status"] == "5.1.10"
    assert "does not accept mail" in a.log()


def test_nxdomain_bounces(net):
    a = net["a"]
    na = count(a, ALICE)
    send(a, ["someone@gone.test"], "nxdomain")
    fields = dsn_of(a.wait_messages(ALICE, na + 1, timeout=15)[-1])
    assert fields[0]["status"] == "5.1.2"


def test_domain_without_address_bounces(net):
    a = net["a"]
    na = count(a, ALICE)
    send(a, ["someone@noaddr.test"], "no address")
    fields = dsn_of(a.wait_messages(ALICE, na + 1, timeout=15)[-1])
    assert fields[0]["status"].startswith("5.")


@pytest.mark.parametrize("mode", ["garbage", "endless", "hang"])
def test_bad_server_defers(net, mode):
    a = net["a"]
    rcpt = f"x@{mode}.test"
    send(a, [rcpt], f"bad server {mode}")
    a.wait_log(f"to=<{rcpt}>", timeout=30)
    line = [l for l in a.log().splitlines() if f"to=<{rcpt}>" in l][0]
    assert "status=deferred" in line, line
    assert "fatal" not in a.log()
    assert a.daemon_pids("master")
    # the agent is still there to serve the next delivery
    b = net["b"]
    n = count(b, "bob@b.test")
    send(a, ["bob@b.test"], f"after {mode}")
    b.wait_messages("bob@b.test", n + 1)


def test_eight_bit_converted_for_plain_server(net):
    a = net["a"]
    fake = net["fakes"]["plain"]
    n = len(fake.messages)
    body = "Grüße aus Köln, ça va? = fine\r\n.leading dot\r\n" + "x" * 100 + " \r\n"
    send(a, ["x@plain.test"], "eight bit", body=body.encode("utf-8"),
         extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n", mail_options=["BODY=8BITMIME"])
    wait_for(lambda: len(fake.messages) > n, timeout=20, what="message at the fake server")
    raw = fake.messages[-1]
    assert all(c < 0x80 for c in raw), "8-bit bytes sent to a server without 8BITMIME"
    # undo dot-stuffing, then let Python's email decode it
    unstuffed = b"".join(l[1:] if l.startswith(b".") else l for l in raw.splitlines(True))
    msg = email.message_from_bytes(unstuffed, policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n")


def test_deferred_then_flushed_once(net):
    a, b = net["a"], net["b"]
    n = count(b, "bob@b.test")
    b.stop()
    try:
        send(a, ["bob@b.test"], "while down")
        wait_for(lambda: any("to=<bob@b.test>" in l and "status=deferred" in l
                             and "Connection refused" in l for l in a.log().splitlines()),
                 timeout=30, what="deferral while B is down")
        assert a.queue_files("deferred")
    finally:
        b.start()
    a.run("queue", "flush")
    b.wait_messages("bob@b.test", n + 1, timeout=30)
    time.sleep(3)       # a second delivery would come within the retry times
    got = [m for m in b.messages("bob@b.test") if b"Subject: while down" in m]
    assert len(got) == 1


def test_starttls_used_when_offered(net):
    a, fake = net["a"], net["fakes"]["tls"]
    n = len(fake.messages)
    send(a, ["x@tls.test"], "tls may")
    wait_for(lambda: len(fake.messages) > n, timeout=20, what="message over TLS")
    assert getattr(fake, "tls_sessions", 0) >= 1
    a.wait_log("TLS connection established to mx.tls.test")
    assert re.search(r"relay=mx\.tls\.test\[127\.0\.0\.1\]:\d+, conn_use=\d+, tls=TLSv1\.[23] ",
                     a.log())


def reload_with(a, **kw):
    a.config(**kw)
    a.run("reload")
    time.sleep(1.5)


def test_tls_verify_level(net):
    a, fake = net["a"], net["fakes"]["tls"]
    wrong_ca = os.path.join(a.conf_dir, "tls", "cert.pem")
    try:
        reload_with(a, smtp_tls_security_level="verify", smtp_tls_CAfile=net["cert"])
        n = len(fake.messages)
        send(a, ["y@tls.test"], "tls verify")
        wait_for(lambda: len(fake.messages) > n, timeout=20, what="message over verified TLS")
        a.wait_log("Verified TLS connection established to mx.tls.test")

        reload_with(a, smtp_tls_CAfile=wrong_ca)
        send(a, ["z@tls.test"], "tls verify fails")
        wait_for(lambda: any("to=<z@tls.test>" in l and "status=deferred" in l
                             and "TLS" in l for l in a.log().splitlines()),
                 timeout=30, what="deferral for an unverified certificate")
        # a server without STARTTLS gets nothing at this level
        send(a, ["w@plain.test"], "tls required")
        wait_for(lambda: any("to=<w@plain.test>" in l and "status=deferred" in l
                             and "TLS is required" in l for l in a.log().splitlines()),
                 timeout=30, what="deferral for a server without STARTTLS")
    finally:
        reload_with(a, smtp_tls_security_level="may", smtp_tls_CAfile="")


@pytest.mark.parametrize("mode", ["dsn", "plain"])
def test_success_notice_only_when_next_hop_cannot_send_it(net, mode):
    """NOTIFY=SUCCESS: a next hop that offers DSN gets the parameter and sends the notice
    itself, so we send none (RFC 3461 6.2.2); one without DSN gets a "relayed" notice
    from us."""
    a, fake = net["a"], net["fakes"][mode]
    before, n0 = count(a, ALICE), len(fake.messages)
    data = (f"From: {ALICE}\r\nSubject: notify {mode}\r\n\r\nhi\r\n").encode()
    with a.smtp() as s:
        s.ehlo()
        assert s.mail(ALICE)[0] == 250
        assert s.rcpt(f"x@{mode}.test", options=["NOTIFY=SUCCESS"])[0] == 250
        assert s.data(data)[0] == 250
    wait_for(lambda: len(fake.messages) > n0, what=f"delivery to the {mode} server")
    rcpt_line = fake.rcpt_lines[-1]
    if mode == "dsn":
        assert b"NOTIFY=SUCCESS" in rcpt_line, rcpt_line
        a.wait_log(f"to=<x@{mode}.test>")
        time.sleep(2)
        assert count(a, ALICE) == before
    else:
        assert b"NOTIFY" not in rcpt_line, rcpt_line
        notice = a.wait_messages(ALICE, before + 1)[-1]
        [fields] = dsn_of(notice)
        assert fields["action"] == "relayed" and fields["status"].startswith("2."), fields

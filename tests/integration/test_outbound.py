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
from instance import message_id_of, reserve_port, wait_for

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
        self.port = reserve_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
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
                self._until_closed(conn)
            elif self.mode == "endless":
                conn.sendall(b"220-mx.fake.test\r\n")
                for _ in range(2000):
                    conn.sendall(b"220-still talking\r\n")
            elif self.mode == "hang":
                self._until_closed(conn)
            else:
                self._smtp(conn)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _until_closed(conn):
        """Says nothing more until the client hangs up (or the 30 s timeout)."""
        for _ in range(1000):
            if not conn.recv(4096):
                return

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

    def wait_message(self, mid, timeout=20):
        """The message with Message-ID mid as received (dot-stuffed), once it is here."""
        return wait_for(lambda: ([m for m in self.messages if message_id_of(m) == mid]
                                 or [None])[0],
                        timeout=timeout, what=f"message {mid} at the {self.mode} server")

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


def send(inst, rcpts, subject, body="hello\r\n", extra=b"", mail_options=(), rcpt_options=()):
    """Sends a message from ALICE through inst: (its Message-ID, its queue id at inst)."""
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@a.test>"
    data = (f"From: {ALICE}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
            f"Message-ID: {mid}\r\n").encode()
    data += extra + b"\r\n" + (body.encode() if isinstance(body, str) else body)
    return mid, inst.submit(ALICE, rcpts, data, mail_options, rcpt_options)


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
    mark, nq = a.log_mark(), len(net["dns"].queries)
    mid, qid = send(a, ["bob@b.test"], "by mx")
    got = b.wait_message("bob@b.test", mid)
    assert b"Subject: by mx" in got
    a.wait_log(f"{qid}: to=<bob@b.test>", "status=sent", since=mark)
    assert a.log_lines(f"{qid}: relay=mx.b.test[127.0.0.1]:{b.port('smtp')},", since=mark)
    assert ("b.test", "MX") in [(q.rstrip("."), t) for q, t in net["dns"].queries[nq:]]


def test_session_reused(net):
    a, b = net["a"], net["b"]
    mark = a.log_mark()
    mids = [send(a, ["bob@b.test"], f"reuse {i}")[0] for i in range(3)]
    for mid in mids:
        b.wait_message("bob@b.test", mid)
    # qmgr may spread the messages over agents; at least one session carried two
    a.wait_log("conn_use=2", since=mark)


def test_partial_rejection_bounces_to_sender(net):
    a, b = net["a"], net["b"]
    mid, _ = send(a, ["carol@b.test", "nobody@b.test"], "partial")
    b.wait_message("carol@b.test", mid)
    notice = a.wait_message(ALICE, about=mid)
    fields = dsn_of(notice)
    assert len(fields) == 1
    assert "nobody@b.test" in fields[0]["final-recipient"]
    assert fields[0]["status"] == "5.1.1"
    assert fields[0]["action"] == "failed"
    assert "mx.b.test" in fields[0].get("diagnostic-code", "") or b"mx.b.test" in notice


def test_null_mx_bounces_at_once(net):
    a = net["a"]
    mark = a.log_mark()
    mid, qid = send(a, ["someone@nullmx.test"], "null mx")
    notice = a.wait_message(ALICE, about=mid, timeout=15)
    fields = dsn_of(notice)
    assert fields[0]["status"] == "5.1.10"
    assert a.log_lines(f"{qid}: to=<someone@nullmx.test>", "does not accept mail", since=mark)


def test_nxdomain_bounces(net):
    a = net["a"]
    mid, _ = send(a, ["someone@gone.test"], "nxdomain")
    fields = dsn_of(a.wait_message(ALICE, about=mid, timeout=15))
    assert fields[0]["status"] == "5.1.2"


def test_domain_without_address_bounces(net):
    a = net["a"]
    mid, _ = send(a, ["someone@noaddr.test"], "no address")
    fields = dsn_of(a.wait_message(ALICE, about=mid, timeout=15))
    assert fields[0]["status"].startswith("5.")


@pytest.mark.parametrize("mode", ["garbage", "endless", "hang"])
def test_bad_server_defers(net, mode):
    a = net["a"]
    mark = a.log_mark()
    rcpt = f"x@{mode}.test"
    _, qid = send(a, [rcpt], f"bad server {mode}")
    line = a.wait_log(f"{qid}: to=<{rcpt}>", since=mark, timeout=30)
    assert "status=deferred" in line, line
    assert not a.log_lines("fatal", since=mark)
    assert a.daemon_pids("master")
    # the agent is still there to serve the next delivery
    b = net["b"]
    mid, _ = send(a, ["bob@b.test"], f"after {mode}")
    b.wait_message("bob@b.test", mid)


def test_eight_bit_converted_for_plain_server(net):
    a = net["a"]
    fake = net["fakes"]["plain"]
    body = "Grüße aus Köln, ça va? = fine\r\n.leading dot\r\n" + "x" * 100 + " \r\n"
    mid, _ = send(a, ["x@plain.test"], "eight bit", body=body.encode("utf-8"),
                  extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        b"Content-Transfer-Encoding: 8bit\r\n", mail_options=["BODY=8BITMIME"])
    raw = fake.wait_message(mid)
    assert all(c < 0x80 for c in raw), "8-bit bytes sent to a server without 8BITMIME"
    # undo dot-stuffing, then let Python's email decode it
    unstuffed = b"".join(l[1:] if l.startswith(b".") else l for l in raw.splitlines(True))
    msg = email.message_from_bytes(unstuffed, policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n")


def test_deferred_then_flushed_once(net):
    a, b = net["a"], net["b"]
    mark, mark_b = a.log_mark(), b.log_mark()
    b.stop()
    try:
        mid, qid = send(a, ["bob@b.test"], "while down")
        a.wait_log(f"{qid}: to=<bob@b.test>", "status=deferred", "Connection refused",
                   since=mark, timeout=30)
        assert qid in a.queue_files("deferred")
    finally:
        b.start()
    a.run("queue", "flush")
    b.wait_message("bob@b.test", mid, timeout=30)
    # A is done with it (no further attempt can follow), and B with what it took
    a.wait_log(f"{qid}: removed", since=mark, timeout=30)
    b.wait_settled(since=mark_b)
    assert len(a.log_lines(f"{qid}: to=<bob@b.test>", "status=sent", since=mark)) == 1
    assert len(b.find_messages("bob@b.test", mid)) == 1


def test_starttls_used_when_offered(net):
    a, fake = net["a"], net["fakes"]["tls"]
    mark, sessions = a.log_mark(), getattr(fake, "tls_sessions", 0)
    mid, qid = send(a, ["x@tls.test"], "tls may")
    fake.wait_message(mid)
    assert getattr(fake, "tls_sessions", 0) > sessions
    a.wait_log("TLS connection established to mx.tls.test", since=mark)
    a.wait_log(re.compile(rf"{qid}: relay=mx\.tls\.test\[127\.0\.0\.1\]:\d+, conn_use=\d+, "
                          r"tls=TLSv1\.[23] "), since=mark)


def reload_with(a, **kw):
    a.config(**kw)
    a.reload()


def test_tls_verify_level(net):
    a, fake = net["a"], net["fakes"]["tls"]
    wrong_ca = os.path.join(a.conf_dir, "tls", "cert.pem")
    try:
        mark = a.log_mark()
        reload_with(a, smtp_tls_security_level="verify", smtp_tls_CAfile=net["cert"])
        mid, _ = send(a, ["y@tls.test"], "tls verify")
        fake.wait_message(mid)
        a.wait_log("Verified TLS connection established to mx.tls.test", since=mark)

        mark = a.log_mark()
        reload_with(a, smtp_tls_CAfile=wrong_ca)
        _, qid = send(a, ["z@tls.test"], "tls verify fails")
        a.wait_log(f"{qid}: to=<z@tls.test>", "status=deferred", "TLS", since=mark, timeout=30)
        # a server without STARTTLS gets nothing at this level
        _, qid = send(a, ["w@plain.test"], "tls required")
        a.wait_log(f"{qid}: to=<w@plain.test>", "status=deferred", "TLS is required",
                   since=mark, timeout=30)
    finally:
        reload_with(a, smtp_tls_security_level="may", smtp_tls_CAfile="")


@pytest.mark.parametrize("mode", ["dsn", "plain"])
def test_success_notice_only_when_next_hop_cannot_send_it(net, mode):
    """NOTIFY=SUCCESS: a next hop that offers DSN gets the parameter and sends the notice
    itself, so we send none (RFC 3461 6.2.2); one without DSN gets a "relayed" notice
    from us."""
    a, fake = net["a"], net["fakes"][mode]
    mark = a.log_mark()
    mid, qid = send(a, [f"x@{mode}.test"], f"notify {mode}", rcpt_options=["NOTIFY=SUCCESS"])
    fake.wait_message(mid)
    rcpt_line = fake.rcpt_lines[-1]
    if mode == "dsn":
        assert b"NOTIFY=SUCCESS" in rcpt_line, rcpt_line
        a.wait_log(f"{qid}: to=<x@{mode}.test>", "status=sent", since=mark)
        # done with the message, and with any notice it could have caused
        a.wait_log(f"{qid}: removed", since=mark)
        a.wait_settled(since=mark)
        assert not a.log_lines(f"{qid}: sender success notification", since=mark)
        assert not a.find_messages(ALICE, about=mid)
    else:
        assert b"NOTIFY" not in rcpt_line, rcpt_line
        notice = a.wait_message(ALICE, about=mid)
        [fields] = dsn_of(notice)
        assert fields["action"] == "relayed" and fields["status"].startswith("2."), fields

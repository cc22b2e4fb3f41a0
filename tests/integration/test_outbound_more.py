"""More outbound delivery, all on loopback: partial 452 answers retried once,
a mail loop between two instances, relayhost, relay_domains, and a bounce to a
sender that cannot be reached.  Instance A (a.test) sends; B (b.test, far.test)
relays for r.test to C (r.test) and for loop.test back to A; a test DNS server
publishes an MX for unreach.test that points to a closed port; a fake SMTP
server of the test answers 452 to one recipient of its first transaction."""

import email
import email.policy
import re
import socket
import threading
import time

import pytest

from conftest import start_instance
from dnsserver import ZoneServer
from instance import wait_for
from test_outbound import dsn_of

ALICE = "alice@a.test"
PM = "pm@a.test"

ZONE = """
unreach.test.     300 IN MX 10 mx.unreach.test.
mx.unreach.test.  300 IN A  127.0.0.1
"""


def closed_port():
    """A loopback port nobody listens on (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TempFailServer:
    """An SMTP server of the test: answers 452 4.2.1 to RCPT for `busy` in its first
    transaction that names it, 250 to everything else.  Keeps one envelope
    (sender, accepted recipients) per completed DATA."""

    def __init__(self, busy):
        self.busy = busy.lower()
        self.refused_once = False
        self.envelopes = []
        self.rcpt_replies = []          # (address, code) in the order given
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _addr(line):
        m = re.search(rb"<([^>]*)>", line)
        return m.group(1).decode("ascii", "replace").lower() if m else ""

    def _serve(self, conn):
        conn.settimeout(30)
        try:
            self._smtp(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def _smtp(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 mx.fake.test ESMTP\r\n")
        sender, rcpts = None, []
        while True:
            line = f.readline(4096)
            if not line:
                return
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                conn.sendall(b"250-mx.fake.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif cmd.startswith(b"MAIL"):
                sender, rcpts = self._addr(line), []
                conn.sendall(b"250 2.1.0 Ok\r\n")
            elif cmd.startswith(b"RSET"):
                sender, rcpts = None, []
                conn.sendall(b"250 2.0.0 Ok\r\n")
            elif cmd.startswith(b"RCPT"):
                addr = self._addr(line)
                with self.lock:
                    refuse = addr == self.busy and not self.refused_once
                    if refuse:
                        self.refused_once = True
                    self.rcpt_replies.append((addr, 452 if refuse else 250))
                if refuse:
                    conn.sendall(b"452 4.2.1 Mailbox busy, try again later\r\n")
                else:
                    rcpts.append(addr)
                    conn.sendall(b"250 2.1.5 Ok\r\n")
            elif cmd == b"DATA":
                if not rcpts:
                    conn.sendall(b"554 5.5.1 No valid recipients\r\n")
                    continue
                conn.sendall(b"354 go ahead\r\n")
                data = b""
                while True:
                    part = f.readline(100000)
                    if not part or part == b".\r\n":
                        break
                    data += part
                if not part:
                    return
                with self.lock:
                    self.envelopes.append((sender, list(rcpts), data))
                sender, rcpts = None, []
                conn.sendall(b"250 2.0.0 Ok: kept\r\n")
            elif cmd == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            elif cmd == b"NOOP":
                conn.sendall(b"250 2.0.0 Ok\r\n")
            else:
                conn.sendall(b"502 5.5.2 What\r\n")

    def accepted(self):
        """Every recipient of every completed transaction, in order."""
        with self.lock:
            return [r for _, rs, _ in self.envelopes for r in rs]

    def stop(self):
        self.sock.close()


@pytest.fixture(scope="module")
def net():
    dns = ZoneServer(ZONE).start()
    fake = TempFailServer("busy@fake.test")
    made = []
    try:
        c = start_instance(users=("x@r.test",), domains=("r.test",), hostname="mx.r.test")
        made.append(c)
        b = start_instance(users=("bob@b.test", "y@far.test"), domains=("b.test", "far.test"),
                           hostname="mx.b.test", start=False,
                           config={"mynetworks": "192.0.2.0/24",
                                   "relay_domains": "r.test, loop.test",
                                   "hopcount_limit": "10"})
        made.append(b)
        a = start_instance(users=(ALICE, PM), domains=("a.test",), hostname="mx.a.test",
                           start=False,
                           config={"dns_servers": f"[127.0.0.1]:{dns.port}",
                                   "smtp_destination_port": str(closed_port()),
                                   "relayhost": f"[127.0.0.1]:{b.port('smtp')}",
                                   "hopcount_limit": "10",
                                   "bounce_queue_lifetime": "3s",
                                   "bounce_notice_recipient": PM,
                                   "smtp_helo_timeout": "5s",
                                   "smtp_connect_timeout": "5s"})
        made.append(a)
        b.config(transport_maps="cdb:" + b.map_path("transport"))
        b.write_map("transport",
                    f"r.test smtp:[127.0.0.1]:{c.port('smtp')}\n"
                    f"loop.test smtp:[127.0.0.1]:{a.port('smtp')}\n"
                    f"a.test smtp:[127.0.0.1]:{a.port('smtp')}\n")
        a.config(transport_maps="cdb:" + a.map_path("transport"))
        a.write_map("transport",
                    f"fake.test smtp:[127.0.0.1]:{fake.port}\n"
                    f"loop.test smtp:[127.0.0.1]:{b.port('smtp')}\n"
                    "err.test error:5.1.1 no mail for err.test\n"
                    "unreach.test smtp:unreach.test\n")
        b.start()
        a.start()
    except Exception:
        for inst in made:
            print(inst.log())
            inst.cleanup()
        fake.stop()
        dns.stop()
        raise
    yield {"a": a, "b": b, "c": c, "dns": dns, "fake": fake}
    for inst in (a, b, c):
        print(f"---- maillog of {inst.hostname} (last 40 lines) ----")
        print("\n".join(inst.log().splitlines()[-40:]))
        inst.cleanup()
    fake.stop()
    dns.stop()


def message(sender, rcpts, subject, body="hello\r\n"):
    return (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time()}@test>\r\n"
            f"\r\n{body}").encode()


def send(inst, sender, rcpts, subject):
    with inst.smtp() as s:
        return s.sendmail(sender, rcpts, message(sender, rcpts, subject))


def msgs(inst, addr):
    """inst.messages(addr), or [] while the Maildir is still being made (new/ can
    exist before cur/)."""
    try:
        return inst.messages(addr)
    except FileNotFoundError:
        return []


def wait_msgs(inst, addr, count, timeout=20):
    return wait_for(lambda: (lambda m: m if len(m) >= count else None)(msgs(inst, addr)),
                    timeout=timeout, what=f"{count} message(s) for {addr}")


def log_lines(inst, *needles):
    return [l for l in inst.log().splitlines() if all(n in l for n in needles)]


def queue_id_of(inst, needle):
    """The queue id of the (first) message whose from= line contains needle."""
    for line in inst.log().splitlines():
        m = re.search(r": ([0-9A-Za-z]+): from=<([^>]*)>", line)
        if m and needle in line:
            return m.group(1)
    return None


def test_452_recipient_retried_and_others_delivered_once(net):
    a, fake = net["a"], net["fake"]
    rcpts = ["one@fake.test", "busy@fake.test", "two@fake.test"]
    send(a, ALICE, rcpts, "partly busy")
    # the others go at once, in the first transaction
    wait_for(lambda: len(fake.envelopes) >= 1, timeout=20, what="first transaction")
    sender, first, _ = fake.envelopes[0]
    assert sender == ALICE
    assert sorted(first) == ["one@fake.test", "two@fake.test"]
    wait_for(lambda: log_lines(a, "to=<busy@fake.test>", "status=deferred"), timeout=20,
             what="deferral of the busy recipient")
    line = log_lines(a, "to=<busy@fake.test>", "status=deferred")[0]
    assert "452" in line and "4.2.1" in line, line
    assert len(log_lines(a, "to=<one@fake.test>", "status=sent")) == 1
    assert len(log_lines(a, "to=<two@fake.test>", "status=sent")) == 1
    # the busy one later, alone
    wait_for(lambda: "busy@fake.test" in fake.accepted(), timeout=30,
             what="retry of the busy recipient")
    wait_for(lambda: log_lines(a, "to=<busy@fake.test>", "status=sent"), timeout=15,
             what="status=sent for the busy recipient")
    time.sleep(5)       # more than a retry interval: nothing is sent twice
    acc = fake.accepted()
    for r in rcpts:
        assert acc.count(r) == 1, (r, acc)
    assert [rs for _, rs, _ in fake.envelopes[1:]] == [["busy@fake.test"]]
    assert [r for r, code in fake.rcpt_replies if code == 452] == ["busy@fake.test"]
    for r in rcpts:
        assert len(log_lines(a, f"to=<{r}>", "status=sent")) == 1
    assert not log_lines(a, "fake.test", "status=bounced")


def returned_headers(msg_bytes):
    msg = email.message_from_bytes(msg_bytes, policy=email.policy.default)
    for part in msg.walk():
        ct = part.get_content_type()
        if ct == "text/rfc822-headers":
            return part.get_payload(decode=True) or part.get_payload().encode()
        if ct == "message/rfc822":
            inner = part.get_payload()[0]
            return inner.as_bytes().split(b"\n\n", 1)[0]
    return None


def test_mail_loop_bounces_with_5_4_6(net):
    a, b = net["a"], net["b"]
    n = len(msgs(a, ALICE))
    send(a, ALICE, ["x@loop.test"], "round and round")
    notice = wait_msgs(a, ALICE, n + 1, timeout=60)[-1]
    fields = dsn_of(notice)
    assert len(fields) == 1, fields
    assert "x@loop.test" in fields[0]["final-recipient"]
    assert fields[0]["status"] == "5.4.6"
    assert fields[0]["action"] == "failed"
    # the original's headers come back (qmgr(8)): more Received than hopcount_limit
    hdrs = returned_headers(notice)
    assert hdrs is not None, notice.decode(errors="replace")
    received = len(re.findall(rb"(?im)^received:", hdrs))
    assert 10 <= received <= 12, hdrs.decode(errors="replace")
    assert b"Subject: round and round" in hdrs
    # the loop has stopped: no more hops, and one notice only
    time.sleep(4)
    hops = len(log_lines(a, "to=<x@loop.test>")) + len(log_lines(b, "to=<x@loop.test>"))
    time.sleep(4)
    assert len(log_lines(a, "to=<x@loop.test>")) + len(log_lines(b, "to=<x@loop.test>")) == hops
    assert hops <= 12, hops
    notices = [m for m in msgs(a, ALICE) if b"round and round" in m]
    assert len(notices) == 1
    for inst in (a, b):
        assert not inst.queue_files("deferred"), inst.queue_files("deferred")


def test_relayhost_carries_remote_mail(net):
    a, b = net["a"], net["b"]
    n = len(msgs(b, "y@far.test"))
    send(a, ALICE, ["y@far.test"], "via the relay host")
    got = wait_msgs(b, "y@far.test", n + 1, timeout=20)[-1]
    assert b"Subject: via the relay host" in got
    wait_for(lambda: log_lines(a, "to=<y@far.test>", "status=sent"), timeout=10,
             what="status=sent for y@far.test")
    line = log_lines(a, "to=<y@far.test>", "status=sent")[0]
    assert f"127.0.0.1]:{b.port('smtp')}" in line, line
    # a bracketed relay host: no DNS lookup for the recipient's domain
    assert not [q for q, _ in net["dns"].queries if "far.test" in q]


def test_relay_domains_accepted_from_stranger(net):
    b, c = net["b"], net["c"]
    n = len(msgs(c, "x@r.test"))
    with b.smtp() as s:
        s.ehlo("stranger.example")
        assert s.mail("someone@elsewhere.example")[0] == 250
        assert s.rcpt("x@r.test")[0] == 250
        code, text = s.rcpt("x@other.test")
        assert code == 554 and text.startswith(b"5.7.1"), (code, text)
        code, _ = s.data(message("someone@elsewhere.example", ["x@r.test"], "relayed for r"))
        assert code == 250
    got = wait_msgs(c, "x@r.test", n + 1, timeout=20)[-1]
    assert b"Subject: relayed for r" in got
    wait_for(lambda: log_lines(b, "to=<x@r.test>", "status=sent"), timeout=10,
             what="status=sent on B")
    assert not log_lines(b, "qmgr", "to=<x@other.test>")


def test_bounce_to_unreachable_sender_does_not_loop(net):
    a = net["a"]
    sender = "s@unreach.test"
    npm = len(msgs(a, PM))
    send(a, sender, ["nobody@err.test"], "to an error transport")
    wait_for(lambda: log_lines(a, "to=<nobody@err.test>", "status=bounced"), timeout=15,
             what="bounce of nobody@err.test")
    orig = queue_id_of(a, f"from=<{sender}>")
    assert orig
    line = wait_for(lambda: [l for l in a.log().splitlines()
                             if f"{orig}: sender non-delivery notification:" in l],
                    timeout=15, what="sender notification")[0]
    bounce_id = line.rsplit(":", 1)[1].strip()
    # the notice to the sender is deferred (MX at a closed port), not bounced
    wait_for(lambda: log_lines(a, f"{bounce_id}: to=<{sender}>", "status=deferred"),
             timeout=30, what="deferral of the notice")
    # then given up after bounce_queue_lifetime, with one postmaster notice
    wait_for(lambda: log_lines(a, f"{bounce_id}: to=<{sender}>", "status=bounced"),
             timeout=40, what="notice given up")
    gaveup = log_lines(a, f"{bounce_id}: to=<{sender}>", "status=bounced")[0]
    assert "5.4.7" in gaveup, gaveup
    wait_for(lambda: log_lines(a, f"{bounce_id}: postmaster non-delivery notification"),
             timeout=15, what="postmaster notice")
    pm = wait_msgs(a, PM, npm + 1, timeout=20)
    time.sleep(6)       # more than two retry intervals: nothing more comes
    assert len(msgs(a, PM)) == npm + 1
    assert len(log_lines(a, f"{bounce_id}: postmaster non-delivery notification")) == 1
    assert len(log_lines(a, f"{bounce_id}: to=<{sender}>", "status=bounced")) == 1
    # no message to the null sender, no second notice about the notice
    assert not log_lines(a, "to=<>")
    assert not log_lines(a, f"{bounce_id}: sender non-delivery notification")
    assert b"to an error transport" in pm[-1] or b"s@unreach.test" in pm[-1]
    # the queue is empty again (no loop of notices)
    wait_for(lambda: not a.queue_files("deferred") and not a.queue_files("active")
             and not a.queue_files("incoming"), timeout=15, what="empty queue")

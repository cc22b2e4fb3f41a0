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
from instance import reserve_port, wait_for
from test_outbound import dsn_of

ALICE = "alice@a.test"
PM = "pm@a.test"

ZONE = """
unreach.test.     300 IN MX 10 mx.unreach.test.
mx.unreach.test.  300 IN A  127.0.0.1
"""


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
        self.port = reserve_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
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
                                   # a port of ours that nobody listens on
                                   "smtp_destination_port": str(reserve_port()),
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
    """(Message-ID, the message)"""
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@test>"
    return mid, (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
                 f"Message-ID: {mid}\r\n\r\n{body}").encode()


def send(inst, sender, rcpts, subject):
    """(Message-ID, queue id at inst)"""
    mid, data = message(sender, rcpts, subject)
    return mid, inst.submit(sender, rcpts, data)


def test_452_recipient_retried_and_others_delivered_once(net):
    a, fake = net["a"], net["fake"]
    mark = a.log_mark()
    rcpts = ["one@fake.test", "busy@fake.test", "two@fake.test"]
    _, qid = send(a, ALICE, rcpts, "partly busy")
    # the others go at once, in the first transaction
    wait_for(lambda: len(fake.envelopes) >= 1, timeout=20, what="first transaction")
    sender, first, _ = fake.envelopes[0]
    assert sender == ALICE
    assert sorted(first) == ["one@fake.test", "two@fake.test"]
    line = a.wait_log(f"{qid}: to=<busy@fake.test>", "status=deferred", since=mark, timeout=20)
    assert "452" in line and "4.2.1" in line, line
    assert len(a.log_lines(f"{qid}: to=<one@fake.test>", "status=sent", since=mark)) == 1
    assert len(a.log_lines(f"{qid}: to=<two@fake.test>", "status=sent", since=mark)) == 1
    # the busy one later, alone
    wait_for(lambda: "busy@fake.test" in fake.accepted(), timeout=30,
             what="retry of the busy recipient")
    a.wait_log(f"{qid}: to=<busy@fake.test>", "status=sent", since=mark)
    # the message has left the queue: nothing more can be sent
    a.wait_log(f"{qid}: removed", since=mark)
    acc = fake.accepted()
    for r in rcpts:
        assert acc.count(r) == 1, (r, acc)
    assert [rs for _, rs, _ in fake.envelopes[1:]] == [["busy@fake.test"]]
    assert [r for r, code in fake.rcpt_replies if code == 452] == ["busy@fake.test"]
    for r in rcpts:
        assert len(a.log_lines(f"to=<{r}>", "status=sent", since=mark)) == 1
    assert not a.log_lines("fake.test", "status=bounced", since=mark)


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
    mark_a, mark_b = a.log_mark(), b.log_mark()
    mid, _ = send(a, ALICE, ["x@loop.test"], "round and round")
    notice = a.wait_message(ALICE, about=mid, timeout=60)
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
    # the loop has stopped: every copy on either side has left its queue, and the
    # notice too; so no more hops will come, and one notice only
    wait_for(lambda: loop_settled(a, b, mark_a, mark_b), timeout=30,
             what="every copy of the looping message to leave both queues")
    hops = (len(a.log_lines("to=<x@loop.test>", since=mark_a))
            + len(b.log_lines("to=<x@loop.test>", since=mark_b)))
    assert hops <= 12, hops
    assert len(a.find_messages(ALICE, about=mid)) == 1
    for inst in (a, b):
        assert not inst.queue_files("deferred"), inst.queue_files("deferred")


def loop_settled(a, b, mark_a, mark_b):
    """Every message either instance took since the marks (each hop is one) and every
    notice it wrote has left its queue.  A copy in flight is in the sender's queue
    until the receiver has taken it (and logged that), so seen from both logs at once
    nothing is missed: checked twice, with the same lines between."""
    def lines():
        return a.log_since(mark_a), b.log_since(mark_b)
    before = lines()
    return a.settled(mark_a) and b.settled(mark_b) and lines() == before


def test_relayhost_carries_remote_mail(net):
    a, b = net["a"], net["b"]
    mark = a.log_mark()
    mid, qid = send(a, ALICE, ["y@far.test"], "via the relay host")
    got = b.wait_message("y@far.test", mid, timeout=20)
    assert b"Subject: via the relay host" in got
    line = a.wait_log(f"{qid}: to=<y@far.test>", "status=sent", since=mark, timeout=10)
    assert f"127.0.0.1]:{b.port('smtp')}" in line, line
    # a bracketed relay host: no DNS lookup for the recipient's domain
    assert not [q for q, _ in net["dns"].queries if "far.test" in q]


def test_relay_domains_accepted_from_stranger(net):
    b, c = net["b"], net["c"]
    mark = b.log_mark()
    mid, data = message("someone@elsewhere.example", ["x@r.test"], "relayed for r")
    with b.smtp() as s:
        s.ehlo("stranger.example")
        assert s.mail("someone@elsewhere.example")[0] == 250
        assert s.rcpt("x@r.test")[0] == 250
        code, text = s.rcpt("x@other.test")
        assert code == 554 and text.startswith(b"5.7.1"), (code, text)
        code, _ = s.data(data)
        assert code == 250
    got = c.wait_message("x@r.test", mid, timeout=20)
    assert b"Subject: relayed for r" in got
    b.wait_log("to=<x@r.test>", "status=sent", since=mark, timeout=10)
    b.wait_settled(since=mark)
    assert not b.log_lines("qmgr", "to=<x@other.test>", since=mark)


def test_bounce_to_unreachable_sender_does_not_loop(net):
    a = net["a"]
    mark = a.log_mark()
    sender = "s@unreach.test"
    mid, orig = send(a, sender, ["nobody@err.test"], "to an error transport")
    a.wait_log(f"{orig}: to=<nobody@err.test>", "status=bounced", since=mark)
    line = a.wait_log(f"{orig}: sender non-delivery notification:", since=mark)
    bounce_id = line.rsplit(":", 1)[1].strip()
    # the notice to the sender is deferred (MX at a closed port), not bounced
    a.wait_log(f"{bounce_id}: to=<{sender}>", "status=deferred", since=mark, timeout=30)
    # then given up after bounce_queue_lifetime, with one postmaster notice
    gaveup = a.wait_log(f"{bounce_id}: to=<{sender}>", "status=bounced", since=mark,
                        timeout=40)
    assert "5.4.7" in gaveup, gaveup
    line = a.wait_log(f"{bounce_id}: postmaster non-delivery notification:", since=mark)
    pm_id = line.rsplit(":", 1)[1].strip()
    # the notice, and the postmaster's notice about it, have left the queue: nothing
    # more comes of them
    a.wait_log(f"{bounce_id}: removed", since=mark)
    a.wait_settled(since=mark)
    pm = a.find_messages(PM, about=mid)
    assert len(pm) == 1, pm
    assert len(a.log_lines(f"{pm_id}: to=<{PM}>", "status=sent", since=mark)) == 1
    assert len(a.log_lines(f"{bounce_id}: postmaster non-delivery notification",
                           since=mark)) == 1
    assert len(a.log_lines(f"{bounce_id}: to=<{sender}>", "status=bounced", since=mark)) == 1
    # no message to the null sender, no second notice about the notice
    assert not a.log_lines("to=<>", since=mark)
    assert not a.log_lines(f"{bounce_id}: sender non-delivery notification", since=mark)
    assert not a.log_lines(f"{pm_id}: sender non-delivery notification", since=mark)
    assert b"to an error transport" in pm[0] or b"s@unreach.test" in pm[0]
    # nothing of it is left in the queue (no loop of notices)
    for q in ("incoming", "active", "deferred"):
        assert not {orig, bounce_id, pm_id} & set(a.queue_files(q)), q

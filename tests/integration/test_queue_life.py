"""Queue life: delivery status notifications (RFC 3464) parsed with Python's email
package, NOTIFY/RET/ENVID/ORCPT, delay warnings, the queue lifetime, notices that
cannot be delivered (double bounce, then dropped), per-destination concurrency, dead
destinations and flush.  Routes come from transport_maps ("error:", "defer:", and a
"fake" transport served by a small agent written here that speaks the delivery
protocol on private/fake)."""

import email
import email.policy
import os
import socket
import threading
import time

import pytest

from conftest import start_instance
from instance import wait_for

SENDER = "alice@example.test"


def transport_map(inst, text):
    inst.write_map("transport", text)
    inst.config(transport_maps="cdb:" + inst.map_path("transport"))


@pytest.fixture(scope="module")
def mta():
    inst = start_instance(users=("alice@example.test", "bob@example.test", "pm@example.test"),
                          domains=("example.test",), start=False,
                          config={"delay_warning_time": "2s", "maximal_queue_lifetime": "5s",
                                  "bounce_notice_recipient": "pm@example.test"})
    transport_map(inst, "fail.test error:5.1.1 no such user here\n"
                        "slow.test defer:4.4.1 host is unreachable\n")
    inst.start()
    yield inst
    inst.cleanup()


def send(inst, sender, rcpts, subject, mail_options=(), rcpt_options=(), body="body"):
    """(Message-ID, queue id)"""
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@test>"
    data = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
            f"Message-ID: {mid}\r\n\r\n{body} of {subject}\r\n")
    return mid, inst.submit(sender, rcpts, data.encode(), mail_options, rcpt_options)


def notices(inst, addr, mid):
    """The notices to addr about message mid, parsed."""
    return [email.message_from_bytes(m, policy=email.policy.compat32)
            for m in inst.find_messages(addr, about=mid)]


def wait_notice(inst, addr, mid, pred, what, timeout=30):
    """The first notice to addr about message mid for which pred is true."""
    def find():
        for m in notices(inst, addr, mid):
            if pred(m):
                return m
        return None
    return wait_for(find, timeout=timeout, what=what)


def report(msg):
    """(per-message fields, [per-recipient fields]) of a multipart/report."""
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    ds = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    assert len(ds) == 1
    groups = ds[0].get_payload()       # the email package parses it into header blocks
    return groups[0], groups[1:]


def original_part(msg):
    return msg.get_payload()[2]


def about(subject):
    def pred(m):
        part = original_part(m) if m.get_content_type() == "multipart/report" else None
        if part is None:
            return False
        if part.get_content_type() == "message/rfc822":
            return part.get_payload()[0]["Subject"] == subject
        return f"Subject: {subject}\n" in part.get_payload()
    return pred


def test_error_route_bounces_with_dsn(mta):
    mid, _ = send(mta, SENDER, ["x@fail.test"], "plain bounce")
    msg = wait_notice(mta, SENDER, mid, about("plain bounce"), "the bounce")
    assert msg["From"].startswith("MAILER-DAEMON@")
    assert msg["Auto-Submitted"] == "auto-replied"
    per_msg, rcpts = report(msg)
    assert per_msg["Reporting-MTA"] == "dns; mx.example.test"
    assert per_msg["Original-Envelope-Id"] is None
    assert len(rcpts) == 1
    assert rcpts[0]["Final-Recipient"] == "rfc822; x@fail.test"
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Status"] == "5.1.1"
    assert "no such user here" in rcpts[0]["Diagnostic-Code"]
    # RET absent: headers only
    part = original_part(msg)
    assert part.get_content_type() == "text/rfc822-headers"
    assert "body of plain bounce" not in msg.as_string()
    # the notice comes from the null sender
    [raw] = mta.find_messages(SENDER, about=mid)
    assert raw.startswith(b"Return-Path: <>\n")


def test_ret_full_envid_orcpt(mta):
    mid, _ = send(mta, SENDER, ["y@fail.test"], "full bounce",
                  mail_options=["RET=FULL", "ENVID=env+2B42"],
                  rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;Someone@fail.test"])
    msg = wait_notice(mta, SENDER, mid, about("full bounce"), "the RET=FULL bounce")
    per_msg, rcpts = report(msg)
    assert per_msg["Original-Envelope-Id"] == "env+42"
    assert rcpts[0]["Original-Recipient"] == "rfc822; Someone@fail.test"
    part = original_part(msg)
    assert part.get_content_type() == "message/rfc822"
    inner = part.get_payload()[0]
    assert inner["Subject"] == "full bounce"
    assert "body of full bounce" in inner.get_payload()


def test_notify_never_sends_nothing(mta):
    mark = mta.log_mark()
    mid, qid = send(mta, SENDER, ["z@fail.test"], "never bounce", rcpt_options=["NOTIFY=NEVER"])
    mta.wait_log(f"{qid}: to=<z@fail.test>, no non-delivery notification: NOTIFY=NEVER",
                 since=mark)
    # the message has left the queue, and no notice was written about it
    mta.wait_log(f"{qid}: removed", since=mark)
    mta.wait_settled(since=mark)
    assert not mta.log_lines(f"{qid}: sender non-delivery notification", since=mark)
    assert not mta.find_messages(SENDER, about=mid)
    # while a later message's bounce arrives
    later, _ = send(mta, SENDER, ["w@fail.test"], "after never")
    wait_notice(mta, SENDER, later, about("after never"), "the later bounce")
    assert not mta.find_messages(SENDER, about=mid)


def test_notify_success(mta):
    mid, _ = send(mta, SENDER, ["bob@example.test"], "success please",
                  rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    mta.wait_message("bob@example.test", mid)
    msg = wait_notice(mta, SENDER, mid, about("success please"), "the success notice")
    assert msg["Subject"] == "Successful Mail Delivery Report"
    _, rcpts = report(msg)
    assert rcpts[0]["Final-Recipient"] == "rfc822; bob@example.test"
    assert rcpts[0]["Action"] == "delivered"
    assert rcpts[0]["Status"] == "2.0.0"


def test_delay_warning_then_lifetime_expiry(mta):
    mark = mta.log_mark()
    mid, qid = send(mta, SENDER, ["a@slow.test"], "slow one")
    warn = wait_notice(mta, SENDER, mid, lambda m: about("slow one")(m)
                       and m["Subject"].startswith("Delayed Mail"), "the delay warning")
    _, rcpts = report(warn)
    assert rcpts[0]["Action"] == "delayed"
    assert rcpts[0]["Status"] == "4.4.1"
    assert rcpts[0]["Will-Retry-Until"]
    bounce = wait_notice(mta, SENDER, mid, lambda m: about("slow one")(m)
                         and m["Subject"].startswith("Undelivered"), "the expiry bounce")
    _, rcpts = report(bounce)
    assert rcpts[0]["Status"] == "5.4.7"
    assert rcpts[0]["Action"] == "failed"
    # one warning only: the message and its notices have left the queue
    mta.wait_log(f"{qid}: removed", since=mark)
    mta.wait_settled(since=mark)
    assert len(mta.log_lines(f"{qid}: sender delay notification", since=mark)) == 1
    warnings = [m for m in notices(mta, SENDER, mid) if m["Subject"].startswith("Delayed Mail")]
    assert len(warnings) == 1


def test_no_delay_warning_without_notify_delay(mta):
    mark = mta.log_mark()
    mid, qid = send(mta, SENDER, ["b@slow.test"], "slow quiet", rcpt_options=["NOTIFY=FAILURE"])
    wait_notice(mta, SENDER, mid, lambda m: about("slow quiet")(m)
                and m["Subject"].startswith("Undelivered"), "the expiry bounce")
    mta.wait_log(f"{qid}: removed", since=mark)
    mta.wait_settled(since=mark)
    assert not mta.log_lines(f"{qid}: sender delay notification", since=mark)
    assert not any(m["Subject"].startswith("Delayed") for m in notices(mta, SENDER, mid))


def test_failed_bounce_goes_to_postmaster_once(mta):
    # the sender does not exist here: its bounce fails, the postmaster gets that
    mid, _ = send(mta, "ghost@example.test", ["v@fail.test"], "ghost mail")
    msg = wait_notice(mta, "pm@example.test", mid, lambda m: m["Subject"] ==
                      "Postmaster Copy: Undelivered Mail", "the double bounce")
    raw = [r for r in mta.find_messages("pm@example.test", about=mid)
           if b"Postmaster Copy" in r][0]
    assert b"Return-Path: <double-bounce@mx.example.test>" in raw
    _, rcpts = report(msg)
    assert rcpts[0]["Final-Recipient"] == "rfc822; ghost@example.test"
    assert rcpts[0]["Action"] == "failed"
    # the returned notice is the failed bounce about "ghost mail"
    assert b"ghost mail" in raw


def test_failed_double_bounce_is_dropped(mta):
    mark = mta.log_mark()
    mid, qid = send(mta, "double-bounce@mx.example.test", ["u@fail.test"], "dropped one")
    mta.wait_log(f"{qid}: undeliverable notification from <double-bounce@mx.example.test> "
                 "dropped", since=mark)
    # gone from the queue without a notice
    mta.wait_log(f"{qid}: removed", since=mark)
    mta.wait_settled(since=mark)
    assert not mta.log_lines(f"{qid}: ", "notification:", since=mark)
    assert not mta.find_messages("pm@example.test", about=mid)


# ---- a fake delivery agent on private/fake ----

class FakeAgent:
    """Answers delivery requests (protocol deliver/2, see lib/mail/deliver.h): nexthop
    dead.test -> every recipient deferred and dead=1; anything else -> ok after `delay`
    seconds.  Counts requests per next hop and the most in progress at once."""

    def __init__(self, path, delay=0.0):
        self.path = path
        self.delay = delay
        self.lock = threading.Lock()
        self.requests = {}
        self.inflight = {}
        self.max_inflight = {}
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_frame(f):
        attrs = []
        while True:
            n = b""
            while True:
                ch = f.read(1)
                if not ch:
                    return None
                if ch == b":":
                    break
                n += ch
            body = f.read(int(n))
            f.read(1)
            if not body:
                return attrs
            k, _, v = body.partition(b"=")
            attrs.append((k.decode(), v.decode()))

    @staticmethod
    def _frame(attrs):
        out = b""
        for k, v in attrs:
            item = f"{k}={v}".encode()
            out += str(len(item)).encode() + b":" + item + b","
        return out + b"0:,"

    def _serve(self, c):
        f = c.makefile("rb")
        while True:
            req = self._read_frame(f)
            if req is None:
                break
            d = dict(req)
            hop = d.get("nexthop", "")
            idx = [v for k, v in req if k == "rcpt"]
            with self.lock:
                self.requests[hop] = self.requests.get(hop, 0) + 1
                self.inflight[hop] = self.inflight.get(hop, 0) + 1
                self.max_inflight[hop] = max(self.max_inflight.get(hop, 0), self.inflight[hop])
            if hop == "dead.test":
                reply = []
                for i in idx:
                    reply += [("rcpt", i), ("status", "defer"), ("dsn", "4.4.1"),
                              ("text", "connect to dead.test: Connection refused")]
                reply.append(("dead", "1"))
            else:
                time.sleep(self.delay)
                reply = []
                for i in idx:
                    reply += [("rcpt", i), ("status", "ok"), ("dsn", "2.0.0"),
                              ("text", "250 accepted")]
            with self.lock:
                self.inflight[hop] -= 1
            c.sendall(self._frame([("proto", "deliver/2")] + reply))
        c.close()

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def fake_mta():
    inst = start_instance(users=("alice@example.test",), domains=("example.test",), start=False,
                          config={"minimal_backoff_time": "60s", "maximal_backoff_time": "60s",
                                  "queue_run_delay": "60s",
                                  "default_destination_concurrency_limit": "2",
                                  "default_destination_failure_limit": "3"})
    transport_map(inst, "dead.test fake:\nbusy.test fake:\nother.test fake:\n")
    inst.start()
    agent = FakeAgent(os.path.join(inst.queue_dir(), "private", "fake"), delay=0.5)
    yield inst, agent
    agent.close()
    inst.cleanup()


def test_concurrency_per_destination(fake_mta):
    inst, agent = fake_mta
    mark = inst.log_mark()
    for i in range(6):
        send(inst, SENDER, [f"r{i}@busy.test"], f"busy {i}")
    send(inst, SENDER, ["x@other.test"], "other one")
    wait_for(lambda: len(inst.log_lines("relay=busy.test", since=mark)) >= 6, timeout=30,
             what="six deliveries to busy.test")
    inst.wait_log("relay=other.test", since=mark)
    assert agent.requests["busy.test"] == 6
    assert agent.max_inflight["busy.test"] <= 2


def test_dead_destination_pauses_then_flush(fake_mta):
    inst, agent = fake_mta
    mark = inst.log_mark()
    for i in range(3):
        send(inst, SENDER, [f"d{i}@dead.test"], f"dead {i}")
        inst.wait_log(f"to=<d{i}@dead.test>, relay=dead.test", since=mark)
    inst.wait_log("destination dead.test is dead after 3 connection failures", since=mark)
    assert agent.requests["dead.test"] == 3
    # the next message is deferred without an attempt; other mail still flows
    send(inst, SENDER, ["d3@dead.test"], "dead 3")
    line = inst.wait_log("to=<d3@dead.test>, relay=none", since=mark)
    assert "delivery temporarily suspended: connect to dead.test" in line, line
    send(inst, SENDER, ["y@other.test"], "other two")
    inst.wait_log("to=<y@other.test>, relay=other.test", since=mark)
    assert agent.requests["dead.test"] == 3
    # flush: everything deferred is tried now, the pause is lifted
    inst.run("queue", "flush")
    wait_for(lambda: agent.requests["dead.test"] >= 4, timeout=15, what="a retry after flush")
    # the failed retry puts them back in deferred/ once qmgr has read the reply
    wait_for(lambda: len(inst.queue_files("deferred")) >= 1, timeout=15,
             what="the retried messages back in deferred/")


def write_queue_file(inst, sender, rcpt, content):
    """A message put straight into incoming/ (as pickup would), then a wake-up."""
    now = time.time()
    qid = "%09X%05X%07X" % (int(now), int((now % 1) * 1e6), os.getpid() & 0xFFFFFFF)

    def rec(t, v):
        b = v.encode()
        return t.encode() + str(len(b)).encode() + b":" + b + b"\n"
    data = (rec("V", "1") + rec("T", str(int(now))) + rec("S", sender) + rec("R", rcpt)
            + rec("C", content) + rec("E", ""))
    tmp = os.path.join(inst.queue_dir(), "tmp", qid)
    with open(tmp, "wb") as f:
        f.write(data)
    st = os.stat(os.path.join(inst.queue_dir(), "incoming"))
    os.chown(tmp, st.st_uid, st.st_gid)
    os.rename(tmp, os.path.join(inst.queue_dir(), "incoming", qid))
    inst.run("queue", "flush")
    return qid


def test_too_many_received_headers_bounce(mta):
    hops = "".join(f"Received: from hop{i}.test by hop{i + 1}.test; Thu, 1 Jan 2025\n"
                   for i in range(60))
    mid = f"<looping.{time.time()}@test>"
    write_queue_file(mta, SENDER, "bob@example.test",
                     hops + f"Subject: looping\nMessage-ID: {mid}\n\nround and round\n")
    msg = wait_notice(mta, SENDER, mid, about("looping"), "the loop bounce")
    _, rcpts = report(msg)
    assert rcpts[0]["Status"] == "5.4.6"
    assert "too many Received" in rcpts[0]["Diagnostic-Code"]

"""Interoperability with Postfix, all on loopback: a private Postfix (postfix_peer.py)
relays mail for a.test to Postern instance A, and A sends mail for pf.test to that
Postfix, which delivers it into a Maildir of its own.  Each side checks what the other
wrote with a reader that is not ours (Python's mailbox and email packages).  Needs root
and Debian's postfix package; skipped otherwise."""

import email
import email.policy
import re
import smtplib
import time

import pytest

from conftest import start_instance
from instance import message_id_of, reserve_port
from postfix_peer import PostfixPeer, skip_reason

_SKIP = skip_reason()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

ALICE = "alice@a.test"          # a virtual user on A
BOB_PF = "bob@pf.test"          # a mailbox at Postfix
OUTSIDER = "someone@client.test"

# Header fields the receiving side may add above the message it was given.
TRACE_FIELDS = {"return-path", "delivered-to", "received", "x-original-to"}


@pytest.fixture(scope="module")
def peers():
    a = pf = None
    try:
        pf_port = reserve_port()
        a = start_instance(users=(ALICE,), domains=("a.test",), hostname="mx.a.test",
                           start=False, config={"smtp_helo_timeout": "10s",
                                                "message_size_limit": "20000000"})
        a.config(transport_maps="cdb:" + a.map_path("transport"))
        a.write_map("transport", f"pf.test smtp:[127.0.0.1]:{pf_port}\n")
        a.start()
        pf = PostfixPeer(virtual={"pf.test": ["bob"]},
                         relay={"a.test": f"smtp:[127.0.0.1]:{a.port('smtp')}"}, port=pf_port)
        pf.start()
        yield {"a": a, "pf": pf}
    finally:
        if a is not None:
            print("---- maillog of Postern A (last 40 lines) ----")
            print("\n".join(a.log().splitlines()[-40:]))
        if pf is not None:
            print("---- maillog of Postfix (last 40 lines) ----")
            print("\n".join(pf.log().splitlines()[-40:]))
            pf.cleanup()
        if a is not None:
            a.cleanup()


def message(sender, rcpt, subject, body=b"hello\r\n", extra=b""):
    """A complete message (CRLF line ends) with every field Postfix would otherwise add."""
    head = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 03 Feb 2025 10:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time()}@interop.test>\r\n").encode()
    return head + extra + b"\r\n" + body


def split_trace(delivered, original):
    """The lines added above original (as stored: LF line ends); fails unless the stored
    message ends with original byte for byte and only trace fields were added."""
    lf = original.replace(b"\r\n", b"\n")
    assert delivered.endswith(lf), "message changed in transit"
    added = delivered[:len(delivered) - len(lf)].decode("utf-8", "replace")
    names = [line.split(":", 1)[0].lower() for line in added.splitlines()
             if line and not line[0].isspace()]
    assert names and set(names) <= TRACE_FIELDS, names
    return added


def received_fields(trace):
    """The Received fields of a trace section, unfolded, topmost first."""
    out = []
    for line in trace.splitlines():
        if line[:1].isspace() and out:
            out[-1] += " " + line.strip()
        elif line.lower().startswith("received:"):
            out.append(line)
        else:
            out.append("")
    return [f for f in out if f]


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


def via_postfix(pf, rcpt, data, mail_options=()):
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        return s.sendmail(OUTSIDER, [rcpt], data, mail_options=list(mail_options))


# ---- Postfix -> Postern ----

def test_postfix_relays_to_postern_over_tls(peers):
    a, pf = peers["a"], peers["pf"]
    mark = pf.log_mark()
    data = message(OUTSIDER, ALICE, "pf to postern")
    via_postfix(pf, ALICE, data)
    got = a.wait_message(ALICE, message_id_of(data), timeout=30)
    trace = split_trace(got, data)
    rec = received_fields(trace)
    assert len(rec) == 2, rec
    # ours on top: from Postfix, over TLS; then Postfix's own
    assert "from postfix.pf.test" in rec[0] and "by mx.a.test" in rec[0], rec[0]
    assert re.search(r"using TLSv1\.[23] with cipher", rec[0]), rec[0]
    assert "by postfix.pf.test" in rec[1], rec[1]
    pf.wait_log(f"to=<{ALICE}>", "status=sent", since=mark)
    assert any(re.search(r"(Anonymous|Untrusted) TLS connection established to "
                         rf"127\.0\.0\.1\[127\.0\.0\.1\]:{a.port('smtp')}:", line)
               for line in pf.log_lines(since=mark)), "Postfix did not use STARTTLS"


def test_postfix_relays_8bitmime(peers):
    a, pf = peers["a"], peers["pf"]
    body = "Grüße aus Köln, ça va? = fine\r\n.leading dot\r\n..two dots\r\n".encode()
    data = message(OUTSIDER, ALICE, "pf eight bit", body=body,
                   extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: 8bit\r\n")
    via_postfix(pf, ALICE, data, mail_options=["BODY=8BITMIME"])
    got = a.wait_message(ALICE, message_id_of(data), timeout=30)
    split_trace(got, data)
    msg = email.message_from_bytes(got, policy=email.policy.default)
    assert msg.get_content() == body.decode().replace("\r\n", "\n")


def big_body(size=1 << 20):
    lines, total, i = [], 0, 0
    while total < size:
        line = (f".{i:07d} " if i % 50 == 0 else f"{i:08d} ") + "abcdefghij" * 6 + "\r\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines).encode()


def test_postfix_relays_one_megabyte(peers):
    a, pf = peers["a"], peers["pf"]
    data = message(OUTSIDER, ALICE, "pf big", body=big_body())
    via_postfix(pf, ALICE, data)
    got = a.wait_message(ALICE, message_id_of(data), timeout=60)
    split_trace(got, data)


def test_postern_rejection_bounces_at_postfix(peers):
    """Postern refuses an unknown user at RCPT; Postfix's DSN goes back through A."""
    a, pf = peers["a"], peers["pf"]
    data = message(ALICE, "nobody@a.test", "pf unknown")
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        s.sendmail(ALICE, ["nobody@a.test"], data)
    notice = a.wait_message(ALICE, about=message_id_of(data), timeout=30)
    fields = dsn_of(notice)
    assert len(fields) == 1
    assert "nobody@a.test" in fields[0]["final-recipient"]
    assert fields[0]["status"] == "5.1.1"
    assert fields[0]["action"] == "failed"


# ---- Postern -> Postfix ----

def via_postern(a, rcpt, data, mail_options=()):
    """Sends through A; A's queue id."""
    return a.submit(ALICE, [rcpt], data, mail_options)


def test_postern_sends_to_postfix(peers):
    a, pf = peers["a"], peers["pf"]
    mark, pf_mark = a.log_mark(), pf.log_mark()
    data = message(ALICE, BOB_PF, "postern to pf")
    mid = message_id_of(data)
    qid = via_postern(a, BOB_PF, data)
    got = pf.wait_message(BOB_PF, mid)
    trace = split_trace(got, data)
    rec = received_fields(trace)
    # Postfix's on top (from A, over TLS), then A's own
    assert len(rec) == 2, rec
    assert "by postfix.pf.test" in rec[0] and "mx.a.test" in rec[0], rec[0]
    assert re.search(r"using TLSv1\.[23] with cipher", rec[0]), rec[0]
    assert "by mx.a.test" in rec[1], rec[1]
    line = a.wait_log(f"{qid}: to=<{BOB_PF}>", "status=sent", since=mark, timeout=20)
    assert f"relay=[127.0.0.1]:{pf.port}," in line, line
    assert a.log_lines(re.compile(rf"{qid}: relay=\S*\[127\.0\.0\.1\]:{pf.port}, conn_use=\d+, "
                                  r"tls=TLSv1\.[23] "), since=mark)
    # exactly once: A is done with the message (nothing left in its queue) and so is
    # Postfix with the copy it took
    a.wait_log(f"{qid}: removed", since=mark)
    pf_qid = re.search(r"queued as (\w+)", line).group(1)
    pf.wait_log(f"{pf_qid}: removed", since=pf_mark)
    assert len(a.log_lines(f"{qid}: to=<{BOB_PF}>", "status=sent", since=mark)) == 1
    assert len(pf.find_messages(BOB_PF, mid)) == 1
    for q in ("incoming", "active", "deferred"):
        assert qid not in a.queue_files(q), q


def test_postern_sends_8bitmime_and_dots_to_postfix(peers):
    a, pf = peers["a"], peers["pf"]
    body = "Grüße aus Köln\r\n.\r\n.leading dot\r\n..two\r\n".encode() + big_body(200_000)
    data = message(ALICE, BOB_PF, "postern eight bit", body=body,
                   extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: 8bit\r\n")
    via_postern(a, BOB_PF, data, mail_options=["BODY=8BITMIME"])
    got = pf.wait_message(BOB_PF, message_id_of(data))
    split_trace(got, data)


def test_postfix_rejection_bounces_to_sender(peers):
    a, pf = peers["a"], peers["pf"]
    mark, pf_mark = a.log_mark(), pf.log_mark()
    data = message(ALICE, "nobody@pf.test", "pf unknown user")
    qid = via_postern(a, "nobody@pf.test", data)
    notice = a.wait_message(ALICE, about=message_id_of(data), timeout=30)
    fields = dsn_of(notice)
    assert len(fields) == 1
    assert "nobody@pf.test" in fields[0]["final-recipient"]
    assert fields[0]["status"] == "5.1.1"
    assert fields[0]["action"] == "failed"
    assert b"User unknown" in notice
    line = a.wait_log(f"{qid}: to=<nobody@pf.test>", "status=bounced", since=mark)
    assert f"relay=[127.0.0.1]:{pf.port}," in line, line
    pf.wait_log("NOQUEUE: reject: RCPT", "to=<nobody@pf.test>", since=pf_mark)
    # Postfix took nothing of it
    assert not pf.log_lines("to=<nobody@pf.test>", "status=", since=pf_mark)

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
from instance import wait_for
from postfix_peer import PostfixPeer, free_port, skip_reason

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
        pf_port = free_port()
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


def via_postern(a, rcpt, data, mail_options=()):
    with a.smtp() as s:
        return s.sendmail(ALICE, [rcpt], data, mail_options=list(mail_options))


# ---- Postfix -> Postern ----

def test_postfix_relays_to_postern_over_tls(peers):
    a, pf = peers["a"], peers["pf"]
    n = len(a.messages(ALICE))
    data = message(OUTSIDER, ALICE, "pf to postern")
    via_postfix(pf, ALICE, data)
    got = a.wait_messages(ALICE, n + 1, timeout=30)[-1]
    trace = split_trace(got, data)
    rec = received_fields(trace)
    assert len(rec) == 2, rec
    # ours on top: from Postfix, over TLS; then Postfix's own
    assert "from postfix.pf.test" in rec[0] and "by mx.a.test" in rec[0], rec[0]
    assert re.search(r"using TLSv1\.[23] with cipher", rec[0]), rec[0]
    assert "by postfix.pf.test" in rec[1], rec[1]
    pf.wait_log("status=sent")
    assert re.search(r"(Anonymous|Untrusted) TLS connection established to "
                     rf"127\.0\.0\.1\[127\.0\.0\.1\]:{a.port('smtp')}:", pf.log()), \
        "Postfix did not use STARTTLS"


def test_postfix_relays_8bitmime(peers):
    a, pf = peers["a"], peers["pf"]
    n = len(a.messages(ALICE))
    body = "Grüße aus Köln, ça va? = fine\r\n.leading dot\r\n..two dots\r\n".encode()
    data = message(OUTSIDER, ALICE, "pf eight bit", body=body,
                   extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: 8bit\r\n")
    via_postfix(pf, ALICE, data, mail_options=["BODY=8BITMIME"])
    got = a.wait_messages(ALICE, n + 1, timeout=30)[-1]
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
    n = len(a.messages(ALICE))
    data = message(OUTSIDER, ALICE, "pf big", body=big_body())
    via_postfix(pf, ALICE, data)
    got = a.wait_messages(ALICE, n + 1, timeout=60)[-1]
    split_trace(got, data)


def test_postern_rejection_bounces_at_postfix(peers):
    """Postern refuses an unknown user at RCPT; Postfix's DSN goes back through A."""
    a, pf = peers["a"], peers["pf"]
    n = len(a.messages(ALICE))
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        s.sendmail(ALICE, ["nobody@a.test"], message(ALICE, "nobody@a.test", "pf unknown"))
    notice = a.wait_messages(ALICE, n + 1, timeout=30)[-1]
    fields = dsn_of(notice)
    assert len(fields) == 1
    assert "nobody@a.test" in fields[0]["final-recipient"]
    assert fields[0]["status"] == "5.1.1"
    assert fields[0]["action"] == "failed"


# ---- Postern -> Postfix ----

def relay_line(a, rcpt, status):
    for line in a.log().splitlines():
        if f"to=<{rcpt}>" in line and f"status={status}" in line:
            return line
    return None


def test_postern_sends_to_postfix(peers):
    a, pf = peers["a"], peers["pf"]
    n = len(pf.messages(BOB_PF))
    data = message(ALICE, BOB_PF, "postern to pf")
    via_postern(a, BOB_PF, data)
    got = pf.wait_messages(BOB_PF, n + 1)[-1]
    trace = split_trace(got, data)
    rec = received_fields(trace)
    # Postfix's on top (from A, over TLS), then A's own
    assert len(rec) == 2, rec
    assert "by postfix.pf.test" in rec[0] and "mx.a.test" in rec[0], rec[0]
    assert re.search(r"using TLSv1\.[23] with cipher", rec[0]), rec[0]
    assert "by mx.a.test" in rec[1], rec[1]
    line = wait_for(lambda: relay_line(a, BOB_PF, "sent"), timeout=20, what="status=sent")
    assert f"relay=[127.0.0.1]:{pf.port}," in line, line
    assert re.search(rf"relay=\S*\[127\.0\.0\.1\]:{pf.port}, conn_use=\d+, tls=TLSv1\.[23] ",
                     a.log())
    # exactly once, and nothing left in A's queue
    time.sleep(3)
    assert len([m for m in pf.messages(BOB_PF) if b"Subject: postern to pf" in m]) == 1
    wait_for(lambda: not any(a.queue_files(q) for q in ("incoming", "active", "deferred")),
             timeout=10, what="A's queue to empty")


def test_postern_sends_8bitmime_and_dots_to_postfix(peers):
    a, pf = peers["a"], peers["pf"]
    n = len(pf.messages(BOB_PF))
    body = "Grüße aus Köln\r\n.\r\n.leading dot\r\n..two\r\n".encode() + big_body(200_000)
    data = message(ALICE, BOB_PF, "postern eight bit", body=body,
                   extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: 8bit\r\n")
    via_postern(a, BOB_PF, data, mail_options=["BODY=8BITMIME"])
    got = pf.wait_messages(BOB_PF, n + 1)[-1]
    split_trace(got, data)


def test_postfix_rejection_bounces_to_sender(peers):
    a, pf = peers["a"], peers["pf"]
    n = len(a.messages(ALICE))
    nb = len(pf.messages(BOB_PF))
    via_postern(a, "nobody@pf.test", message(ALICE, "nobody@pf.test", "pf unknown user"))
    notice = a.wait_messages(ALICE, n + 1, timeout=30)[-1]
    fields = dsn_of(notice)
    assert len(fields) == 1
    assert "nobody@pf.test" in fields[0]["final-recipient"]
    assert fields[0]["status"] == "5.1.1"
    assert fields[0]["action"] == "failed"
    assert b"User unknown" in notice
    line = relay_line(a, "nobody@pf.test", "bounced")
    assert line and f"relay=[127.0.0.1]:{pf.port}," in line, line
    assert "NOQUEUE: reject: RCPT" in pf.log()
    assert len(pf.messages(BOB_PF)) == nb

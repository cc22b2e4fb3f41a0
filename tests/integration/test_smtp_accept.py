"""smtpd end to end: what Python's smtplib (and a raw socket, for what smtplib cannot
send) hands over arrives in the recipients' Maildirs byte for byte."""

import hashlib
import re
import socket
import time

import pytest

from instance import message_id_of

SENDER = "stranger@remote.test"


def msg(subject, body, extra=""):
    return (f"From: {SENDER}\r\nTo: someone\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}-{time.monotonic_ns()}@remote.test>\r\n"
            f"{extra}\r\n{body}").encode()


def lf(b):
    return b.replace(b"\r\n", b"\n")


def deliver_one(mta, rcpt, data, **kw):
    """Sends data to rcpt; the copies delivered to rcpt (found by Message-ID) once the
    message has left the queue."""
    mark = mta.log_mark()
    with mta.smtp() as s:
        s.sendmail(SENDER, [rcpt], data, **kw)
    mid = message_id_of(data)
    mta.wait_message(rcpt, mid)
    mta.wait_settled(since=mark)
    return mta.find_messages(rcpt, mid)


def split_prefix(delivered):
    """The headers Postern adds, and the rest (the message as it was sent)."""
    m = re.match(rb"Return-Path: <[^>]*>\nDelivered-To: [^\n]+\nReceived: .*?\n(?=\S)",
                 delivered, re.S)
    assert m, delivered[:400]
    return delivered[:m.end()], delivered[m.end():]


def test_plain_message(mta):
    data = msg("plain", "Hello Alice.\r\nSecond line.\r\n")
    [got] = deliver_one(mta, "alice@example.test", data)
    prefix, rest = split_prefix(got)
    assert rest == lf(data)
    assert b"Return-Path: <stranger@remote.test>\n" in prefix
    assert b"Delivered-To: alice@example.test\n" in prefix
    assert re.search(rb"by mx\.example\.test \(Postern\) with ESMTP id [0-9A-F]{21}", prefix)


def test_queue_id_in_reply_matches_received_header(mta):
    with mta.smtp() as s:
        s.ehlo("client.remote.test")
        s.mail(SENDER)
        s.rcpt("alice@example.test")
        data = msg("qid", "x\r\n")
        code, text = s.data(data)
    assert code == 250
    qid = re.search(rb"queued as ([0-9A-F]+)", text).group(1)
    got = mta.wait_message("alice@example.test", message_id_of(data))
    assert b"id " + qid in got
    assert b"from client.remote.test ([127.0.0.1])" in got


def test_8bit_message(mta):
    body = "Grüße, ñandú, 日本語\r\n".encode("utf-8")
    data = msg("eightbit", "") + body
    [got] = deliver_one(mta, "alice@example.test", data, mail_options=["BODY=8BITMIME"])
    assert split_prefix(got)[1] == lf(data)


def test_smtputf8_message(mta):
    data = ("From: jörg@remote.test\r\nSubject: ünïcode\r\nMessage-ID: <utf8@remote.test>\r\n\r\n"
            "Hallo\r\n").encode()
    with mta.smtp() as s:
        s.ehlo()
        assert s.has_extn("smtputf8")
        s.sendmail("jörg@remote.test", ["alice@example.test"], data,
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    got = mta.wait_message("alice@example.test", "<utf8@remote.test>")
    assert got.startswith("Return-Path: <jörg@remote.test>\n".encode())
    assert split_prefix(got)[1] == lf(data)
    assert b"with UTF8SMTP" in got


def test_utf8_sender_without_smtputf8_is_refused(mta):
    out = raw_session(mta, "EHLO x\r\nMAIL FROM:<jörg@remote.test>\r\nQUIT\r\n".encode())
    codes = [r[:3] for r in replies(out)]
    assert codes[0] == b"250" and codes[1] in (b"501", b"553", b"555") and codes[2] == b"221", out


def test_dot_stuffing(mta):
    body = ".leading dot\r\n..two dots\r\n.\r\n. space\r\nend\r\n"
    data = msg("dots", body)
    [got] = deliver_one(mta, "alice@example.test", data)
    assert split_prefix(got)[1] == lf(data)


def test_large_message_20mb(mta):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.:+\r\n"
    body = line * (20 * 1024 * 1024 // len(line))
    data = msg("large", "") + body
    [got] = deliver_one(mta, "alice@example.test", data)
    rest = split_prefix(got)[1]
    assert len(rest) == len(lf(data))
    assert hashlib.sha256(rest).digest() == hashlib.sha256(lf(data)).digest()


def test_several_recipients_across_domains(mta):
    rcpts = ["alice@example.test", "bob@example.test", "carol@virtual.test"]
    data = msg("multi", "to three\r\n")
    mark = mta.log_mark()
    with mta.smtp() as s:
        refused = s.sendmail(SENDER, rcpts, data)
    assert refused == {}
    for r in rcpts:
        mta.wait_message(r, message_id_of(data))
    mta.wait_settled(since=mark)
    for r in rcpts:
        [got] = mta.find_messages(r, message_id_of(data))
        assert split_prefix(got)[1] == lf(data)
        assert f"Delivered-To: {r}\n".encode() in got


def raw_session(mta, payload, read_until=b"221", timeout=20):
    """Sends payload in one write after the greeting; returns everything read."""
    with socket.create_connection(("127.0.0.1", mta.port("smtp")), timeout=timeout) as s:
        s.recv(512)
        s.sendall(payload)
        buf = b""
        deadline = time.monotonic() + timeout
        while read_until not in buf and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf


def replies(buf):
    return [l for l in buf.split(b"\r\n") if re.match(rb"^\d{3} ", l)]


def test_pipelined_transactions(mta):
    mark = mta.log_mark()
    one = msg("pipe one", "first\r\n")
    two = msg("pipe two", "second\r\n")
    payload = (b"EHLO pipeliner\r\n"
               b"MAIL FROM:<stranger@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    out = raw_session(mta, b"EHLO pipeliner\r\n", read_until=b"250 ")
    assert b"PIPELINING" in out
    payload += one + b".\r\n"
    payload += b"MAIL FROM:<stranger@remote.test>\r\nRCPT TO:<bob@example.test>\r\n" \
               b"RCPT TO:<nobody@example.test>\r\nDATA\r\n" + two + b".\r\nQUIT\r\n"
    codes = [r[:3] for r in replies(raw_session(mta, payload))]
    assert codes == [b"250", b"250", b"250", b"354", b"250",
                     b"250", b"250", b"550", b"354", b"250", b"221"], codes
    for data in (one, two):
        mta.wait_message("bob@example.test", message_id_of(data))
    mta.wait_settled(since=mark)
    for data in (one, two):
        [got] = mta.find_messages("bob@example.test", message_id_of(data))
        assert split_prefix(got)[1] == lf(data)


def test_bdat_chunking(mta):
    part1 = msg("bdat", "chunk one\r\n")
    part2 = b"chunk two, with a\r\n.leading dot that is not stuffed\r\n"
    payload = (b"EHLO chunker\r\nMAIL FROM:<stranger@remote.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\n"
               + b"BDAT %d\r\n" % len(part1) + part1
               + b"BDAT %d LAST\r\n" % len(part2) + part2 + b"QUIT\r\n")
    out = raw_session(mta, payload)
    codes = [r[:3] for r in replies(out)]
    assert codes == [b"250", b"250", b"250", b"250", b"250", b"221"], out
    got = mta.wait_message("alice@example.test", message_id_of(part1))
    assert split_prefix(got)[1] == lf(part1 + part2)


def test_unknown_user_rejected(mta):
    with mta.smtp() as s:
        s.ehlo()
        s.mail(SENDER)
        code, text = s.rcpt("nosuchuser@example.test")
    assert code == 550 and text.startswith(b"5.1.1"), text


@pytest.mark.parametrize("rcpt", [
    "someone@elsewhere.test",
    "<@example.test:someone@elsewhere.test>",
])
def test_relay_denied(mta, rcpt):
    with mta.smtp() as s:
        s.ehlo()
        s.mail(SENDER)
        arg = rcpt if rcpt.startswith("<") else f"<{rcpt}>"
        code, text = s.docmd(f"RCPT TO:{arg}")
    assert code == 554 and text.startswith(b"5.7.1"), text


@pytest.mark.parametrize("rcpt", [
    "someone%elsewhere.test@example.test",
    "elsewhere.test!someone@example.test",
    "\"someone@elsewhere.test\"@example.test",
])
def test_relay_tricks_are_unknown_local_users(mta, rcpt):
    with mta.smtp() as s:
        s.ehlo()
        s.mail(SENDER)
        code, text = s.docmd(f"RCPT TO:<{rcpt}>")
    assert code == 550 and text.startswith(b"5.1.1"), text


def test_size_declared_too_large(mta):
    with mta.smtp() as s:
        s.ehlo()
        code, text = s.docmd("MAIL FROM:<stranger@remote.test> SIZE=40000000")
    assert code == 552 and text.startswith(b"5.3.4"), text


def test_overlong_command_line(mta):
    with mta.smtp() as s:
        s.ehlo()
        code, text = s.docmd("NOOP " + "x" * 5000)
        assert code == 500 and text.startswith(b"5.5.2"), text
        assert s.noop()[0] == 250


def test_overlong_data_line(mta):
    mark = mta.log_mark()
    data = msg("long line", "y" * 10000 + "\r\n")
    with mta.smtp() as s:
        s.ehlo()
        s.mail(SENDER)
        s.rcpt("alice@example.test")
        code, text = s.data(data)
        assert code == 554 and text.startswith(b"5.6.0"), text
        assert s.noop()[0] == 250
    # what was taken is delivered; the refused message is not among it
    mta.wait_settled(since=mark)
    assert not mta.find_messages("alice@example.test", message_id_of(data))


@pytest.mark.parametrize("seq", [b"\n.\n", b"\n.\r\n", b"\r.\r"],
                         ids=["LF.LF", "LF.CRLF", "CR.CR"])
def test_smuggling_does_not_make_a_second_message(mta, seq):
    mark = mta.log_mark()
    tag = b"smuggled-%d" % time.monotonic_ns()
    outer, inner = b"<outer-" + tag + b"@remote.test>", b"<inner-" + tag + b"@remote.test>"
    payload = (b"EHLO smuggler\r\nMAIL FROM:<stranger@remote.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\nDATA\r\n"
               b"Subject: outer\r\nMessage-ID: " + outer + b"\r\n\r\nouter body" + seq +
               b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
               b"Subject: " + tag + b"\r\nMessage-ID: " + inner +
               b"\r\n\r\ninner\r\n.\r\nQUIT\r\n")
    out = raw_session(mta, payload)
    codes = [r[:3] for r in replies(out)]
    # One transaction only: EHLO MAIL RCPT DATA(354) end(250) QUIT.
    assert codes == [b"250", b"250", b"250", b"354", b"250", b"221"], out
    got = mta.wait_message("alice@example.test", outer.decode())
    assert tag in got                      # the "inner" message is body text of the outer one
    assert b"\r" not in split_prefix(got)[1]
    mta.wait_settled(since=mark)
    assert len(mta.log_lines(re.compile(r"/smtpd\[\d+\]: \w+: from=<"), since=mark)) == 1
    assert not mta.find_messages("bob@example.test", inner.decode())
    assert len(mta.find_messages("alice@example.test", outer.decode())) == 1


def test_session_survives_bad_commands(mta):
    with mta.smtp() as s:
        s.ehlo()
        assert s.docmd("BOGUS")[0] == 500
        assert s.docmd("RCPT TO:<alice@example.test>")[0] == 503
        assert s.docmd("MAIL FROM:<not an address>")[0] == 501
        assert s.docmd("VRFY alice")[0] == 252
        assert s.docmd("HELP")[0] == 214
        assert s.noop()[0] == 250
        assert s.rset()[0] == 250


def test_ipv6_loopback(mta):
    data = msg("over ipv6", "via ::1\r\n")
    with mta.smtp(host="::1") as s:
        s.sendmail(SENDER, ["bob@example.test"], data)
    got = mta.wait_message("bob@example.test", message_id_of(data))
    assert split_prefix(got)[1] == lf(data)
    assert b"([::1])" in got or b"[IPv6:::1]" in got

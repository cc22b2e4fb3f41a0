"""smtpd_milters against a milter written in the test (milter_peer.py): every stage
and reply, changes at the end of the message, quarantine to hold/, and a filter that is
down, slow or talks garbage, under both milter_default_action values."""

import os
import smtplib
import time

import pytest

from conftest import start_instance
from instance import reserve_port, wait_for
from milter_peer import (ACCEPT, DISCARD, REJECT, TEMPFAIL, Milter, add_header, add_rcpt,
                         change_from, change_header, del_rcpt, insert_header, quarantine,
                         replace_body, reply)

SENDER = "sender@remote.test"


class Behaviour:
    """Reacts to markers in the message: what the tests below send."""

    def __call__(self, stage, info):
        if stage == "mail" and "spammer@" in info["args"][0]:
            return [reply("554 5.7.1 sender refused by the test milter")]
        if stage == "rcpt" and "blocked@" in info["args"][0]:
            return [reply("550 5.1.1 recipient refused by the test milter")]
        if stage == "rcpt" and "later@" in info["args"][0]:
            return [TEMPFAIL]
        if stage != "eom":
            return None
        body = info["body"]
        if b"REJECTME" in body:
            return [reply("550 5.7.1 content refused by the test milter")]
        if b"TEMPFAILME" in body:
            return [TEMPFAIL]
        if b"DISCARDME" in body:
            return [DISCARD]
        env = []
        if b"CHGFROMME" in body:
            env.append(change_from("<changed@remote.test>", "BODY=8BITMIME"))
        if b"ADDRCPTME" in body:
            env.append(add_rcpt("<bob@example.test>"))
        if b"ADDPARME" in body:
            env.append(add_rcpt("<carol@example.test>", "NOTIFY=NEVER"))
        if b"ADDUNKNOWN" in body:
            env.append(add_rcpt("<nosuchuser@example.test>"))
        if b"ADDBAD" in body:
            env.append(add_rcpt("<not an address>"))
        if b"DELRCPTME" in body:
            env.append(del_rcpt("<alice@example.test>"))
        if b"DELALLME" in body:
            env += [del_rcpt("<alice@example.test>"), del_rcpt("<bob@example.test>")]
        if b"MANYRCPTS" in body:
            env += [add_rcpt(f"<x{i}@example.test>") for i in range(1001)]
        if env:
            return env + [ACCEPT]
        out = [add_header("X-Test-Milter", "seen"),
               insert_header(0, "X-Inserted-First", "yes"),
               change_header(1, "Subject", "changed by milter")]
        if b"QUARANTINEME" in body:
            out.append(quarantine("test quarantine"))
        if b"BLANKLINES" in body:
            out += [add_header("X-Blank", "first\r\n\r\n  \r\nsecond\r\n"),
                    change_header(1, "X-Trail", "value\n")]
        if b"REPLACEME" in body:
            out.append(replace_body(b"the new body\r\nsecond line\r\n"))
        if b"DELETEHDR" in body:
            out.append(change_header(1, "X-Delete-Me", ""))
        return out + [ACCEPT]


@pytest.fixture(scope="module")
def env():
    port = reserve_port()
    flt = Milter(port, Behaviour())
    inst = start_instance(users=("alice@example.test", "bob@example.test",
                                 "carol@example.test", "blocked@example.test",
                                 "later@example.test"),
                          config={"smtpd_milters": f"inet:127.0.0.1:{port}",
                                  "milter_command_timeout": "3s",
                                  "milter_content_timeout": "3s",
                                  "milter_connect_timeout": "3s"})
    yield inst, flt
    inst.cleanup()
    flt.stop()


def message(subject, body="hello", extra=""):
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@remote.test>"
    return mid, (f"From: {SENDER}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n{extra}\r\n"
                 f"{body}\r\n").encode()


def send(inst, rcpts, data, sender=SENDER):
    """(code, text) of the reply to the end of data (or to the command that refused)."""
    with inst.smtp() as s:
        s.ehlo("client.test")
        code, text = s.mail(sender)
        if code != 250:
            return code, text
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                return code, text
        return s.data(data)


def test_message_is_changed_before_the_250(env):
    inst, flt = env
    mid, data = message("original subject", extra="X-Delete-Me: 1\r\n", body="DELETEHDR")
    code, text = send(inst, ["alice@example.test"], data)
    assert code == 250, text
    got = inst.wait_message("alice@example.test", mid)
    head = got.split(b"\n\n", 1)[0]
    assert b"X-Test-Milter: seen" in head
    assert b"Subject: changed by milter" in head and b"original subject" not in head
    assert b"X-Delete-Me" not in head
    # inserted at index 0: before every field of the message (Received included)
    fields = [l for l in head.split(b"\n") if l and l[0:1] not in (b" ", b"\t")]
    assert fields[fields.index(b"Delivered-To: alice@example.test") + 1] \
        == b"X-Inserted-First: yes"
    # what the filter was told
    msg = [m for m in flt.messages if any(mid in v for _, v in m["headers"])][-1]
    names = [n for n, _ in msg["headers"]]
    assert names[0] == "Received" and "Subject" in names
    assert msg["body"] == b"DELETEHDR\r\n"
    assert flt.macros["C"]["{client_addr}"] == "127.0.0.1"
    assert flt.macros["C"]["j"] == inst.hostname
    assert flt.macros["M"]["{mail_addr}"] == SENDER
    assert flt.macros["R"]["{rcpt_addr}"] == "alice@example.test"
    assert flt.macros["E"]["i"] in text.decode()
    stages = [s for s, _ in flt.log]
    for st in ("connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body", "eom"):
        assert st in stages


def test_added_field_cannot_end_the_header(env):
    """A filter's value with empty or blank lines, or a line end at its end, stays one
    field: the blank lines are dropped, the rest folded, and the header goes on."""
    inst, _ = env
    mid, data = message("blank lines", extra="X-Trail: old\r\n", body="BLANKLINES")
    code, text = send(inst, ["alice@example.test"], data)
    assert code == 250, text
    got = inst.wait_message("alice@example.test", mid)
    head, body = got.split(b"\n\n", 1)
    assert b"X-Blank: first\n\tsecond\n" in head + b"\n"
    assert b"X-Trail: value" in head and b"X-Test-Milter: seen" in head
    assert body.startswith(b"BLANKLINES")


def test_body_replaced(env):
    inst, _ = env
    mid, data = message("replace", body="REPLACEME please")
    assert send(inst, ["alice@example.test"], data)[0] == 250
    got = inst.wait_message("alice@example.test", mid)
    assert got.endswith(b"\n\nthe new body\nsecond line\n")


def test_reject_at_end_of_data(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, data = message("reject", body="REJECTME")
    code, text = send(inst, ["alice@example.test"], data)
    assert code == 550 and b"5.7.1 content refused by the test milter" in text
    inst.wait_log("reject: DATA", "content refused", since=mark)
    inst.wait_settled(mark)
    assert not inst.find_messages("alice@example.test", mid)


def test_tempfail_at_end_of_data(env):
    inst, _ = env
    mid, data = message("tempfail", body="TEMPFAILME")
    code, text = send(inst, ["alice@example.test"], data)
    assert code == 451 and b"4.7.1" in text


def test_reject_sender_and_recipient(env):
    inst, _ = env
    code, text = send(inst, ["alice@example.test"], b"x\r\n", sender="spammer@remote.test")
    assert code == 554 and b"5.7.1 sender refused" in text
    with inst.smtp() as s:
        s.ehlo("client.test")
        assert s.mail(SENDER)[0] == 250
        code, text = s.rcpt("blocked@example.test")
        assert code == 550 and b"5.1.1 recipient refused" in text
        assert s.rcpt("later@example.test")[0] == 451
        # the transaction goes on with the recipients that were taken
        assert s.rcpt("alice@example.test")[0] == 250
        mid, data = message("after refused rcpt")
        assert s.data(data)[0] == 250
    inst.wait_message("alice@example.test", mid)


def test_discard(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, data = message("discard", body="DISCARDME")
    code, _ = send(inst, ["alice@example.test"], data)
    assert code == 250
    inst.wait_log("discarded by a filter", since=mark)
    assert not any(f for f in inst.queue_files("incoming"))
    assert not inst.find_messages("alice@example.test", mid)


def test_quarantine_goes_to_hold(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, data = message("quarantine", body="QUARANTINEME")
    code, text = send(inst, ["alice@example.test"], data)
    assert code == 250
    qid = text.decode().split()[-1]
    inst.wait_log(qid, "milter-hold", since=mark)
    assert qid in inst.queue_files("hold")
    inst.run("queue", "release", qid)
    got = inst.wait_message("alice@example.test", mid)
    assert b"X-Test-Milter: seen" in got


def test_bdat_goes_through_the_filter(env):
    inst, _ = env
    mid, data = message("bdat", body="REJECTME")
    with inst.smtp() as s:
        s.ehlo("client.test")
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        s.send(b"BDAT %d LAST\r\n" % len(data) + data)
        code, text = s.getreply()
        assert code == 550 and b"content refused" in text


def test_sender_changed(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, data = message("change from", body="CHGFROMME")
    code, text = send(inst, ["alice@example.test"], data)
    assert code == 250, text
    qid = text.decode().split()[-1]
    got = inst.wait_message("alice@example.test", mid)
    assert got.startswith(b"Return-Path: <changed@remote.test>\n")
    inst.wait_log(qid, "sender changed to <changed@remote.test>", since=mark)


def test_recipients_added(env):
    """SMFIR_ADDRCPT and SMFIR_ADDRCPT_PAR: the added recipients get the message; an
    unknown one is kept as given and bounced to the sender, a malformed one is logged
    and left out, and the others still get theirs."""
    inst, _ = env
    mark = inst.log_mark()
    mid, data = message("add rcpt", body="ADDRCPTME ADDPARME ADDUNKNOWN ADDBAD")
    code, text = send(inst, ["alice@example.test"], data, sender="later@example.test")
    assert code == 250, text
    qid = text.decode().split()[-1]
    for who in ("alice", "bob", "carol"):
        inst.wait_message(f"{who}@example.test", mid)
    inst.wait_log(qid, "recipient added: <bob@example.test>", since=mark)
    inst.wait_log(qid, "recipient <nosuchuser@example.test> refused", "kept for a bounce",
                  since=mark)
    inst.wait_log(qid, "bad address in an envelope change", since=mark)
    notice = inst.wait_message("later@example.test", about=mid)
    assert b"nosuchuser@example.test" in notice and b"5.1.1" in notice
    inst.wait_settled(mark)
    assert not inst.queue_files("deferred")
    assert not inst.find_messages("alice@example.test", mid)[1:]   # one copy each


def test_recipient_deleted(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, data = message("del rcpt", body="DELRCPTME")
    code, text = send(inst, ["alice@example.test", "bob@example.test"], data)
    assert code == 250, text
    qid = text.decode().split()[-1]
    inst.wait_message("bob@example.test", mid)
    inst.wait_log(qid, "recipient removed: <alice@example.test>", since=mark)
    inst.wait_settled(mark)
    assert not inst.find_messages("alice@example.test", mid)


def test_every_recipient_deleted_discards(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, data = message("del all", body="DELALLME")
    code, text = send(inst, ["alice@example.test", "bob@example.test"], data)
    assert code == 250, text
    qid = text.decode().split()[-1]
    inst.wait_log(qid, "every recipient removed by a filter", since=mark)
    inst.wait_settled(mark)
    assert qid not in inst.queue_files("incoming") + inst.queue_files("hold")
    for who in ("alice", "bob"):
        assert not inst.find_messages(f"{who}@example.test", mid)


def test_too_many_envelope_changes_is_a_filter_failure(env):
    inst, _ = env
    mark = inst.log_mark()
    mid, data = message("many rcpts", body="MANYRCPTS")
    code, text = send(inst, ["alice@example.test"], data)
    assert code == 451 and b"4.7.1" in text, (code, text)
    inst.wait_log("too many envelope changes", since=mark)
    inst.wait_settled(mark)
    assert not inst.find_messages("alice@example.test", mid)


def test_envelope_change_not_negotiated_is_refused():
    """A filter that did not ask for SMFIF_ADDRCPT at negotiation and sends one anyway
    broke the protocol: the message gets the default action (tempfail)."""
    port = reserve_port()
    flt = Milter(port, Behaviour(), actions=0x1FF & ~0x04)
    inst = start_instance(users=("erin@example.test", "bob@example.test"),
                          config={"smtpd_milters": f"inet:127.0.0.1:{port}",
                                  "milter_content_timeout": "3s"})
    try:
        mark = inst.log_mark()
        mid, data = message("not negotiated", body="ADDRCPTME")
        code, text = send(inst, ["erin@example.test"], data)
        assert code == 451, (code, text)
        inst.wait_log("a reply that this stage does not allow", since=mark)
        # a change it did ask for still works
        mid, data = message("negotiated", body="CHGFROMME")
        assert send(inst, ["erin@example.test"], data)[0] == 250
        got = inst.wait_message("erin@example.test", mid)
        assert got.startswith(b"Return-Path: <changed@remote.test>\n")
    finally:
        inst.cleanup()
        flt.stop()


@pytest.mark.parametrize("misbehave", ["garbage", "hang", "hang-negotiate", "hang-mail",
                                       "hang-rcpt", "close", "wrong", "huge", "down"])
def test_misbehaving_filter_tempfails_and_smtpd_lives(env, misbehave):
    inst, _ = env
    port = reserve_port()
    bad = None if misbehave == "down" else Milter(port, misbehave=misbehave)
    try:
        inst.config(smtpd_milters=f"inet:127.0.0.1:{port}")
        inst.reload(daemons=("smtpd",))
        mark = inst.log_mark()
        mid, data = message(f"misbehave {misbehave}")
        start = time.monotonic()
        code, text = send(inst, ["bob@example.test"], data)
        assert code == 451 and b"4.7.1" in text, (code, text)
        assert time.monotonic() - start < 20
        inst.wait_log(f"milter inet:127.0.0.1:{port}", since=mark)
        if misbehave.startswith("hang"):        # each stage's own timeout ended it
            inst.wait_log(f"milter inet:127.0.0.1:{port}", "timeout", since=mark)
        inst.wait_settled(mark)
        assert not inst.find_messages("bob@example.test", mid)
        # smtpd still answers, and without the bad filter mail flows again
        inst.config(smtpd_milters="")
        inst.reload(daemons=("smtpd",))
        assert send(inst, ["bob@example.test"], data)[0] == 250
        inst.wait_message("bob@example.test", mid)
        assert "panic" not in inst.log_since(mark) and "fatal" not in inst.log_since(mark)
    finally:
        if bad:
            bad.stop()
        inst.config(smtpd_milters=f"inet:127.0.0.1:{env[1].port}")
        inst.reload(daemons=("smtpd",))


@pytest.mark.parametrize("misbehave", ["close", "down"])
def test_default_accept_passes_the_message(misbehave):
    port = reserve_port()
    bad = None if misbehave == "down" else Milter(port, misbehave=misbehave)
    inst = start_instance(users=("carol@example.test",),
                          config={"smtpd_milters": f"inet:127.0.0.1:{port}",
                                  "milter_default_action": "accept",
                                  "milter_content_timeout": "3s"})
    try:
        mid, data = message(f"accept when {misbehave}")
        assert send(inst, ["carol@example.test"], data)[0] == 250
        got = inst.wait_message("carol@example.test", mid)
        assert b"X-Test-Milter" not in got
    finally:
        inst.cleanup()
        if bad:
            bad.stop()


def test_unix_socket_filter_and_plain_reject():
    """unix:PATH, relative to the queue directory (smtpd is chrooted there, as
    Postfix's is); a plain SMFIR_REJECT (no text) is answered 550 5.7.1; a filter
    that accepts at RCPT is not asked about the content."""
    inst = start_instance(users=("dave@example.test", "erin@example.test"), start=False)
    os.makedirs(os.path.join(inst.queue_dir(), "milter"), exist_ok=True)
    path = os.path.join(inst.queue_dir(), "milter", "test.sock")

    def behaviour(stage, info):
        if stage == "rcpt" and "erin@" in info["args"][0]:
            return [ACCEPT]
        if stage == "eom" and b"PLAINREJECT" in info["body"]:
            return [REJECT]
        return None
    flt = Milter(path, behaviour)
    try:
        inst.config(smtpd_milters="unix:milter/test.sock", milter_content_timeout="3s")
        inst.start()
        mark = inst.log_mark()
        mid, data = message("plain reject", body="PLAINREJECT")
        code, text = send(inst, ["dave@example.test"], data)
        assert code == 550 and text.startswith(b"5.7.1"), (code, text)
        inst.wait_log("reject: DATA", "5.7.1", since=mark)
        mid, data = message("through unix", body="hello")
        assert send(inst, ["dave@example.test"], data)[0] == 250
        inst.wait_message("dave@example.test", mid)
        # accepted at RCPT: the rest of this message is not shown to the filter
        seen = len(flt.messages)
        mid, data = message("accepted early", body="PLAINREJECT")
        assert send(inst, ["erin@example.test"], data)[0] == 250
        inst.wait_message("erin@example.test", mid)
        assert len(flt.messages) == seen
    finally:
        inst.cleanup()
        flt.stop()


def test_bad_milter_name_is_refused():
    inst = start_instance(start=False)
    try:
        inst.config(smtpd_milters="tcp:127.0.0.1:1")
        p = inst.run("check", check=False)
        assert p.returncode != 0 and "smtpd_milters" in p.stdout + p.stderr
    finally:
        inst.cleanup()


def test_content_checks_run_before_the_milters():
    """header_checks come first: the filter sees their PREPEND, and a message they
    reject never reaches the filter's end of message."""
    port = reserve_port()
    flt = Milter(port, Behaviour())
    inst = start_instance(users=("dave@example.test",), start=False,
                          config={"smtpd_milters": f"inet:127.0.0.1:{port}",
                                  "milter_content_timeout": "3s"})
    try:
        table = inst.map_path("header_checks.pcre")
        with open(table, "w") as f:
            f.write("/^Subject: .*PREPENDME/ PREPEND X-Checked: yes\n"
                    "/^Subject: .*REJECTBYCHECK/ REJECT refused by a header check\n")
        inst.config(header_checks=f"pcre:{table}")
        inst.start()
        mid, data = message("please PREPENDME")
        assert send(inst, ["dave@example.test"], data)[0] == 250
        got = inst.wait_message("dave@example.test", mid)
        head = got.split(b"\n\n", 1)[0]
        assert b"X-Checked: yes" in head and b"X-Test-Milter: seen" in head
        seen = [m for m in flt.messages if any(mid in v for _, v in m["headers"])][-1]
        assert ("X-Checked", "yes") in [(n, v.strip()) for n, v in seen["headers"]]

        mid2, data2 = message("REJECTBYCHECK now")
        code, text = send(inst, ["dave@example.test"], data2)
        assert code == 550 and b"refused by a header check" in text
        assert not [m for m in flt.messages if any(mid2 in v for _, v in m["headers"])]
    finally:
        inst.cleanup()
        flt.stop()

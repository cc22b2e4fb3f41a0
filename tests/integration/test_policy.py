"""Policy at the door (smtpd(8) POLICY): DNS blocklists through a loopback DNS server
(weights, threshold, the TXT reason, a list that fails, the cache), unknown sender
domains, non-FQDN HELO/sender/recipient, and the access tables (cdb: and pcre:) with
each action; pcre: tables against a pattern that would backtrack for ever, and a
broken pattern refused by the configuration check with file:line."""

import base64
import os
import re
import smtplib
import time

import pytest

from conftest import start_instance
from dnsserver import ZoneServer

ALICE = "alice@example.test"

ZONE = """
$ORIGIN test.
1.0.0.127.bl      60 IN A   127.0.0.2
1.0.0.127.bl      60 IN TXT "listed: see http://bl.test/lookup"
2.0.0.127.bl      60 IN A   127.0.0.12
2.0.0.127.small   60 IN A   127.0.0.2
3.0.0.127.bl      60 IN A   127.0.0.3
3.0.0.127.white   60 IN A   127.0.0.5
4.0.0.127.small   60 IN A   127.0.0.2
4.0.0.127.small2  60 IN A   127.0.0.2
4.0.0.127.small3  60 IN A   127.0.0.2
sender            60 IN MX  10 mx.sender
mx.sender         60 IN A   192.0.2.1
addronly          60 IN A   192.0.2.2
nullmx            60 IN MX  0 .
"""

SERVFAIL = ("1.0.0.127.down.test", "2.0.0.127.down.test", "3.0.0.127.down.test",
            "4.0.0.127.down.test", "5.0.0.127.down.test", "6.0.0.127.down.test",
            "tempfail.test")

CLIENT_CDB = "127.0.0.7 REJECT client seven is blocked\n127.0.0.8 OK\n"
HELO_PCRE = ("/^bad\\.helo\\.test$/ REJECT no such helo\n"
             "/\\.deferhelo\\.test$/ 421 4.7.0 come back later\n")
SENDER_CDB = """ok@cdb.test OK
reject@cdb.test REJECT sender says no
defer@cdb.test DEFER not now
hold@sender.test HOLD looked odd
discard@sender.test DISCARD silently
custom@cdb.test 550 5.7.9 custom refusal
custom4@cdb.test 451 4.7.2 custom tempfail
dunno@cdb.test DUNNO
bogus@cdb.test FROBNICATE
parent.cdb.test REJECT parent domain
spam@ REJECT localpart rule
"""
SENDER_PCRE = """/^ok@pcre\\.test$/ OK
/^reject@pcre\\.test$/ REJECT sender says no
/^defer@pcre\\.test$/ DEFER not now
/^hold@addronly\\.test$/ HOLD looked odd
/^discard@addronly\\.test$/ DISCARD silently
/^custom@pcre\\.test$/ 550 5.7.9 custom refusal
/^custom4@pcre\\.test$/ 451 4.7.2 custom tempfail
/^dunno@pcre\\.test$/ DUNNO
/^(.*)@capture\\.pcre\\.test$/ REJECT user $1 refused
/^(a+)+$/ REJECT catastrophic
"""
RCPT_CDB = "blocked@ REJECT that mailbox takes no mail\n"


@pytest.fixture(scope="module")
def dns():
    server = ZoneServer(ZONE, servfail=SERVFAIL)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mta(dns):
    inst = start_instance(users=(ALICE,), start=False,
                          config={"mynetworks": "192.0.2.0/24",
                                  "dns_servers": f"[127.0.0.1]:{dns.port}",
                                  "smtpd_reject_unknown_sender_domain": "yes",
                                  "smtpd_reject_non_fqdn_helo_hostname": "yes"})
    try:
        maps = os.path.join(inst.conf_dir, "maps")
        inst.write_map("client", CLIENT_CDB)
        inst.write_map("senders", SENDER_CDB)
        inst.write_map("rcpts", RCPT_CDB)
        with open(os.path.join(maps, "helo.pcre"), "w") as f:
            f.write(HELO_PCRE)
        with open(os.path.join(maps, "senders.pcre"), "w") as f:
            f.write(SENDER_PCRE)
        inst.config(**{
            "check_client_access": "cdb:" + inst.map_path("client"),
            "check_helo_access": "pcre:" + os.path.join(maps, "helo.pcre"),
            "check_sender_access": "cdb:" + inst.map_path("senders")
                                   + ", pcre:" + os.path.join(maps, "senders.pcre"),
            "check_recipient_access": "cdb:" + inst.map_path("rcpts"),
            "dnsbl_sites": "bl.test=127.0.0.[2..11]*3, small.test, small2.test, "
                           "small3.test*1, white.test=127.0.0.5*-5, down.test",
            "dnsbl_threshold": "3",
        })
        inst.start()
    except Exception:
        inst.cleanup()
        raise
    yield inst
    inst.cleanup()


def rcpt(inst, sender, rcpt=ALICE, client="127.0.0.9", helo="client.example.org"):
    """(code, text) of RCPT after EHLO helo and MAIL FROM sender, from client."""
    with smtplib.SMTP("127.0.0.1", inst.port("smtp"), timeout=30,
                      source_address=(client, 0)) as s:
        s.ehlo(helo)
        code, text = s.mail(sender)
        assert code == 250, (code, text)
        code, text = s.rcpt(rcpt)
        return code, text.decode()


def send(inst, sender, client="127.0.0.9", subject="policy test"):
    """Sends a message to ALICE; (code, text) of the end of DATA."""
    with smtplib.SMTP("127.0.0.1", inst.port("smtp"), timeout=30,
                      source_address=(client, 0)) as s:
        s.ehlo("client.example.org")
        assert s.mail(sender)[0] == 250
        code, text = s.rcpt(ALICE)
        assert code == 250, (code, text)
        code, text = s.data(f"From: <{sender}>\r\nSubject: {subject}\r\n\r\nbody\r\n")
        return code, text.decode()


# ---- DNS blocklists ----

def test_dnsbl_listed_client_refused_with_reason(mta, dns):
    mark = mta.log_mark()
    code, text = rcpt(mta, "x@sender.test", client="127.0.0.1")
    assert code == 554, text
    assert text.startswith("5.7.1 Service unavailable; client [127.0.0.1] blocked using "
                           "bl.test; listed: see http://bl.test/lookup"), text
    mta.wait_log(re.compile(r"NOQUEUE: reject: RCPT from \[127\.0\.0\.1\]: "
                            r"554 5\.7\.1 Service unavailable"), since=mark)
    # the lists were asked at once, and the failing list was logged, not counted
    assert mta.log_lines(re.compile(r"dnsbl down\.test: lookup of \[127\.0\.0\.1\] failed"),
                         since=mark)


def test_dnsbl_result_cached(mta, dns):
    """Each smtpd process asks a list once and answers later clients from its cache:
    a connection served by a process that already had the answer asks nothing (the
    failed list, down.test, is asked again; a clean answer is kept)."""
    listed = re.compile(r"smtpd\[(\d+)\]: dnsbl: \[127\.0\.0\.1\] listed by bl\.test")
    reject = re.compile(r"smtpd\[(\d+)\]: NOQUEUE: reject: RCPT from \[127\.0\.0\.1\]")

    def queries():
        return sum(1 for q in dns.queries if q[0].startswith("1.0.0.127.bl.test"))

    def pids(lines, pattern):
        return {pattern.search(line).group(1) for line in lines}

    knowing = pids(mta.log_lines(listed, since=0), listed)
    cached = 0
    for _ in range(12):         # processes are picked by the kernel: try until two hits
        mark, before = mta.log_mark(), queries()
        code, _ = rcpt(mta, "x@sender.test", client="127.0.0.1")
        assert code == 554
        pid = pids([mta.wait_log(reject, since=mark)], reject).pop()
        if pid in knowing:
            assert queries() == before, f"smtpd[{pid}] asked bl.test again"
            assert not mta.log_lines(listed, since=mark)
            cached += 1
            if cached == 2:
                break
        knowing |= pids(mta.log_lines(listed, since=mark), listed)
    assert cached == 2, "no process served 127.0.0.1 twice"


def test_dnsbl_below_threshold_and_filter(mta):
    # bl.test answers 127.0.0.12, outside its filter; small.test weighs 1: score 1 < 3
    code, text = rcpt(mta, "x@sender.test", client="127.0.0.2")
    assert code == 250, text


def test_dnsbl_negative_weight(mta):
    # bl.test 3, white.test -5: score -2
    code, text = rcpt(mta, "x@sender.test", client="127.0.0.3")
    assert code == 250, text


def test_dnsbl_weights_sum_to_threshold(mta):
    # small, small2, small3 weigh 1 each: 3 reaches the threshold
    code, text = rcpt(mta, "x@sender.test", client="127.0.0.4")
    assert code == 554, text
    assert "blocked using small.test" in text, text


def test_dnsbl_failure_never_rejects(mta):
    mark = mta.log_mark()
    code, text = rcpt(mta, "x@sender.test", client="127.0.0.5")
    assert code == 250, text
    mta.wait_log(re.compile(r"dnsbl down\.test: lookup of \[127\.0\.0\.5\] failed"), since=mark)


# ---- address checks ----

@pytest.mark.parametrize("sender,code,dsn", [
    ("x@sender.test", 250, "2.1.5"),
    ("x@addronly.test", 250, "2.1.5"),
    ("x@nowhere.test", 550, "5.1.8"),
    ("x@tempfail.test", 450, "4.1.8"),
    ("x@nullmx.test", 550, "5.7.27"),
    ("x@nodots", 504, "5.5.2"),
])
def test_sender_domain(mta, sender, code, dsn):
    c, text = rcpt(mta, sender)
    assert (c, text[:len(dsn)]) == (code, dsn), text
    if code == 504:
        assert "Sender address rejected: need fully-qualified address" in text


def test_non_fqdn_helo(mta):
    c, text = rcpt(mta, "x@sender.test", helo="localhost")
    assert c == 504 and text.startswith("5.5.2 <localhost>: Helo command rejected: "
                                        "need fully-qualified hostname"), text
    c, text = rcpt(mta, "x@sender.test", helo="[127.0.0.9]")
    assert c == 250, text


def test_non_fqdn_recipient(mta):
    c, text = rcpt(mta, "x@sender.test", rcpt="someone@nodots")
    assert c == 504 and "Recipient address rejected: need fully-qualified address" in text


def test_client_ok_ends_the_client_stage_only(mta):
    # 127.0.0.8 is OK in the client table: no blocklist, but the HELO is still checked
    c, text = rcpt(mta, "x@nodots", client="127.0.0.8", helo="localhost")
    assert c == 504, text      # OK ends the client stage only, as in Postfix
    assert "Helo command rejected" in text


# ---- access tables ----

def test_client_access_reject(mta):
    c, text = rcpt(mta, "x@sender.test", client="127.0.0.7")
    assert c == 554 and text == ("5.7.1 [127.0.0.7]: Client host rejected: "
                                 "client seven is blocked"), text


def test_helo_access(mta):
    c, text = rcpt(mta, "x@sender.test", helo="bad.helo.test")
    assert c == 554 and "<bad.helo.test>: Helo command rejected: no such helo" in text
    c, text = rcpt(mta, "x@sender.test", helo="a.deferhelo.test")
    assert c == 421 and text.startswith("4.7.0 <a.deferhelo.test>: Helo command rejected: "
                                        "come back later"), text


@pytest.mark.parametrize("kind", ["cdb", "pcre"])
@pytest.mark.parametrize("local,code,start", [
    ("ok", 250, "2.1.5"),
    ("dunno", 250, "2.1.5"),
    ("reject", 554, "5.7.1 <reject@{d}>: Sender address rejected: sender says no"),
    ("defer", 450, "4.7.1 <defer@{d}>: Sender address rejected: not now"),
    ("custom", 550, "5.7.9 <custom@{d}>: Sender address rejected: custom refusal"),
    ("custom4", 451, "4.7.2 <custom4@{d}>: Sender address rejected: custom tempfail"),
])
def test_sender_access_replies(mta, kind, local, code, start):
    d = f"{kind}.test"
    # cdb.test and pcre.test have no DNS: OK and DUNNO are told apart by that
    c, text = rcpt(mta, f"{local}@{d}")
    if local == "dunno":
        code, start = 550, "5.1.8"
    assert c == code and text.startswith(start.format(d=d)), (c, text)


def test_sender_access_lookup_order(mta):
    c, text = rcpt(mta, "x@sub.parent.cdb.test")
    assert c == 554 and "parent domain" in text, text
    c, text = rcpt(mta, "spam@sender.test")
    assert c == 554 and "localpart rule" in text, text
    c, text = rcpt(mta, "joe@capture.pcre.test")
    assert c == 554 and "user joe refused" in text, text


def test_unknown_action_is_a_config_error(mta):
    mark = mta.log_mark()
    c, text = rcpt(mta, "bogus@cdb.test")
    assert c == 451 and text.startswith("4.3.5"), text
    mta.wait_log("unknown action \"FROBNICATE\"", since=mark)


def test_recipient_access_localpart(mta):
    mta.add_user("blocked@example.test")
    c, text = rcpt(mta, "x@sender.test", rcpt="blocked@example.test")
    assert c == 554 and "that mailbox takes no mail" in text, text


# HOLD goes on with the checks (the sender domain must exist); DISCARD ends them
KIND_DOMAIN = {"cdb": "sender", "pcre": "addronly"}


@pytest.mark.parametrize("kind", ["cdb", "pcre"])
def test_hold(mta, kind):
    mark = mta.log_mark()
    kind = KIND_DOMAIN[kind]
    code, text = send(mta, f"hold@{kind}.test")
    assert code == 250, text
    qid = text.split()[-1]
    mta.wait_log(re.compile(rf"{qid}: hold: RCPT from \[127\.0\.0\.9\]: "
                            rf"<hold@{kind}\.test>: looked odd"), since=mark)
    assert os.path.exists(os.path.join(mta.queue_dir(), "hold", qid))


@pytest.mark.parametrize("kind", ["cdb", "pcre"])
def test_discard(mta, kind):
    mark = mta.log_mark()
    kind = KIND_DOMAIN[kind]
    subject = f"discard {kind} {time.time()}"
    code, text = send(mta, f"discard@{kind}.test", subject=subject)
    assert code == 250, text
    qid = text.split()[-1]
    mta.wait_log(re.compile(rf"{qid}: discard: RCPT from \[127\.0\.0\.9\]: <discard@{kind}\.test>: "
                 "silently"), since=mark)
    for sub in ("incoming", "active", "deferred", "hold"):
        assert not os.path.exists(os.path.join(mta.queue_dir(), sub, qid))
    assert not any(subject.encode() in m for m in mta.messages(ALICE))


def test_catastrophic_pattern_is_bounded(mta):
    mark = mta.log_mark()
    t0 = time.monotonic()
    c, text = rcpt(mta, "a" * 60 + "@sender.test")
    assert time.monotonic() - t0 < 20
    assert c == 451 and text.startswith("4.3.0"), text
    mta.wait_log(re.compile(r"senders\.pcre:10: .*(limit|depth)"), since=mark)


def test_broken_pattern_refused_by_check(tmp_path):
    inst = start_instance(start=False)
    try:
        path = os.path.join(inst.conf_dir, "maps", "broken.pcre")
        with open(path, "w") as f:
            f.write("/fine/ OK\n/(unclosed/ REJECT\n")
        inst.config(check_sender_access="pcre:" + path)
        r = inst.run("check", check=False)
        assert r.returncode != 0
        assert "broken.pcre:2:" in (r.stdout + r.stderr), r.stdout + r.stderr
    finally:
        inst.cleanup()


# ---- header_checks, mime_header_checks, body_checks ----

HEADER_PCRE = r"""/^Subject: reject me/ REJECT header says no
/^Subject: discard me/ DISCARD dropped
/^Subject: hold me/ HOLD held for review
/^Subject: warn me/ WARN looked at
/^X-Drop:/ IGNORE
/^X-Old: (.*)/ REPLACE X-New: was $1
/^Subject: tag me/ PREPEND X-Tag: tagged
/^Subject: fine/ OK
/^Subject: redirect me/ REDIRECT redir@example.test
/^Subject: bad redirect/ REDIRECT not-an-address
"""
MIME_PCRE = r"""/^Content-(Type|Disposition):.*name="?[^"]*\.exe"?/ REJECT executables refused
"""
BODY_PCRE = r"""/secret-phrase/ REJECT body says no
/^(a+)+$/ WARN catastrophic
"""
BODY_CDB = "forbiddenword REJECT cdb body says no\n"
REDIR = "redir@example.test"


@pytest.fixture(scope="module")
def cmta():
    inst = start_instance(users=(ALICE, REDIR), start=False,
                          config={"mynetworks": "192.0.2.0/24"})
    try:
        maps = os.path.join(inst.conf_dir, "maps")
        for name, text in (("header.pcre", HEADER_PCRE), ("mime.pcre", MIME_PCRE),
                           ("body.pcre", BODY_PCRE)):
            with open(os.path.join(maps, name), "w") as f:
                f.write(text)
        inst.write_map("body", BODY_CDB)
        inst.config(header_checks="pcre:" + os.path.join(maps, "header.pcre"),
                    mime_header_checks="pcre:" + os.path.join(maps, "mime.pcre"),
                    body_checks="pcre:" + os.path.join(maps, "body.pcre")
                                + ", cdb:" + inst.map_path("body"))
        inst.start()
    except Exception:
        inst.cleanup()
        raise
    yield inst
    inst.cleanup()


def deliver(inst, msg, sender="sender@example.org"):
    """(code, text, queue id) at the end of DATA for msg (str, \\n line ends)."""
    with inst.smtp() as s:
        s.ehlo("client.example.org")
        assert s.mail(sender)[0] == 250
        assert s.rcpt(ALICE)[0] == 250
        code, text = s.data(msg.replace("\n", "\r\n").encode())
        text = text.decode()
        return code, text, text.split()[-1] if code == 250 else None


def test_header_reject(cmta):
    mark = cmta.log_mark()
    code, text, _ = deliver(cmta, "Subject: reject me now\n\nbody\n")
    assert (code, text) == (550, "5.7.1 header says no")
    cmta.wait_log(re.compile(r": reject: header Subject: reject me now from \[127\.0\.0\.1\]; "
                             r"from=<sender@example\.org> to=<alice@example\.test> proto=ESMTP "
                             r"helo=<client\.example\.org>: 5\.7\.1 header says no"), since=mark)


def test_header_discard(cmta):
    mark = cmta.log_mark()
    code, _, qid = deliver(cmta, "Subject: discard me\n\nbody\n")
    assert code == 250
    cmta.wait_log(re.compile(rf"{qid}: discard: header Subject: discard me from .*: dropped"),
                  since=mark)
    for sub in ("incoming", "active", "deferred", "hold"):
        assert not os.path.exists(os.path.join(cmta.queue_dir(), sub, qid))


def test_header_hold(cmta):
    mark = cmta.log_mark()
    code, _, qid = deliver(cmta, "Subject: hold me\n\nbody\n")
    assert code == 250
    cmta.wait_log(re.compile(rf"{qid}: hold: header Subject: hold me from .*: held for review"),
                  since=mark)
    assert os.path.exists(os.path.join(cmta.queue_dir(), "hold", qid))


def test_header_warn_ignore_replace_prepend(cmta):
    mark = cmta.log_mark()
    mid = f"<edit.{time.time()}@example.org>"
    code, _, qid = deliver(cmta, f"Message-ID: {mid}\nSubject: warn me\nX-Drop: gone\n"
                                 "X-Drop: also\n  folded\nX-Old: value\n\nbody\n")
    assert code == 250
    cmta.wait_log(re.compile(rf"{qid}: warning: header Subject: warn me from .*: looked at"),
                  since=mark)
    msg = cmta.wait_message(ALICE, message_id=mid)
    assert b"X-Drop" not in msg and b"folded" not in msg
    assert b"X-New: was value\n" in msg and b"X-Old" not in msg
    mid2 = f"<tag.{time.time()}@example.org>"
    code, _, _ = deliver(cmta, f"Message-ID: {mid2}\nSubject: tag me\n\nbody\n")
    msg = cmta.wait_message(ALICE, message_id=mid2)
    assert b"X-Tag: tagged\nSubject: tag me\n" in msg.replace(b"\r\n", b"\n")


def test_header_redirect_replaces_every_recipient(cmta):
    mark = cmta.log_mark()
    mid = f"<redir.{time.time()}@example.org>"
    with cmta.smtp() as s:
        s.ehlo("client.example.org")
        assert s.mail("sender@example.org")[0] == 250
        assert s.rcpt(ALICE)[0] == 250
        assert s.rcpt("postmaster@example.test")[0] == 250
        code, text = s.data(f"Message-ID: {mid}\r\nSubject: redirect me\r\n\r\nbody\r\n"
                            .encode())
    assert code == 250
    qid = text.decode().split()[-1]
    cmta.wait_log(re.compile(rf"{qid}: redirect: header Subject: redirect me from .*: "
                             r"redir@example\.test"), since=mark)
    cmta.wait_message(REDIR, message_id=mid)
    cmta.wait_settled(mark)
    assert not cmta.find_messages(ALICE, mid)
    assert len(cmta.find_messages(REDIR, mid)) == 1
    assert f"{qid}: to=<{ALICE}>" not in cmta.log_since(mark)


def test_bad_redirect_is_logged_and_ignored(cmta):
    mark = cmta.log_mark()
    mid = f"<badredir.{time.time()}@example.org>"
    code, _, qid = deliver(cmta, f"Message-ID: {mid}\nSubject: bad redirect\n\nbody\n")
    assert code == 250
    cmta.wait_log(qid, 'unsupported action "REDIRECT not-an-address"', since=mark)
    cmta.wait_message(ALICE, message_id=mid)


def test_header_ok_and_body_not_header(cmta):
    # a body line that looks like a header is not a header
    mid = f"<ok.{time.time()}@example.org>"
    code, _, _ = deliver(cmta, f"Message-ID: {mid}\nSubject: fine\n\nSubject: reject me\n")
    assert code == 250
    cmta.wait_message(ALICE, message_id=mid)


MULTIPART = """MIME-Version: 1.0
Subject: parts
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

hello
--b1
{part}
--b1--
"""


def test_mime_header_reject(cmta):
    part = ('Content-Type: application/octet-stream; name="run.exe"\n'
            "Content-Transfer-Encoding: base64\n\nAAAA")
    code, text, _ = deliver(cmta, MULTIPART.format(part=part))
    assert (code, text) == (550, "5.7.1 executables refused")


def test_nested_header_checks_default_to_header_checks(cmta):
    """An attached message's own fields go through nested_header_checks, which is
    header_checks' tables unless set (as in Postfix)."""
    part = ("Content-Type: message/rfc822\n\nFrom: someone@example.org\n"
            "Subject: reject me too\n\ninner body")
    code, text, _ = deliver(cmta, MULTIPART.format(part=part))
    assert (code, text) == (550, "5.7.1 header says no")
    part = ("Content-Type: message/rfc822\n\nFrom: someone@example.org\n"
            "Subject: an innocent one\n\ninner body")
    assert deliver(cmta, MULTIPART.format(part=part))[0] == 250


def test_mime_header_checks_default_to_header_checks(tmp_path):
    """With header_checks alone, an attachment-name rule kept there still fires on a
    part's MIME header; setting mime_header_checks empty turns that off."""
    inst = start_instance(users=(ALICE,), start=False, config={"mynetworks": "192.0.2.0/24"})
    try:
        path = os.path.join(inst.conf_dir, "maps", "header.pcre")
        with open(path, "w") as f:
            f.write(MIME_PCRE)
        inst.config(header_checks="pcre:" + path)
        inst.start()
        out = inst.run("config", "-x", "mime_header_checks", "nested_header_checks").stdout
        assert f"mime_header_checks = pcre:{path}" in out, out
        part = ('Content-Type: application/octet-stream; name="run.exe"\n'
                "Content-Transfer-Encoding: base64\n\nAAAA")
        code, text, _ = deliver(inst, MULTIPART.format(part=part))
        assert (code, text) == (550, "5.7.1 executables refused")
        inst.config(mime_header_checks="")
        inst.reload(daemons=("smtpd",))
        assert deliver(inst, MULTIPART.format(part=part))[0] == 250
    finally:
        inst.cleanup()


def test_body_reject_after_base64_decoding(cmta):
    encoded = base64.b64encode(b"the secret-phrase is here\n").decode()
    assert "secret" not in encoded
    part = f"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{encoded}"
    mark = cmta.log_mark()
    code, text, _ = deliver(cmta, MULTIPART.format(part=part))
    assert (code, text) == (550, "5.7.1 body says no")
    cmta.wait_log(re.compile(r": reject: body the secret-phrase is here from \[127\.0\.0\.1\]"),
                  since=mark)


def test_body_reject_after_qp_decoding(cmta):
    part = ("Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
            "the secret=2Dphr=\nase\n")
    code, text, _ = deliver(cmta, MULTIPART.format(part=part))
    assert (code, text) == (550, "5.7.1 body says no")


def test_body_cdb(cmta):
    code, text, _ = deliver(cmta, "Subject: x\n\nForbiddenWord\n")
    assert (code, text) == (550, "5.7.1 cdb body says no")


def test_body_catastrophic_pattern_logged_not_hanging(cmta):
    mark = cmta.log_mark()
    mid = f"<cat.{time.time()}@example.org>"
    t0 = time.monotonic()
    code, _, _ = deliver(cmta, f"Message-ID: {mid}\nSubject: x\n\n" + "a" * 900 + "!\n")
    assert time.monotonic() - t0 < 20
    assert code == 250
    cmta.wait_log(re.compile(r"body check: .*body\.pcre:2: .*limit"), since=mark)
    cmta.wait_message(ALICE, message_id=mid)


def test_broken_header_checks_refused_at_start(tmp_path):
    inst = start_instance(start=False)
    try:
        path = os.path.join(inst.conf_dir, "maps", "hdr.pcre")
        with open(path, "w") as f:
            f.write("/^Subject: ok/ WARN\n/[unclosed/ REJECT\n")
        inst.config(header_checks="pcre:" + path)
        r = inst.run("check", check=False)
        assert r.returncode != 0 and "hdr.pcre:2:" in r.stdout + r.stderr
    finally:
        inst.cleanup()


@pytest.mark.parametrize("key", ["header_checks", "mime_header_checks", "body_checks"])
def test_broken_pattern_refused_at_reload(key):
    """A table edited into a broken pattern while the system runs: reload names its
    file:line and refuses, the running system keeps going; fixed, it reloads."""
    inst = start_instance(users=(ALICE,), start=False)
    try:
        path = os.path.join(inst.conf_dir, "maps", "checks.pcre")
        with open(path, "w") as f:
            f.write("/^Subject: no/ REJECT no\n")
        inst.config(**{key: "pcre:" + path})
        inst.start()
        with open(path, "w") as f:
            f.write("/^Subject: no/ REJECT no\n/ok/ WARN\n/(unclosed/ REJECT\n")
        r = inst.run("reload", check=False)
        assert r.returncode != 0
        assert "checks.pcre:3:" in r.stdout + r.stderr and "not reloaded" in r.stderr
        with open(path, "w") as f:
            f.write("/^Subject: no/ REJECT no\n")
        inst.run("reload")
        mid = f"<after.reload.{time.time()}@example.org>"
        inst.submit("sender@example.org", [ALICE],
                    f"Message-ID: {mid}\r\nSubject: yes\r\n\r\nbody\r\n".encode())
        inst.wait_message(ALICE, message_id=mid)
    finally:
        inst.cleanup()


BODY_ACTIONS = r"""/^discard this body/ DISCARD body discard
/^hold this body/ HOLD body hold
/^warn this body/ WARN body warn
/^redirect this body/ REDIRECT redir@example.test
"""


def test_body_checks_actions():
    """DISCARD, HOLD, WARN and REDIRECT from body_checks, as from header_checks."""
    inst = start_instance(users=(ALICE, REDIR), start=False)
    try:
        path = os.path.join(inst.conf_dir, "maps", "body.pcre")
        with open(path, "w") as f:
            f.write(BODY_ACTIONS)
        inst.config(body_checks="pcre:" + path)
        inst.start()
        mark = inst.log_mark()
        code, _, qid = deliver(inst, "Subject: a\n\ndiscard this body\n")
        assert code == 250
        inst.wait_log(qid, "discard: body discard this body", since=mark)
        code, _, qid2 = deliver(inst, "Subject: b\n\nhold this body\n")
        inst.wait_log(qid2, "hold: body hold this body", since=mark)
        assert qid2 in inst.queue_files("hold")
        mid = f"<bw.{time.time()}@example.org>"
        code, _, qid3 = deliver(inst, f"Message-ID: {mid}\nSubject: c\n\nwarn this body\n")
        inst.wait_log(qid3, "warning: body warn this body", since=mark)
        inst.wait_message(ALICE, message_id=mid)
        mid = f"<br.{time.time()}@example.org>"
        code, _, qid4 = deliver(inst, f"Message-ID: {mid}\nSubject: d\n\nredirect this body\n")
        inst.wait_log(qid4, "redirect: body redirect this body", since=mark)
        inst.wait_message(REDIR, message_id=mid)
        inst.wait_settled(mark)
        assert not inst.find_messages(ALICE, mid)
        for sub in ("incoming", "active", "deferred"):
            assert qid not in inst.queue_files(sub)
    finally:
        inst.cleanup()


BODY_EDITS = r"""/^drop this/ IGNORE
/^old line (.*)/ REPLACE .new line $1
/^before me/ PREPEND inserted line
"""

EDITED = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

keep one
drop this line
old line here
before me
keep two
drop this too, the last line of the part
--b1
Content-Type: application/octet-stream

drop this attachment line
kept attachment line
--b1--
"""


def test_body_checks_edits():
    """IGNORE, REPLACE and PREPEND from body_checks edit body lines as they are in the
    message; a line matched after base64 decoding is left alone, with a warning."""
    inst = start_instance(users=(ALICE,), start=False)
    try:
        path = os.path.join(inst.conf_dir, "maps", "body.pcre")
        with open(path, "w") as f:
            f.write(BODY_EDITS)
        inst.config(body_checks="pcre:" + path)
        inst.start()
        mark = inst.log_mark()
        mid = f"<be.{time.time()}@example.org>"
        code, _, qid = deliver(inst, f"Message-ID: {mid}\nSubject: edits\n" + EDITED)
        assert code == 250
        inst.wait_log(qid, "replace: body old line here from", ": .new line here",
                      since=mark)
        inst.wait_log(qid, "prepend: body before me from", ": inserted line", since=mark)
        msg = inst.wait_message(ALICE, message_id=mid).replace(b"\r\n", b"\n")
        body = msg.split(b"\n\n", 1)[1]
        assert body == (b"--b1\n"
                        b"Content-Type: text/plain; charset=us-ascii\n"
                        b"\n"
                        b"keep one\n"
                        b".new line here\n"
                        b"inserted line\n"
                        b"before me\n"
                        b"keep two\n"
                        b"--b1\n"
                        b"Content-Type: application/octet-stream\n"
                        b"\n"
                        b"kept attachment line\n"
                        b"--b1--\n")
        assert b"Subject: edits\nMIME-Version: 1.0\n" in msg

        encoded = base64.b64encode(b"drop this decoded line\n").decode()
        assert "drop" not in encoded
        sent = ("MIME-Version: 1.0\n"
                'Content-Type: multipart/mixed; boundary="b2"\n\n'
                "--b2\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
                f"{encoded}\n--b2--\n")
        mid = f"<bd.{time.time()}@example.org>"
        code, _, qid = deliver(inst, f"Message-ID: {mid}\nSubject: decoded\n" + sent)
        assert code == 250
        inst.wait_log(qid, "warning: ", f"{qid}: body IGNORE not applied: "
                      "the line is decoded or in pieces", since=mark)
        msg = inst.wait_message(ALICE, message_id=mid).replace(b"\r\n", b"\n")
        assert msg.endswith(f"Subject: decoded\n{sent}".encode())
    finally:
        inst.cleanup()


def test_bad_dnsbl_item_refused_by_check():
    inst = start_instance(start=False)
    try:
        inst.config(dnsbl_sites="good.example=127.0.0.[2..11]*3, bad.example=127.0.0.[9..2]")
        r = inst.run("check", check=False)
        assert r.returncode != 0
        assert 'bad item "bad.example=127.0.0.[9..2]"' in r.stdout + r.stderr
    finally:
        inst.cleanup()

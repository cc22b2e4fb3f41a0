"""SMTP AUTH and the submission services: AUTH only under TLS, submission (587) and
submissions (465) requiring authentication, relaying for authenticated clients only,
smtpd_sender_login_maps, and the answers to a wrong password or a broken exchange."""

import base64
import os
import smtplib
import ssl
import time

import pytest

from conftest import start_instance

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "secret"
REMOTE = "someone@remote.example"


@pytest.fixture(scope="module")
def mta():
    inst = start_instance(users=(ALICE, BOB), start=False,
                          config={"mynetworks": "192.0.2.0/24",
                                  "smtpd_sasl_auth_enable": "yes"})
    try:
        inst.write_map("senders", f"{ALICE} {ALICE}, {BOB}\n{BOB} {BOB}\n")
        inst.config(smtpd_sender_login_maps="cdb:" + inst.map_path("senders"))
        inst.start()
    except Exception:
        inst.cleanup()
        raise
    yield inst
    inst.cleanup()


def ctx(inst):
    c = ssl.create_default_context(cafile=os.path.join(inst.conf_dir, "tls", "cert.pem"))
    c.check_hostname = False
    return c


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def submission(inst, tls=True, login=None):
    s = smtplib.SMTP("127.0.0.1", inst.port("submission"), timeout=30)
    s.ehlo("client.example.org")
    if tls:
        s.starttls(context=ctx(inst))
        s.ehlo("client.example.org")
    if login:
        s.login(login, PASSWORD)
    return s


def test_auth_refused_without_tls_on_25(mta):
    with mta.smtp() as s:
        s.ehlo("client.example.org")
        assert not s.has_extn("auth")
        code, msg = s.docmd("AUTH", "PLAIN " + plain(ALICE, PASSWORD))
        assert code == 503, msg


def test_submission_requires_starttls(mta):
    with submission(mta, tls=False) as s:
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")
        code, msg = s.docmd("AUTH", "PLAIN " + plain(ALICE, PASSWORD))
        assert code == 530 and b"STARTTLS" in msg, msg
        code, msg = s.docmd("MAIL", f"FROM:<{ALICE}>")
        assert code == 530 and b"5.7.0" in msg, msg
        assert s.noop()[0] == 250


def test_submission_mail_before_auth(mta):
    with submission(mta) as s:
        assert s.has_extn("auth")
        code, msg = s.docmd("MAIL", f"FROM:<{ALICE}>")
        assert (code, msg[:5]) == (530, b"5.7.0"), msg
        assert b"Authentication required" in msg


def test_submissions_mail_before_auth(mta):
    with smtplib.SMTP_SSL("127.0.0.1", mta.port("smtps"), timeout=30, context=ctx(mta)) as s:
        s.ehlo("client.example.org")
        code, msg = s.docmd("MAIL", f"FROM:<{ALICE}>")
        assert code == 530, msg
        s.login(ALICE, PASSWORD)
        assert s.docmd("MAIL", f"FROM:<{ALICE}>")[0] == 250


def test_relay_refused_without_auth(mta):
    with mta.smtp() as s:
        s.ehlo("client.example.org")
        s.starttls(context=ctx(mta))
        s.ehlo("client.example.org")
        assert s.docmd("MAIL", "FROM:<x@example.org>")[0] == 250
        code, msg = s.docmd("RCPT", f"TO:<{REMOTE}>")
        assert 500 <= code < 600, msg
        assert s.docmd("RCPT", f"TO:<{ALICE}>")[0] == 250


def test_relay_allowed_with_auth(mta):
    mark = mta.log_mark()
    for port in ("smtp", "submission"):
        s = smtplib.SMTP("127.0.0.1", mta.port(port), timeout=30)
        with s:
            s.ehlo("client.example.org")
            s.starttls(context=ctx(mta))
            s.ehlo("client.example.org")
            s.login(ALICE, PASSWORD)
            assert s.docmd("MAIL", f"FROM:<{ALICE}>")[0] == 250
            code, msg = s.docmd("RCPT", f"TO:<{REMOTE}>")
            assert code == 250, (port, msg)
            assert s.rset()[0] == 250
    mta.wait_log(f"sasl_method=PLAIN, sasl_username={ALICE}", since=mark)


def test_sender_login_map(mta):
    with submission(mta, login=ALICE) as s:
        code, msg = s.docmd("MAIL", f"FROM:<{BOB}>")
        assert code == 553, msg
        assert b"5.7.1" in msg and b"not owned by user " + ALICE.encode() in msg
        code, msg = s.docmd("MAIL", "FROM:<stranger@example.org>")
        assert code == 553, msg
        assert s.docmd("MAIL", f"FROM:<{ALICE}>")[0] == 250
        assert s.rset()[0] == 250
        mid = f"<owned.{time.time()}@example.test>"
        s.sendmail(ALICE, [BOB], f"Subject: owned\r\nMessage-ID: {mid}\r\n\r\nhello\r\n")
    with submission(mta, login=BOB) as s:
        # the map lets bob use alice's address as well as his own
        assert s.docmd("MAIL", f"FROM:<{ALICE}>")[0] == 250
        assert s.rset()[0] == 250
        assert s.docmd("MAIL", f"FROM:<{BOB}>")[0] == 250
    mta.wait_message(BOB, mid)


def test_wrong_password(mta):
    mark = mta.log_mark()
    with submission(mta) as s:
        t0 = time.monotonic()
        code, msg = s.docmd("AUTH", "PLAIN " + plain(ALICE, "wrong"))
        elapsed = time.monotonic() - t0
        assert code == 535 and b"5.7.8" in msg, msg
        assert elapsed >= 0.9, elapsed
        # the session goes on, and a right password still works
        s.login(ALICE, PASSWORD)
        assert s.docmd("MAIL", f"FROM:<{ALICE}>")[0] == 250
    mta.wait_log("SASL PLAIN authentication failed", since=mark)


def test_auth_login_exchange(mta):
    with submission(mta) as s:
        code, msg = s.docmd("AUTH", "LOGIN")
        assert code == 334 and base64.b64decode(msg) == b"Username:", msg
        code, msg = s.docmd(base64.b64encode(ALICE.encode()).decode())
        assert code == 334 and base64.b64decode(msg) == b"Password:", msg
        code, msg = s.docmd(base64.b64encode(PASSWORD.encode()).decode())
        assert code == 235 and b"2.7.0" in msg, msg
        code, msg = s.docmd("AUTH", "PLAIN " + plain(ALICE, PASSWORD))
        assert code == 503, msg                 # already authenticated


def test_auth_plain_without_initial_response(mta):
    with submission(mta) as s:
        code, msg = s.docmd("AUTH", "PLAIN")
        assert code == 334 and msg == b"", msg
        code, msg = s.docmd(plain(ALICE, PASSWORD))
        assert code == 235, msg


def test_auth_protocol_errors(mta):
    with submission(mta) as s:
        code, msg = s.docmd("AUTH", "CRAM-MD5")
        assert code == 504, msg
        code, msg = s.docmd("AUTH", "PLAIN not*base64")
        assert code == 501, msg
        code, msg = s.docmd("AUTH", "LOGIN")
        assert code == 334
        code, msg = s.docmd("*")
        assert code == 501 and b"5.7.0" in msg, msg
        code, msg = s.docmd("AUTH", "PLAIN =")        # empty response
        assert code in (501, 535), msg
        code, msg = s.docmd("AUTH", "PLAIN " + "A" * 20000)
        assert code in (500, 501), msg
        # still usable afterwards
        s.login(ALICE, PASSWORD)
        assert s.noop()[0] == 250

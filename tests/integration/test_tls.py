"""TLS in smtpd: STARTTLS on port 25 and TLS from the first byte on 465 (smtps), checked
with Python's ssl module, smtplib and swaks; the STARTTLS injection class; garbage
instead of a ClientHello; the Received: header's record of the TLS session."""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import warnings

import pytest

from conftest import start_instance
from instance import message_id_of

USER = "alice@example.test"
PASSWORD = "secret"


@pytest.fixture(scope="module")
def mta():
    inst = start_instance(users=(USER,), config={"mynetworks": "192.0.2.0/24",
                                                 "smtpd_sasl_auth_enable": "yes"})
    yield inst
    inst.cleanup()


def cert_file(inst):
    return os.path.join(inst.conf_dir, "tls", "cert.pem")


def context(inst, check_hostname=False):
    """Trusts the instance's self-signed certificate, and nothing else."""
    ctx = ssl.create_default_context(cafile=cert_file(inst))
    ctx.check_hostname = check_hostname
    return ctx


def msgid(subject):
    return f"<{subject}.{time.time()}@example.org>"


def message(subject, mid):
    return (f"From: sender@example.org\r\nTo: {USER}\r\nSubject: {subject}\r\n"
            f"Message-ID: {mid}\r\n\r\nbody of {subject}\r\n")


def read_reply(f):
    """One SMTP reply from a file-like object: list of lines (without CRLF)."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise AssertionError(f"connection closed after {lines!r}")
        line = line.decode().rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines


def test_ehlo_offers_starttls_and_hides_auth(mta):
    with mta.smtp() as s:
        code, _ = s.ehlo("client.example.org")
        assert code == 250
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")       # smtpd_tls_auth_only=yes
        s.starttls(context=context(mta))
        s.ehlo("client.example.org")
        assert not s.has_extn("starttls")
        assert s.has_extn("auth")
        assert "PLAIN" in s.esmtp_features["auth"].upper()
        code, msg = s.docmd("STARTTLS")
        assert code == 554, msg             # TLS already active


def test_starttls_delivers_and_received_records_tls(mta):
    with mta.smtp() as s:
        s.starttls(context=context(mta))
        s.ehlo("client.example.org")
        data = message("starttls-1", msgid("starttls-1"))
        s.sendmail("sender@example.org", [USER], data)
    m = mta.wait_message(USER, message_id_of(data.encode()))
    head = m.split(b"\n\n", 1)[0].decode()
    received = re.search(r"^Received:.*?(?=^\S)", head + "\nX:", re.M | re.S).group(0)
    assert "with ESMTPS" in received, received
    assert re.search(r"\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)", received), received


def test_certificate_verifies_for_hostname(mta):
    ctx = context(mta, check_hostname=True)
    with socket.create_connection(("127.0.0.1", mta.port("smtp")), timeout=10) as raw:
        f = raw.makefile("rb")
        assert read_reply(f)[0].startswith("220")
        raw.sendall(b"EHLO client.example.org\r\n")
        read_reply(f)
        raw.sendall(b"STARTTLS\r\n")
        assert read_reply(f)[0].startswith("220 2.0.0")
        with ctx.wrap_socket(raw, server_hostname=mta.hostname) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"QUIT\r\n")
            assert tls.recv(100).startswith(b"221")


def test_smtps_wrapper_mode(mta):
    with smtplib.SMTP_SSL("127.0.0.1", mta.port("smtps"), timeout=30,
                          context=context(mta)) as s:
        s.ehlo("client.example.org")
        assert not s.has_extn("starttls")
        assert s.has_extn("auth")
        s.login(USER, PASSWORD)
        data = message("smtps-1", msgid("smtps-1"))
        s.sendmail(USER, [USER], data)
    m = mta.wait_message(USER, message_id_of(data.encode()))
    assert b"with ESMTPSA" in m


def test_old_protocols_refused(mta):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this Python's OpenSSL cannot offer TLS 1.1")
    with socket.create_connection(("127.0.0.1", mta.port("smtps")), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw).do_handshake()


def swaks(inst, *args, port="smtp"):
    return subprocess.run(["swaks", "--server", f"127.0.0.1:{inst.port(port)}",
                           "--to", USER, "--helo", "client.example.org",
                           "--timeout", "30", *args],
                          capture_output=True, text=True, timeout=90)


needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")


@needs_swaks
def test_swaks_tls(mta):
    mid = msgid("swaks-tls")
    p = swaks(mta, "--tls", "--from", "sender@example.org", "--header", "Subject: swaks-tls",
              "--header", f"Message-Id: {mid}")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "TLS started" in p.stdout, p.stdout
    mta.wait_message(USER, mid)


@needs_swaks
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_tls_auth(mta, mech):
    subject = f"swaks-auth-{mech}"
    mid = msgid(subject)
    p = swaks(mta, "--tls", "--auth", mech, "--auth-user", USER, "--auth-password", PASSWORD,
              "--from", USER, "--header", f"Subject: {subject}", "--header", f"Message-Id: {mid}")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "235 2.7.0" in p.stdout, p.stdout
    m = mta.wait_message(USER, mid)
    assert b"with ESMTPSA" in m


def test_starttls_injection_discarded(mta):
    """Commands pipelined after STARTTLS in plaintext must never be answered inside TLS
    (CVE-2011-0411 class): the first reply after the handshake answers our EHLO."""
    mark = mta.log_mark()
    ctx = context(mta)
    with socket.create_connection(("127.0.0.1", mta.port("smtp")), timeout=10) as raw:
        f = raw.makefile("rb", buffering=0)
        assert read_reply(f)[0].startswith("220")
        raw.sendall(b"EHLO client.example.org\r\n")
        read_reply(f)
        raw.sendall(b"STARTTLS\r\nRSET\r\n")
        line = b""
        while not line.endswith(b"\n"):       # one byte at a time: leave TLS bytes alone
            ch = raw.recv(1)
            assert ch, "closed before the STARTTLS reply"
            line += ch
        assert line.startswith(b"220 "), line
        with ctx.wrap_socket(raw, server_hostname=mta.hostname) as tls:
            tls.sendall(b"EHLO again.example.org\r\n")
            tf = tls.makefile("rb")
            reply = read_reply(tf)
            assert reply[0].startswith("250-"), reply
            assert mta.hostname in reply[0], reply
            tls.sendall(b"NOOP\r\n")
            assert read_reply(tf) == ["250 2.0.0 Ok"]
    mta.wait_log("sent before the TLS handshake discarded", since=mark)


def test_session_reset_after_starttls(mta):
    """RFC 3207: the server forgets what it knew before TLS; the EHLO name given
    before STARTTLS must not reach the Received: header."""
    mid = msgid("reset-1")
    with mta.smtp() as s:
        s.ehlo("before.example.org")
        s.starttls(context=context(mta))
        assert s.docmd("MAIL", "FROM:<sender@example.org>")[0] == 250
        assert s.docmd("RCPT", f"TO:<{USER}>")[0] == 250
        assert s.docmd("DATA")[0] == 354
        s.send(message("reset-1", mid).encode() + b".\r\n")
        assert s.getreply()[0] == 250
    m = mta.wait_message(USER, mid)
    assert b"before.example.org" not in m


@pytest.mark.parametrize("port", ["smtp", "smtps"])
def test_garbage_instead_of_client_hello(mta, port):
    mark = mta.log_mark()
    with socket.create_connection(("127.0.0.1", mta.port(port)), timeout=10) as raw:
        if port == "smtp":
            f = raw.makefile("rb", buffering=0)
            read_reply(f)
            raw.sendall(b"STARTTLS\r\n")
            assert read_reply(f)[0].startswith("220 ")
        raw.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n" + os.urandom(300))
        raw.settimeout(10)
        data = b""
        try:
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"250" not in data
    # the next connection works
    if port == "smtp":
        with mta.smtp() as s:
            s.starttls(context=context(mta))
            assert s.noop()[0] == 250
    else:
        with smtplib.SMTP_SSL("127.0.0.1", mta.port("smtps"), timeout=30,
                              context=context(mta)) as s:
            assert s.noop()[0] == 250
    mta.wait_log("]: TLS handshake: ", since=mark)


def test_client_vanishes_mid_handshake(mta):
    mark = mta.log_mark()
    with socket.create_connection(("127.0.0.1", mta.port("smtps")), timeout=10) as raw:
        raw.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
    # smtpd has seen the client go
    mta.wait_log("]: TLS handshake: ", since=mark)
    with smtplib.SMTP_SSL("127.0.0.1", mta.port("smtps"), timeout=30,
                          context=context(mta)) as s:
        assert s.noop()[0] == 250

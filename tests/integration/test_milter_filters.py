"""smtpd_milters against real filters from Debian, each started here on its own
loopback port with its own files in a temporary directory, and stopped after:
opendkim (signing, checked with python3-dkim), spamass-milter with spamd (GTUBE),
clamav-milter with clamd (EICAR as an attachment), rspamd's proxy worker in milter
mode (GTUBE).  A test whose filter is not installed is skipped, naming the package."""

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import start_instance
from instance import reserve_port, wait_for

SENDER = "sender@example.test"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def need(*programs, package):
    missing = [p for p in programs if shutil.which(p) is None
               and not os.path.exists(p)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian package {package})")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Daemon:
    """A filter process of the test, in the foreground, in its own process group."""

    def __init__(self, args, log, **kw):
        self.logf = open(log, "ab")
        self.p = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                  start_new_session=True, **kw)

    def wait_port(self, port, timeout=60):
        wait_for(lambda: port_open(port) or self.p.poll() is not None, timeout=timeout,
                 what=f"{self.p.args[0]} to listen on {port}")
        assert self.p.poll() is None, f"{self.p.args[0]} exited: {self.p.returncode}"

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.logf.close()


def message(subject, body, extra=""):
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@example.test>"
    return mid, (f"From: {SENDER}\r\nTo: rcpt@example.test\r\nSubject: {subject}\r\n"
                 f"Message-ID: {mid}\r\nDate: Sat, 05 Dec 2026 08:00:00 +0000\r\n"
                 f"{extra}\r\n{body}\r\n").encode()


def send(inst, rcpt, data):
    with inst.smtp() as s:
        s.ehlo("client.example.test")
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt(rcpt)[0] == 250
        return s.data(data)


# ---- opendkim ----

def test_opendkim_signs_and_the_signature_verifies():
    need("opendkim", "opendkim-genkey", package="opendkim, opendkim-tools")
    dkim = pytest.importorskip("dkim", reason="python3-dkim not installed")
    tmp = tempfile.mkdtemp(prefix="postern-opendkim-")
    port = reserve_port()
    subprocess.run(["opendkim-genkey", "-b", "2048", "-D", tmp, "-d", "example.test",
                    "-s", "test"], check=True, timeout=60)
    conf = os.path.join(tmp, "opendkim.conf")
    with open(conf, "w") as f:
        f.write(f"Syslog no\nMode s\nDomain example.test\nSelector test\n"
                f"KeyFile {tmp}/test.private\nCanonicalization relaxed/relaxed\n"
                f"Socket inet:{port}@127.0.0.1\nPidFile {tmp}/opendkim.pid\n"
                f"RequireSafeKeys no\nInternalHosts 127.0.0.1\nUserID root\n")
    d = Daemon(["opendkim", "-f", "-x", conf], os.path.join(tmp, "log"))
    inst = None
    try:
        d.wait_port(port)
        inst = start_instance(users=("rcpt@example.test",),
                              config={"smtpd_milters": f"inet:127.0.0.1:{port}"})
        mid, data = message("dkim", "signed body\r\nline two")
        code, text = send(inst, "rcpt@example.test", data)
        assert code == 250, text
        got = inst.wait_message("rcpt@example.test", mid)
        assert b"DKIM-Signature:" in got
        record = open(os.path.join(tmp, "test.txt")).read()
        txt = "".join(record.split('"')[1::2]).encode()

        def dns(name, timeout=5):
            return txt if name == b"test._domainkey.example.test." else None
        # local's own fields (Return-Path, Delivered-To) are not signed
        assert dkim.verify(got.replace(b"\n", b"\r\n"), dnsfunc=dns)
        tampered = got.replace(b"signed body", b"changed body").replace(b"\n", b"\r\n")
        assert not dkim.verify(tampered, dnsfunc=dns)
    finally:
        if inst:
            inst.cleanup()
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)

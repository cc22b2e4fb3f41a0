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


# ---- SpamAssassin through spamass-milter ----

def test_spamass_milter_marks_gtube_and_local_files_it_as_junk():
    need("spamass-milter", "spamd", "spamc", package="spamass-milter, spamassassin, spamc")
    tmp = tempfile.mkdtemp(prefix="postern-spamass-")
    os.chmod(tmp, 0o755)
    sport, mport = reserve_port(), reserve_port()
    spamd = Daemon(["spamd", "--listen", f"127.0.0.1:{sport}", "--max-children", "1",
                    "--local", "--nouser-config", "--syslog", "stderr",
                    "--pidfile", f"{tmp}/spamd.pid", "-u", "nobody",
                    "--allowed-ips", "127.0.0.1"], os.path.join(tmp, "spamd.log"),
                   cwd=tmp, env=dict(os.environ, HOME=tmp))
    milter = None
    inst = None
    try:
        spamd.wait_port(sport, timeout=120)
        milter = Daemon(["spamass-milter", "-p", f"inet:{mport}@127.0.0.1", "-m", "--",
                         "-d", "127.0.0.1", "-p", str(sport)], os.path.join(tmp, "milter.log"),
                        cwd=tmp)
        milter.wait_port(mport)
        inst = start_instance(users=("rcpt@example.test",),
                              config={"smtpd_milters": f"inet:127.0.0.1:{mport}",
                                      "milter_content_timeout": "120s"})
        mid, data = message("gtube", f"this is spam\r\n{GTUBE}")
        code, text = send(inst, "rcpt@example.test", data)
        assert code == 250, text
        junk = os.path.join(inst.maildir("rcpt@example.test"), ".Junk")
        wait_for(lambda: os.path.isdir(os.path.join(junk, "new"))
                 and os.listdir(os.path.join(junk, "new")), timeout=30,
                 what="the GTUBE message in .Junk")
        name = os.listdir(os.path.join(junk, "new"))[0]
        got = open(os.path.join(junk, "new", name), "rb").read()
        assert mid.encode() in got
        assert b"X-Spam-Flag: YES" in got
        assert not any(mid.encode() in m for m in inst.messages("rcpt@example.test"))
        # ham is marked as such and stays in the inbox
        mid2, data2 = message("ham", "an ordinary message about lunch")
        assert send(inst, "rcpt@example.test", data2)[0] == 250
        got2 = inst.wait_message("rcpt@example.test", mid2, timeout=60)
        assert b"X-Spam-Flag: YES" not in got2 and b"X-Spam-Status: No" in got2
    finally:
        if inst:
            inst.cleanup()
        if milter:
            milter.stop()
        spamd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- ClamAV through clamav-milter ----

def eicar_message(subject):
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@example.test>"
    att = base64.b64encode(EICAR.encode()).decode()
    return mid, (f"From: {SENDER}\r\nTo: rcpt@example.test\r\nSubject: {subject}\r\n"
                 f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
                 f"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
                 f"--b1\r\nContent-Type: text/plain\r\n\r\nsee the attachment\r\n"
                 f"--b1\r\nContent-Type: application/octet-stream\r\n"
                 f"Content-Disposition: attachment; filename=\"eicar.com\"\r\n"
                 f"Content-Transfer-Encoding: base64\r\n\r\n{att}\r\n--b1--\r\n").encode()


def test_clamav_milter_rejects_eicar_attachment():
    need("/usr/sbin/clamd", "/usr/sbin/clamav-milter", package="clamav-daemon, clamav-milter")
    import hashlib
    tmp = tempfile.mkdtemp(prefix="postern-clamav-")
    os.chmod(tmp, 0o755)
    os.mkdir(os.path.join(tmp, "db"))
    # The signature database, written here: nothing can be downloaded (no freshclam).
    with open(os.path.join(tmp, "db", "test.hdb"), "w") as f:
        f.write(f"{hashlib.md5(EICAR.encode()).hexdigest()}:{len(EICAR)}:Test.EICAR.Postern\n")
    cport, mport = reserve_port(), reserve_port()
    with open(os.path.join(tmp, "clamd.conf"), "w") as f:
        f.write(f"Foreground yes\nTCPSocket {cport}\nTCPAddr 127.0.0.1\n"
                f"DatabaseDirectory {tmp}/db\nLogFile {tmp}/clamd.log\nLogVerbose yes\n"
                f"PidFile {tmp}/clamd.pid\nTemporaryDirectory {tmp}\nUser root\n"
                f"MaxThreads 2\n")
    with open(os.path.join(tmp, "clamav-milter.conf"), "w") as f:
        f.write(f"Foreground yes\nMilterSocket inet:{mport}@127.0.0.1\n"
                f"ClamdSocket tcp:127.0.0.1:{cport}\nOnInfected Reject\nOnFail Defer\n"
                f"AddHeader Replace\nLogFile {tmp}/milter.log\nLogInfected Full\n"
                f"PidFile {tmp}/milter.pid\nTemporaryDirectory {tmp}\nUser root\n")
    clamd = Daemon(["/usr/sbin/clamd", "-c", f"{tmp}/clamd.conf"], os.path.join(tmp, "out"))
    milter = None
    inst = None
    try:
        clamd.wait_port(cport, timeout=120)
        milter = Daemon(["/usr/sbin/clamav-milter", "-c", f"{tmp}/clamav-milter.conf"],
                        os.path.join(tmp, "mout"))
        milter.wait_port(mport)
        inst = start_instance(users=("rcpt@example.test",),
                              config={"smtpd_milters": f"inet:127.0.0.1:{mport}",
                                      "milter_content_timeout": "120s"})
        mark = inst.log_mark()
        mid, data = eicar_message("eicar")
        code, text = send(inst, "rcpt@example.test", data)
        assert code == 550 and b"5.7.1" in text, (code, text)
        inst.wait_log("reject: DATA", since=mark)
        inst.wait_settled(mark)
        assert not inst.find_messages("rcpt@example.test", mid)
        # a clean message passes, marked by the scanner
        mid2, data2 = message("clean", "nothing to see")
        assert send(inst, "rcpt@example.test", data2)[0] == 250
        got = inst.wait_message("rcpt@example.test", mid2, timeout=60)
        assert b"X-Virus-Scanned:" in got and b"X-Virus-Status: Clean" in got
    finally:
        if inst:
            inst.cleanup()
        if milter:
            milter.stop()
        clamd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- rspamd's proxy worker in milter mode ----

RSPAMD_CONF = """.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
}
logging {
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    level = "info";
}
worker "rspamd_proxy" {
    bind_socket = "127.0.0.1:%d";
    milter = yes;
    timeout = 120s;
    count = 1;
    upstream "local" { default = yes; self_scan = yes; }
}
"""


def test_rspamd_rejects_gtube():
    need("rspamd", package="rspamd")
    tmp = tempfile.mkdtemp(prefix="postern-rspamd-")
    os.mkdir(os.path.join(tmp, "db"))
    port = reserve_port()
    conf = os.path.join(tmp, "rspamd.conf")
    with open(conf, "w") as f:
        f.write(RSPAMD_CONF % port)
    # Only the proxy worker, on the test's port; its files in tmp.
    d = Daemon(["rspamd", "-f", "-i", "-u", "root", "-g", "root", "-c", conf,
                "--var", f"LOCAL_CONFDIR={tmp}", "--var", f"DBDIR={tmp}/db",
                "--var", f"RUNDIR={tmp}", "--var", f"LOGDIR={tmp}"],
               os.path.join(tmp, "out"))
    inst = None
    try:
        d.wait_port(port, timeout=240)
        inst = start_instance(users=("rcpt@example.test",),
                              config={"smtpd_milters": f"inet:127.0.0.1:{port}",
                                      "milter_content_timeout": "120s"})
        mark = inst.log_mark()
        mid, data = message("gtube", f"this is spam\r\n{GTUBE}")
        code, text = send(inst, "rcpt@example.test", data)
        assert code == 554 and b"5.7.1" in text and b"Gtube" in text, (code, text)
        inst.wait_settled(mark)
        assert not inst.find_messages("rcpt@example.test", mid)
        # ham passes
        mid2, data2 = message("ham", "an ordinary message about lunch")
        assert send(inst, "rcpt@example.test", data2)[0] == 250
        inst.wait_message("rcpt@example.test", mid2, timeout=60)
    finally:
        if inst:
            inst.cleanup()
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)

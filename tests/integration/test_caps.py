"""Caps on client input: phase deadlines that trickled bytes cannot extend (an SMTP
command line, DATA, BDAT, TLS handshakes, a POP3 command line and the POP3 pre-auth
session), header_size_limit, smtpd_junk_command_limit, early talkers and unauthorised
pipelining, malformed HELO names and addresses, mynetworks = host, queue_minfree and a
full queue file system (a small tmpfs), and stale files in the queue's tmp/."""

import os
import re
import select
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import start_instance
from instance import message_id_of, wait_for

USER = "alice@example.test"
SENDER = "stranger@remote.test"

CMD_DEADLINE = 3
DATA_DEADLINE = 4
TLS_DEADLINE = 3
POP_CMD_DEADLINE = 2
POP_PREAUTH_DEADLINE = 4
JUNK_LIMIT = 5


@pytest.fixture(scope="module")
def mta():
    # Default mynetworks (host); the idle timeouts are long, so that what cuts a
    # trickling client off is its deadline.
    inst = start_instance(users=(USER,), domains=("example.test",), config={
        "smtpd_timeout": "300s", "pop3d_timeout": "300s",
        "smtpd_command_deadline": f"{CMD_DEADLINE}s",
        "smtpd_data_deadline": f"{DATA_DEADLINE}s",
        "smtpd_starttls_timeout": f"{TLS_DEADLINE}s",
        "pop3d_command_deadline": f"{POP_CMD_DEADLINE}s",
        "pop3d_preauth_deadline": f"{POP_PREAUTH_DEADLINE}s",
        "smtpd_junk_command_limit": str(JUNK_LIMIT),
        "smtpd_greet_wait": "1s",
    })
    yield inst
    inst.cleanup()


def connect(inst, service="smtp", source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", inst.port(service)), timeout=30,
                                 source_address=(source, 0))
    return s


def read_reply(sock, timeout=30):
    """One whole SMTP reply (every line of a multi-line one)."""
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lines = buf.split(b"\r\n")
        for i, l in enumerate(lines[:-1]):
            if re.match(rb"^\d{3} ", l):
                return b"\r\n".join(lines[:i + 1])
        r, _, _ = select.select([sock], [], [], end - time.monotonic())
        if not r:
            break
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def read_replies(sock, n, timeout=30):
    """The next n whole SMTP replies, as one buffer."""
    buf = b""
    end = time.monotonic() + timeout
    while len(re.findall(rb"^\d{3} ", buf, re.M)) < n and time.monotonic() < end:
        r, _, _ = select.select([sock], [], [], end - time.monotonic())
        if not r:
            break
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def command(sock, line):
    sock.sendall(line + b"\r\n")
    return read_reply(sock)


def trickle(sock, data, interval=0.5, limit=40):
    """Sends data a byte at a time, interval seconds apart, until the server says
    something or closes: (what it said, seconds it took).  Bounded by limit bytes."""
    start = time.monotonic()
    for i in range(limit):
        try:
            sock.sendall(data[i % len(data):i % len(data) + 1])
        except OSError:
            return b"", time.monotonic() - start
        r, _, _ = select.select([sock], [], [], interval)
        if r:
            try:
                got = sock.recv(4096)
            except OSError:
                got = b""
            return got, time.monotonic() - start
    return None, time.monotonic() - start


def closed(sock, timeout=10):
    """True when the peer closes the connection within timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([sock], [], [], end - time.monotonic())
        if not r:
            return False
        try:
            if sock.recv(4096) == b"":
                return True
        except OSError:
            return True
    return False


def greeted(inst):
    s = connect(inst)
    assert read_reply(s).startswith(b"220 "), "no greeting"
    return s


# ---- phase deadlines ----

def test_trickled_command_line_is_cut_off(mta):
    mark = mta.log_mark()
    with greeted(mta) as s:
        got, took = trickle(s, b"EHLO trickle.remote.test")
        assert got is not None and got.startswith(b"421 4.4.2 mx.example.test Error: "
                                                  b"timeout exceeded"), got
        assert CMD_DEADLINE - 0.5 <= took < CMD_DEADLINE + 3, took
        assert closed(s)
    mta.wait_log("deadline exceeded (command line) after CONNECT from [127.0.0.1]", since=mark)


def test_trickled_data_is_cut_off_and_nothing_queued(mta):
    mark = mta.log_mark()
    with greeted(mta) as s:
        assert command(s, b"EHLO trickle.remote.test").startswith(b"250")
        assert command(s, b"MAIL FROM:<%s>" % SENDER.encode()).startswith(b"250")
        assert command(s, b"RCPT TO:<%s>" % USER.encode()).startswith(b"250")
        assert command(s, b"DATA").startswith(b"354")
        # whole short lines: no line is slow, the DATA phase as a whole is
        got, took = trickle(s, b"x\r\n", interval=0.3, limit=60)
        assert got is not None and got.startswith(b"421 4.4.2"), got
        assert DATA_DEADLINE - 0.5 <= took < DATA_DEADLINE + 3, took
        assert closed(s)
    mta.wait_log("deadline exceeded (DATA) after DATA from [127.0.0.1]", since=mark)
    assert not mta.log_lines("queue active", since=mark)
    wait_for(lambda: not mta.queue_files("tmp"), what="the partial queue file to go")


def test_trickled_bdat_chunk_is_cut_off(mta):
    mark = mta.log_mark()
    with greeted(mta) as s:
        assert command(s, b"EHLO chunker.remote.test").startswith(b"250")
        assert command(s, b"MAIL FROM:<%s>" % SENDER.encode()).startswith(b"250")
        assert command(s, b"RCPT TO:<%s>" % USER.encode()).startswith(b"250")
        s.sendall(b"BDAT 1000 LAST\r\n")
        got, took = trickle(s, b"Subject: slow\r\n", interval=0.3, limit=60)
        assert got is not None and got.startswith(b"421 4.4.2"), got
        assert took < DATA_DEADLINE + 3, took
    mta.wait_log("deadline exceeded (BDAT) after BDAT from [127.0.0.1]", since=mark)
    assert not mta.log_lines("queue active", since=mark)


@pytest.mark.parametrize("how", ["smtps", "starttls"])
def test_stalled_tls_handshake_is_cut_off(mta, how):
    mark = mta.log_mark()
    s = connect(mta, "smtps" if how == "smtps" else "smtp")
    with s:
        if how == "starttls":
            assert read_reply(s).startswith(b"220 ")
            assert command(s, b"EHLO tls.remote.test").startswith(b"250")
            assert command(s, b"STARTTLS").startswith(b"220")
        # the first bytes of a TLS record, then a byte now and then
        got, took = trickle(s, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", interval=0.5)
        assert got == b"" or got is None or not got.startswith(b"220"), got
        assert took < TLS_DEADLINE + 3, took
    mta.wait_log("TLS handshake: timed out", since=mark)


def pop_line(sock, timeout=15):
    buf = b""
    end = time.monotonic() + timeout
    while not buf.endswith(b"\n") and time.monotonic() < end:
        r, _, _ = select.select([sock], [], [], end - time.monotonic())
        if not r:
            break
        ch = sock.recv(1)
        if not ch:
            break
        buf += ch
    return buf


def test_pop3_trickled_command_line_is_cut_off(mta):
    mark = mta.log_mark()
    with connect(mta, "pop3") as s:
        assert pop_line(s).startswith(b"+OK")
        got, took = trickle(s, b"USER alice@example.test")
        assert got is not None and got.startswith(b"-ERR [SYS/TEMP]"), got
        assert took < POP_CMD_DEADLINE + 2, took
        assert closed(s)
    mta.wait_log("command line deadline exceeded: client=[127.0.0.1]", since=mark)


def test_pop3_preauth_deadline(mta):
    """Whole commands in good time, but never a login: the pre-auth deadline ends it."""
    mark = mta.log_mark()
    start = time.monotonic()
    with connect(mta, "pop3") as s:
        assert pop_line(s).startswith(b"+OK")
        last = b""
        for _ in range(POP_PREAUTH_DEADLINE * 4):
            s.sendall(b"NOOP\r\n")
            last = pop_line(s)
            if not last.startswith(b"-ERR not logged in"):
                break
            time.sleep(0.5)
        assert last.startswith(b"-ERR [SYS/TEMP]"), last
        assert time.monotonic() - start < POP_PREAUTH_DEADLINE + 3
        assert closed(s)
    mta.wait_log("pre-auth deadline exceeded: client=[127.0.0.1]", since=mark)


def test_pop3s_stalled_handshake_is_cut_off(mta):
    mark = mta.log_mark()
    with connect(mta, "pop3s") as s:
        got, took = trickle(s, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", interval=0.5)
        assert not got, got
        assert took < POP_PREAUTH_DEADLINE + 3, took
    mta.wait_log("TLS handshake failed", "pre-auth deadline exceeded", since=mark)


def test_pop3_login_still_works(mta):
    """The deadlines leave a normal client alone."""
    import poplib
    p = poplib.POP3("127.0.0.1", mta.port("pop3"), timeout=30)
    try:
        p.user(USER)
        assert p.pass_("secret").startswith(b"+OK")
    finally:
        p.quit()


# ---- input caps ----

def test_header_too_large_is_refused(mta):
    mark = mta.log_mark()
    line = b"X-Filler: " + b"a" * 988 + b"\r\n"
    header = line * (6_700_000 // len(line))
    data = b"Subject: huge header\r\nMessage-ID: <huge-hdr@remote.test>\r\n" + header + \
        b"\r\nbody\r\n"
    with mta.smtp() as s:
        s.ehlo("big.remote.test")
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt(USER)[0] == 250
        code, text = s.data(data)
        assert code == 552 and text == b"5.3.4 Message header too large", (code, text)
        assert s.noop()[0] == 250
    mta.wait_log("reject: DATA from [127.0.0.1]: 552 5.3.4 Message header too large",
                 since=mark)
    assert not mta.log_lines("queue active", since=mark)
    # a header under the limit, with a large body, is fine
    small = b"Subject: ok\r\nMessage-ID: <big-body@remote.test>\r\n" + line * 100 + \
        b"\r\n" + b"body line\r\n" * 200_000
    with mta.smtp() as s:
        s.sendmail(SENDER, [USER], small)
    mta.wait_message(USER, message_id_of(small))


def test_junk_command_limit(mta):
    mark = mta.log_mark()
    with greeted(mta) as s:
        assert command(s, b"EHLO junk.remote.test").startswith(b"250")
        for cmd in (b"NOOP", b"RSET", b"VRFY x", b"HELP", b"XYZZY")[:JUNK_LIMIT]:
            assert command(s, cmd)[:1] in (b"2", b"5")
        got = command(s, b"NOOP")
        assert got.startswith(b"421 4.7.0 mx.example.test Error: too many errors/junk "
                              b"commands"), got
        assert closed(s)
    mta.wait_log("too many junk commands after NOOP from [127.0.0.1]", since=mark)


def test_repeated_ehlo_is_junk(mta):
    """A client that says EHLO again and again (each within the idle timeout) cannot
    hold a process for ever: a repeat counts against smtpd_junk_command_limit."""
    mark = mta.log_mark()
    with greeted(mta) as s:
        assert command(s, b"EHLO first.remote.test").startswith(b"250")
        for _ in range(JUNK_LIMIT):
            assert command(s, b"EHLO again.remote.test").startswith(b"250")
        got = command(s, b"HELO again.remote.test")
        assert got.startswith(b"421 4.7.0"), got
        assert closed(s)
    mta.wait_log("too many junk commands after HELO from [127.0.0.1]", since=mark)


def test_early_talker_is_refused(mta):
    """127.0.0.2 is outside mynetworks (the host's own addresses): it is made to wait."""
    mark = mta.log_mark()
    with connect(mta, source="127.0.0.2") as s:
        s.sendall(b"EHLO early.remote.test\r\n")
        got = read_reply(s)
        assert got.startswith(b"554 5.5.0 Error: improper command pipelining"), got
        assert closed(s)
    mta.wait_log("improper command pipelining after CONNECT from [127.0.0.2]", since=mark)


def silent_for(sock, seconds):
    """True when nothing arrives on sock for that long."""
    return not select.select([sock], [], [], seconds)[0]


def test_greeting_wait_is_on_by_default():
    """Out of the box (postern init, no smtpd_greet_wait set) a stranger waits 6 s for
    the greeting on port 25 and is refused if it talks meanwhile; mynetworks clients
    and the submission port are greeted without the wait."""
    inst = start_instance(users=(USER,))
    try:
        inst.run("config", "-X", "smtpd_greet_wait")
        inst.reload()
        out = inst.run("config", "smtpd_greet_wait").stdout
        assert out.splitlines()[0] == "smtpd_greet_wait = 6s", out
        with connect(inst, source="127.0.0.2") as s:
            assert silent_for(s, 3)             # half the wait: no greeting yet
            assert read_reply(s, timeout=15).startswith(b"220 ")
        mark = inst.log_mark()
        with connect(inst, source="127.0.0.2") as s:
            s.sendall(b"EHLO early.remote.test\r\n")
            assert read_reply(s, timeout=15).startswith(b"554 5.5.0")
        inst.wait_log("improper command pipelining after CONNECT from [127.0.0.2]",
                      since=mark)
        for service, source in (("smtp", "127.0.0.1"), ("submission", "127.0.0.2")):
            with connect(inst, service, source) as s:
                assert not silent_for(s, 3), f"{service} from {source}: no greeting"
                assert read_reply(s).startswith(b"220 ")
    finally:
        inst.cleanup()


def test_pipelining_after_helo_is_refused(mta):
    mark = mta.log_mark()
    with greeted(mta) as s:
        s.sendall(b"HELO pipe.remote.test\r\nMAIL FROM:<%s>\r\n" % SENDER.encode())
        got = read_reply(s)
        assert got.startswith(b"554 5.5.0 Error: improper command pipelining"), got
        assert closed(s)
    mta.wait_log("improper command pipelining after HELO from [127.0.0.1]", since=mark)
    # one command at a time after HELO is fine
    with greeted(mta) as s:
        assert command(s, b"HELO pipe.remote.test").startswith(b"250")
        assert command(s, b"MAIL FROM:<%s>" % SENDER.encode()).startswith(b"250")
        assert command(s, b"QUIT").startswith(b"221")


def test_pipelining_after_ehlo_is_taken(mta):
    with greeted(mta) as s:
        s.sendall(b"EHLO pipe.remote.test\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRSET\r\n"
                  % (SENDER.encode(), USER.encode()))
        got = read_replies(s, 4)
        assert b"PIPELINING" in got
        assert re.findall(rb"^(\d{3}) ", got, re.M) == [b"250"] * 4, got


@pytest.mark.parametrize("helo,code", [
    (b"HELO [1.2.3.4", b"501 5.5.2"),
    (b"EHLO [300.1.2.3]", b"501 5.5.2"),
    (b"EHLO [IPv6:zz::1]", b"501 5.5.2"),
    (b"EHLO [1.2.3.4]x", b"501 5.5.2"),
    (b"EHLO host]name", b"501 5.5.2"),
    (b"EHLO \xff\xfe.remote.test", b"501 5.5.2"),
    (b"EHLO caf\xc3.remote.test", b"501 5.5.2"),
    (b"EHLO [1.2.3.4]", b"250"),
    (b"EHLO [IPv6:2001:db8::1]", b"250"),
    (b"EHLO caf\xc3\xa9.remote.test", b"250"),
])
def test_helo_syntax(mta, helo, code):
    with greeted(mta) as s:
        got = command(s, helo)
        assert got.startswith(code), (helo, got)
        assert command(s, b"QUIT").startswith(b"221")


@pytest.mark.parametrize("cmd,code", [
    (b"MAIL FROM:<a@[1.2.3.4>", b"501 5.1.7"),
    (b"MAIL FROM:<a@[1.2.3.999]>", b"501 5.1.7"),
    (b"MAIL FROM:<\xff@remote.test> SMTPUTF8", b"501 5.1.7"),
    (b"MAIL FROM:<a\x01b@remote.test>", b"500 5.5.2"),
    (b"RCPT TO:<alice@[IPv6:::g]>", b"501 5.1.3"),
    (b"RCPT TO:<\xc3\x28@example.test> SMTPUTF8", b"501 5.1.3"),
])
def test_address_syntax(mta, cmd, code):
    with greeted(mta) as s:
        assert command(s, b"EHLO syntax.remote.test").startswith(b"250")
        if cmd.startswith(b"RCPT"):
            assert command(s, b"MAIL FROM:<%s> SMTPUTF8" % SENDER.encode()).startswith(b"250")
        got = command(s, cmd)
        assert got.startswith(code), (cmd, got)
        assert command(s, b"QUIT").startswith(b"221")


# ---- mynetworks = host ----

def test_default_mynetworks_is_this_hosts_addresses(mta):
    out = mta.run("config", "mynetworks").stdout
    assert out.splitlines()[0] == "mynetworks = host", out
    assert re.search(r"^# mynetworks: host = .*127\.0\.0\.1/32", out, re.M), out
    assert "127.0.0.0/8" not in out
    # 127.0.0.1 is an address of this host (lo): it may relay
    with greeted(mta) as s:
        assert command(s, b"EHLO own.remote.test").startswith(b"250")
        assert command(s, b"MAIL FROM:<%s>" % SENDER.encode()).startswith(b"250")
        assert command(s, b"RCPT TO:<someone@elsewhere.test>").startswith(b"250")
        assert command(s, b"QUIT").startswith(b"221")
    # 127.0.0.2 is loopback, but no interface has it: a stranger
    s = connect(mta, source="127.0.0.2")
    with s:
        assert read_reply(s).startswith(b"220 ")
        assert command(s, b"EHLO other.remote.test").startswith(b"250")
        assert command(s, b"MAIL FROM:<%s>" % SENDER.encode()).startswith(b"250")
        got = command(s, b"RCPT TO:<someone@elsewhere.test>")
        assert got.startswith(b"554 5.7.1"), got
        assert command(s, b"QUIT").startswith(b"221")


# ---- stale files in tmp/ ----

def test_stale_tmp_file_is_removed(mta):
    tmp = os.path.join(mta.queue_dir(), "tmp")
    stale = os.path.join(tmp, "stale-from-a-killed-writer")
    fresh = os.path.join(tmp, "fresh-file")
    for p in (stale, fresh):
        with open(p, "w") as f:
            f.write("partial\n")
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    mark = mta.log_mark()
    mta.run("queue", "flush")
    mta.wait_log("tmp/stale-from-a-killed-writer: removed stale temporary file", since=mark)
    assert not os.path.exists(stale)
    assert os.path.exists(fresh)
    os.unlink(fresh)


# ---- a full queue file system ----

def mount_tmpfs(path, size):
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path],
                       capture_output=True, text=True)
    return p.returncode == 0, p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_queue_file_system():
    inst = start_instance(users=(USER,), domains=("example.test",), start=False, config={
        "message_size_limit": "3000000", "queue_minfree": "1000000"})
    qdir = inst.queue_dir()
    saved = tempfile.mkdtemp(prefix="postern-q-", dir=inst.dir)
    mounted = False
    try:
        subprocess.run(["cp", "-a", qdir + "/.", saved], check=True)
        ok, err = mount_tmpfs(qdir, "6m")
        if not ok:
            pytest.skip(f"cannot mount a tmpfs here: {err.strip()}")
        mounted = True
        subprocess.run(["cp", "-a", saved + "/.", qdir], check=True)
        inst.start()
        filler = os.path.join(qdir, "filler")

        def fill_to(free):
            """Grows or shrinks the filler file so that about free bytes stay free."""
            st = os.statvfs(qdir)
            have = st.f_bavail * st.f_frsize
            size = os.path.getsize(filler) if os.path.exists(filler) else 0
            want = max(0, size + have - free)
            with open(filler, "ab") as f:
                f.truncate(0)
            if want:
                with open(filler, "r+b") as f:
                    f.write(b"\0" * want)
                    f.flush()
                    os.fsync(f.fileno())

        # A message taken before the disk fills, kept in the queue by a mailbox
        # that cannot be written yet.
        domain_dir = os.path.join(inst.conf_dir, "mail")
        mode = os.stat(domain_dir).st_mode & 0o7777
        os.chmod(domain_dir, 0o000)
        mark = inst.log_mark()
        before = (b"Subject: before\r\nMessage-ID: <before-full@remote.test>\r\n\r\n"
                  b"taken before the disk filled\r\n")
        inst.submit(SENDER, [USER], before)
        inst.wait_log("status=deferred", since=mark)

        # Under queue_minfree: MAIL is answered 452 before any data.
        fill_to(500_000)
        mark = inst.log_mark()
        with inst.smtp() as s:
            s.ehlo("full.remote.test")
            code, text = s.mail(SENDER)
            assert code == 452 and text == b"4.3.1 Insufficient system storage", (code, text)
        inst.wait_log("reject: MAIL from [127.0.0.1]: 452 4.3.1 Insufficient system storage",
                      since=mark)

        # Above it, but not with the size the client declares.
        fill_to(1_500_000)
        with inst.smtp() as s:
            s.ehlo("full.remote.test")
            code, text = s.mail(SENDER, ["SIZE=1000000"])
            assert code == 452 and text == b"4.3.1 Insufficient system storage", (code, text)
            assert s.mail(SENDER, ["SIZE=1000"])[0] == 250

        # The message does not fit after all: 452 at the end of DATA, no file left.
        mark = inst.log_mark()
        big = (b"Subject: too big for the disk\r\nMessage-ID: <no-room@remote.test>\r\n\r\n"
               + b"y" * 998 + b"\r\n") * 2500
        with inst.smtp() as s:
            s.ehlo("full.remote.test")
            assert s.mail(SENDER)[0] == 250
            assert s.rcpt(USER)[0] == 250
            code, text = s.data(big)
            assert code == 452 and text == b"4.3.1 Insufficient system storage", (code, text)
        inst.wait_log("reject: queue file system full from [127.0.0.1]", since=mark)
        assert inst.queue_files("tmp") == []
        assert not inst.log_lines("queue active", since=mark)

        # Space again: what was taken before is delivered, new mail is taken.
        os.unlink(filler)
        os.chmod(domain_dir, mode)
        inst.run("queue", "flush")
        inst.wait_message(USER, "<before-full@remote.test>", timeout=30)
        after = b"Subject: after\r\nMessage-ID: <after-full@remote.test>\r\n\r\nroom again\r\n"
        inst.submit(SENDER, [USER], after)
        inst.wait_message(USER, "<after-full@remote.test>")
    finally:
        inst.stop()
        if mounted:
            subprocess.run(["umount", "-l", qdir], capture_output=True)
        shutil.rmtree(saved, ignore_errors=True)
        inst.cleanup()

"""Logins under attack and least privilege around them: 100 parallel password
guessers on submission while a real user still logs in at once; failure penalties
counted for the auth service as a whole (anvil), returned to the caller instead of
slept in auth; a saturated auth answered with a temporary error over SMTP, POP3
and IMAP; unknown user and wrong password answered in the same time; the
password table readable by root alone; the login sockets refusing local users that
are not their callers (SO_PEERCRED); the envelope sender of an authenticated client
restricted to the addresses its login owns."""

import base64
import contextlib
import imaplib
import os
import poplib
import pwd
import re
import smtplib
import socket
import ssl
import stat
import statistics
import subprocess
import threading
import time

import pytest

from conftest import start_instance
from instance import wait_for

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"
ERIN = "erin@example.test"
PASSWORD = "secret"
PROTO = ("proto", "auth/3")

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture(scope="module")
def mta():
    # The per-client connection limits (anvil) are not what these tests are about:
    # off, so that all 100 guessers from one address get to guess.
    inst = start_instance(users=(ALICE, BOB, CAROL, ERIN), start=False,
                          config={"mynetworks": "192.0.2.0/24",
                                  "smtpd_sasl_auth_enable": "yes",
                                  "smtpd_client_connection_count_limit": "0",
                                  "smtpd_client_connection_rate_limit": "0"})
    try:
        inst.write_map("virtual", f"info@example.test {ALICE}\n"
                                  f"team@example.test {ALICE}, {BOB}\n")
        # Room for the guessers and the real user on submission: the process limit
        # is not what these tests are about.
        path = os.path.join(inst.conf_dir, "master.conf")
        with open(path) as f:
            text = f.read()
        text = re.sub(r"^(submission\s+inet\s+\S+\s+\S+\s+\S+\s+)100", r"\g<1>150", text,
                      flags=re.M)
        with open(path, "w") as f:
            f.write(text)
        inst.start()
    except Exception:
        inst.cleanup()
        raise
    yield inst
    inst.cleanup()


# ---- raw auth/3 ----

def encode(pairs):
    out = b""
    for name, value in pairs:
        item = name.encode() + b"=" + value.encode()
        out += str(len(item)).encode() + b":" + item + b","
    return out + b"0:,"


def read_frame(s):
    buf = b""
    attrs = {}
    while True:
        while b":" not in buf:
            data = s.recv(4096)
            if not data:
                raise EOFError("connection closed")
            buf += data
        head, _, _ = buf.partition(b":")
        need = len(head) + 1 + int(head) + 1
        while len(buf) < need:
            data = s.recv(4096)
            if not data:
                raise EOFError("connection closed")
            buf += data
        item = buf[len(head) + 1:need - 1]
        buf = buf[need:]
        if item == b"":
            return attrs
        name, _, value = item.partition(b"=")
        attrs.setdefault(name.decode(), value.decode())


def auth_socket(inst):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(os.path.join(inst.queue_dir(), "login", "auth"))
    return s


def send_login(s, user, password, client):
    """Passes a TCP connection from client (a loopback address) and asks for a login,
    as smtpd does."""
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    cli = socket.socket()
    cli.bind((client, 0))
    cli.connect(lsn.getsockname())
    srv, _ = lsn.accept()
    try:
        socket.send_fds(s, [b"F"], [srv.fileno()])
        s.sendall(encode([PROTO, ("req", "auth"), ("service", "smtp"), ("user", user),
                          ("password", password)]))
    finally:
        srv.close()
        cli.close()
        lsn.close()


def raw_login(inst, user, password, client):
    s = auth_socket(inst)
    try:
        send_login(s, user, password, client)
        return read_frame(s)
    finally:
        s.close()


# ---- SMTP ----

def tls_ctx(inst):
    c = ssl.create_default_context(cafile=os.path.join(inst.conf_dir, "tls", "cert.pem"))
    c.check_hostname = False
    return c


def submission(inst, source="127.0.0.1", timeout=60):
    s = smtplib.SMTP("127.0.0.1", inst.port("submission"), timeout=timeout,
                     source_address=(source, 0))
    s.ehlo("client.example.org")
    s.starttls(context=tls_ctx(inst))
    s.ehlo("client.example.org")
    return s


def auth_plain(s, user, password):
    ir = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return s.docmd("AUTH", "PLAIN " + ir)


# ---- penalties ----

def test_penalty_is_counted_across_auth_processes(mta):
    """Three connections held open at once are served by three auth processes; the
    failures of one client on them still add up, and auth answers without waiting."""
    mark = mta.log_mark()
    socks = [auth_socket(mta) for _ in range(3)]
    delays = []
    try:
        for s in socks:
            t0 = time.monotonic()
            send_login(s, CAROL, "wrong", "127.0.0.31")
            r = read_frame(s)
            assert r["status"] == "fail", r
            assert time.monotonic() - t0 < 3.0
            delays.append(int(r["delay"]))
    finally:
        for s in socks:
            s.close()
    assert delays[0] >= 1000 and delays[1] > delays[0] and delays[2] > delays[1], delays
    lines = mta.log_lines("auth failed: service=smtp, user=" + CAROL, "client=127.0.0.31",
                          since=mark)
    pids = {re.search(r"auth\[(\d+)\]", line).group(1) for line in lines}
    assert len(lines) == 3 and len(pids) == 3, lines
    # a good login from that client now waits too; from elsewhere it does not
    r = raw_login(mta, CAROL, PASSWORD, "127.0.0.31")
    assert r["status"] == "ok" and int(r["delay"]) > 0, r
    r = raw_login(mta, CAROL, PASSWORD, "127.0.0.32")
    assert r["status"] == "ok" and int(r["delay"]) == 0, r


def test_penalty_has_a_cap(mta):
    delays = [int(raw_login(mta, "nobody-here@example.test", "x", "127.0.0.33")["delay"])
              for _ in range(8)]
    assert max(delays) == 15000, delays
    assert delays == sorted(delays), delays


def test_unknown_user_and_wrong_password_take_the_same_time(mta):
    """Medians of interleaved tries, each from a fresh client and for a fresh account
    so that no penalty differs: auth spends one password hash either way."""
    unknown, wrong = [], []
    for i in range(9):
        t0 = time.monotonic()
        r = raw_login(mta, f"ghost{i}@example.test", "wrong", f"127.0.1.{i + 1}")
        unknown.append(time.monotonic() - t0)
        assert r["status"] == "fail", r
        u_delay = int(r["delay"])
        t0 = time.monotonic()
        r = raw_login(mta, BOB, f"wrong{i}", f"127.0.2.{i + 1}")
        wrong.append(time.monotonic() - t0)
        assert r["status"] == "fail", r
        assert int(r["delay"]) >= u_delay       # bob's failures add up; ghosts' do not
    mu, mw = statistics.median(unknown), statistics.median(wrong)
    assert abs(mu - mw) <= max(0.5 * max(mu, mw), 0.05), (unknown, wrong)


def test_same_wait_over_smtp_for_unknown_user_and_wrong_password(mta):
    """The wait happens in smtpd, before its 535, and is the same for both: medians
    of three interleaved tries, each from a fresh client address, the two accounts
    failing as often as each other."""
    times = {"unknown": [], "wrong": []}
    for k in range(3):
        for name, user, source in (("unknown", "ghost-smtp@example.test", f"127.0.3.{k + 1}"),
                                   ("wrong", ERIN, f"127.0.4.{k + 1}")):
            with submission(mta, source=source) as s:
                t0 = time.monotonic()
                code, _ = auth_plain(s, user, "not-it")
                times[name].append(time.monotonic() - t0)
                assert code == 535
    mu, mw = statistics.median(times["unknown"]), statistics.median(times["wrong"])
    assert mu >= 1.9 and mw >= 1.9, times          # 1, 2, 4 s: the accounts' penalties
    assert abs(mu - mw) < 0.8, times


def test_guessers_do_not_stall_a_real_user(mta):
    """100 parallel guessers on submission (each bounded in tries and time); a real
    user from another address is still answered within a few seconds."""
    stop = threading.Event()
    tried = []
    lock = threading.Lock()
    mark = mta.log_mark()

    def guesser(n):
        deadline = time.monotonic() + 90
        for k in range(6):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                with submission(mta, source="127.0.0.1", timeout=40) as s:
                    code, _ = auth_plain(s, ALICE if n % 2 else f"guess{n}@example.test",
                                         f"guess-{n}-{k}")
            except (OSError, smtplib.SMTPException):
                code = None                     # refused or cut off: try again soon
                stop.wait(0.2)
            with lock:
                tried.append(code)

    threads = [threading.Thread(target=guesser, args=(n,), daemon=True) for n in range(100)]
    for t in threads:
        t.start()
    try:
        # the guessing is under way: many failures logged, the penalty at its cap (the
        # first burst of 100 password hashes has been computed)
        wait_for(lambda: len(mta.log_lines("auth failed: service=smtp", "client=127.0.0.1,",
                                           since=mark)) >= 60
                 and mta.log_lines("auth failed: service=smtp", "client=127.0.0.1,",
                                   "delay=15000ms", since=mark),
                 timeout=90, what="60 failed guesses, the last ones with the longest delay")
        t0 = time.monotonic()
        with submission(mta, source="127.0.0.2") as s:
            t1 = time.monotonic()
            code, msg = auth_plain(s, ALICE, PASSWORD)
            took = time.monotonic() - t1
            assert code == 235, (code, msg)
        assert took < 5.0, (t1 - t0, took)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=100)
    assert not any(t.is_alive() for t in threads)
    assert tried.count(535) >= 60, tried
    # and the guesses got the penalty, counted in one place
    delays = [int(m.group(1)) for line in mta.log_lines("auth failed: service=smtp",
                                                        "client=127.0.0.1,", since=mark)
              if (m := re.search(r"delay=(\d+)ms", line))]
    assert max(delays) == 15000, delays
    # past auth_client_failure_limit the guesses cost no password hash
    assert mta.log_lines("client=127.0.0.1,", "too many failures from this client: not checked",
                         since=mark)


def test_a_flooding_client_is_no_longer_checked(mta):
    """After auth_client_failure_limit (20) failures a client's logins fail unchecked,
    even with the right password; other clients and the account's owner are not
    affected."""
    mark = mta.log_mark()
    for i in range(20):
        assert raw_login(mta, f"flood{i}@example.test", "x", "127.0.0.81")["status"] == "fail"
    r = raw_login(mta, ERIN, PASSWORD, "127.0.0.81")
    assert r["status"] == "fail" and int(r["delay"]) == 15000, r
    mta.wait_log("user=" + ERIN, "client=127.0.0.81", "not checked", since=mark)
    assert raw_login(mta, ERIN, PASSWORD, "127.0.0.82")["status"] == "ok"


def test_without_anvil_failures_wait_the_fixed_delay():
    """anvil not running: every failed login waits auth_failure_max_delay, a good one
    does not wait, and auth says why in the log."""
    inst = start_instance(users=(ALICE,), start=False,
                          config={"auth_failure_max_delay": "3s"})
    try:
        path = os.path.join(inst.conf_dir, "master.conf")
        with open(path) as f:
            text = f.read()
        text, n = re.subn(r"^anvil\s.*\n", "", text, flags=re.M)
        assert n == 1
        with open(path, "w") as f:
            f.write(text)
        inst.start()
        mark = inst.log_mark()
        for i in range(2):
            r = raw_login(inst, ALICE, "wrong", f"127.0.0.9{i}")
            assert r["status"] == "fail" and int(r["delay"]) == 3000, r
        r = raw_login(inst, ALICE, PASSWORD, "127.0.0.90")
        assert r["status"] == "ok" and int(r["delay"]) == 0, r
        inst.wait_log("login penalties: anvil not reachable", "failed logins wait 3000 ms",
                      since=mark)
    finally:
        inst.cleanup()


@pytest.fixture(scope="module")
def one_auth():
    """auth limited to one process, so that a connection held to it saturates it;
    plaintext IMAP logins from loopback allowed."""
    inst = start_instance(users=(ALICE,), start=False,
                          config={"smtpd_sasl_auth_enable": "yes",
                                  "auth_request_timeout": "2s",
                                  "imapd_loopback_plaintext_login": "yes"})
    try:
        path = os.path.join(inst.conf_dir, "master.conf")
        with open(path) as f:
            text = f.read()
        text, n = re.subn(r"^(auth\s+unix\s+\S+\s+\S+\s+\S+\s+)-", r"\g<1>1", text,
                          flags=re.M)
        assert n == 1
        with open(path, "w") as f:
            f.write(text)
        inst.start()
    except Exception:
        inst.cleanup()
        raise
    yield inst
    inst.cleanup()


@contextlib.contextmanager
def auth_saturated(inst):
    """The one auth process serves a connection that says nothing."""
    hold = auth_socket(inst)
    try:
        wait_for(lambda: len(inst.daemon_pids("auth")) == 1, what="an auth process")
        yield
    finally:
        hold.close()


def test_auth_saturated_is_a_temporary_error(one_auth):
    """auth saturated: a login is answered within auth_request_timeout with 454 4.7.0
    and a log line, not a hang."""
    inst = one_auth
    with auth_saturated(inst):
        mark = inst.log_mark()
        with submission(inst, source="127.0.0.51") as s:
            t0 = time.monotonic()
            code, msg = auth_plain(s, ALICE, PASSWORD)
            took = time.monotonic() - t0
        assert code == 454 and b"4.7.0 Temporary authentication failure" in msg, msg
        assert 1.5 < took < 6, took
        inst.wait_log("SASL PLAIN authentication unavailable", since=mark)
    with submission(inst, source="127.0.0.51") as s:   # and back when it is free
        assert auth_plain(s, ALICE, PASSWORD)[0] == 235


def test_pop3_login_with_auth_saturated_is_a_temporary_error(one_auth):
    """The same over POP3: -ERR [SYS/TEMP] within auth_request_timeout, a log line, and
    the session goes on (a later login succeeds once auth is free)."""
    inst = one_auth
    p = poplib.POP3("127.0.0.1", inst.port("pop3"), timeout=30)
    try:
        with auth_saturated(inst):
            mark = inst.log_mark()
            p.user(ALICE)
            t0 = time.monotonic()
            with pytest.raises(poplib.error_proto) as e:
                p.pass_(PASSWORD)
            took = time.monotonic() - t0
            assert e.value.args[0] == (b"-ERR [SYS/TEMP] authentication unavailable, "
                                       b"try again later"), e.value
            assert 1.5 < took < 6, took
            inst.wait_log("/pop3d[", "authentication unavailable: client=[127.0.0.1]",
                          f"user=<{ALICE}>", since=mark)
        p.user(ALICE)
        assert p.pass_(PASSWORD).startswith(b"+OK")
    finally:
        p.quit()


def test_imap_login_with_auth_saturated_is_a_temporary_error(one_auth):
    """The same over IMAP: NO [UNAVAILABLE] within auth_request_timeout, a log line,
    and the session goes on (a later login succeeds once auth is free)."""
    inst = one_auth
    c = imaplib.IMAP4("127.0.0.1", inst.port("imap"), timeout=30)
    try:
        with auth_saturated(inst):
            mark = inst.log_mark()
            t0 = time.monotonic()
            typ, data = c._simple_command("LOGIN", ALICE, PASSWORD)
            took = time.monotonic() - t0
            assert typ == "NO", (typ, data)
            assert data == [b"[UNAVAILABLE] Authentication unavailable, try again later"]
            assert 1.5 < took < 6, took
            inst.wait_log("/imapd[", "authentication unavailable: client=[127.0.0.1]",
                          f"user=<{ALICE}>", since=mark)
        assert c.login(ALICE, PASSWORD)[0] == "OK"
    finally:
        c.logout()


# ---- least privilege ----

def as_user(user, *cmd):
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                           *cmd], capture_output=True, text=True, timeout=30)


@root_only
def test_password_table_is_roots_alone(mta):
    pw = mta.map_path("passwd")
    for path in (pw, pw + ".cdb"):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600), path
        for user in ("postern", "vmail"):
            p = as_user(user, "cat", path)
            assert p.returncode != 0 and "Permission denied" in p.stderr, (user, path)
            assert "$y$" not in p.stdout


@root_only
def test_user_add_makes_an_old_shared_password_table_private(mta):
    pw = mta.map_path("passwd")
    postern_gid = pwd.getpwnam("postern").pw_gid
    for path in (pw, pw + ".cdb"):
        os.chown(path, 0, postern_gid)          # as earlier releases made it
        os.chmod(path, 0o640)
    mta.add_user("dan@example.test", PASSWORD)
    for path in (pw, pw + ".cdb"):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600), path
    assert raw_login(mta, "dan@example.test", PASSWORD, "127.0.0.61")["status"] == "ok"


CONNECT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    s.sendall(sys.argv[2].encode())
    data = s.recv(100)
except (BrokenPipeError, ConnectionResetError):
    data = b""
print("REPLY" if data else "CLOSED")
"""


def connect_as(user, path, frame):
    p = as_user(user, "/usr/bin/python3", "-c", CONNECT, path, frame)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@root_only
def test_login_sockets_refuse_other_users(mta):
    auth = os.path.join(mta.queue_dir(), "login", "auth")
    pop3 = os.path.join(mta.queue_dir(), "login", "pop3")
    lookup = encode([PROTO, ("req", "lookup"), ("token", "x")]).decode()
    vmail = pwd.getpwnam("vmail").pw_uid
    postern = pwd.getpwnam("postern").pw_uid
    mark = mta.log_mark()
    # vmail runs no service that calls auth
    assert connect_as("vmail", auth, lookup) == "CLOSED"
    mta.wait_log(f"login/auth: connection from uid {vmail} ", "refused", since=mark)
    # smtpd's user may ask auth
    assert connect_as("postern", auth, lookup) == "REPLY"
    # only pop3d -l (nobody) hands clients to login/pop3
    mark = mta.log_mark()
    assert connect_as("postern", pop3, "F") == "CLOSED"
    mta.wait_log(f"login/pop3: connection from uid {postern} ", "refused", since=mark)
    # login/anvil: the services that count their clients there may call it; vmail not
    anvil = os.path.join(mta.queue_dir(), "login", "anvil")
    count = encode([("proto", "anvil/2"), ("req", "connect"), ("service", "pop3"),
                    ("client", "127.0.0.9")]).decode()
    assert connect_as("postern", anvil, count) == "REPLY"
    mark = mta.log_mark()
    assert connect_as("vmail", anvil, count) == "CLOSED"
    mta.wait_log(f"login/anvil: connection from uid {vmail} ", "refused", since=mark)


# ---- senders ----

def sub_login(inst, user=ALICE, source="127.0.0.71"):
    s = submission(inst, source=source)
    code, msg = auth_plain(s, user, PASSWORD)
    assert code == 235, msg
    return s


def test_sender_must_be_owned(mta):
    with sub_login(mta) as s:
        for sender in (ALICE, "Alice@Example.TEST", "alice+lists@example.test",
                       "info@example.test", "team@example.test", ""):
            code, msg = s.mail(sender)
            assert code == 250, (sender, code, msg)
            s.rset()
        mark = mta.log_mark()
        for sender in (BOB, "someone@remote.example", "nosuch@example.test"):
            code, msg = s.mail(sender)
            assert code == 553, (sender, code, msg)
            assert msg.decode() == (f"5.7.1 <{sender}>: Sender address rejected:"
                                    f" not owned by user {ALICE}")
            s.rset()
        mta.wait_log("reject: MAIL from", "not owned by user " + ALICE, since=mark)
    with sub_login(mta, user=BOB) as s:
        assert s.mail("team@example.test")[0] == 250   # an alias of both
        s.rset()
        assert s.mail("info@example.test")[0] == 553


def test_unauthenticated_client_is_unaffected(mta):
    with smtplib.SMTP("127.0.0.1", mta.port("smtp"), timeout=30,
                      source_address=("127.0.0.1", 0)) as s:
        s.ehlo("client.example.org")
        code, _ = s.mail(BOB)
        assert code == 250


@pytest.fixture(scope="module")
def senders_mta():
    inst = start_instance(users=(ALICE, BOB), start=False,
                          config={"smtpd_sasl_auth_enable": "yes"})
    try:
        inst.write_map("senders", f"{BOB} {ALICE}\n@shared.example {ALICE}, {BOB}\n")
        inst.config(smtpd_sender_login_maps="cdb:" + inst.map_path("senders"))
        inst.start()
    except Exception:
        inst.cleanup()
        raise
    yield inst
    inst.cleanup()


def test_sender_login_maps_decide_when_set(senders_mta):
    with sub_login(senders_mta) as s:
        assert s.mail(BOB)[0] == 250
        s.rset()
        assert s.mail("anyone@shared.example")[0] == 250
        s.rset()
        assert s.mail(ALICE)[0] == 553          # not listed: the map alone decides
    with sub_login(senders_mta, user=BOB) as s:
        assert s.mail(BOB)[0] == 553
        s.rset()
        assert s.mail("x@shared.example")[0] == 250


def test_relaxed_setting_allows_any_sender():
    inst = start_instance(users=(ALICE,),
                          config={"smtpd_sasl_auth_enable": "yes",
                                  "smtpd_sender_login_mismatch_allowed": "yes"})
    try:
        with sub_login(inst) as s:
            assert s.mail(BOB)[0] == 250
            s.rset()
            assert s.mail("someone@remote.example")[0] == 250
    finally:
        inst.cleanup()

"""IMAP before and at login (imapd -l in front, imapd behind): greeting and
CAPABILITY, LOGINDISABLED until STARTTLS, implicit TLS on the imaps port, LOGIN and
AUTHENTICATE PLAIN/LOGIN with and without SASL-IR, ID, ENABLE, NAMESPACE, the command
parser's refusals (bad tags, literals over the limit, overlong lines, commands in the
wrong state), the error limit, and the per-client connection limits (anvil) and
master's busy answer in front of imapd -l."""

import base64
import imaplib
import socket
import ssl
import time

import pytest

from conftest import start_instance
from instance import wait_for
from imap_instance import greets as _greets
from client_socket import connect_from, is_closed, read_line

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))

USER = "alice@example.test"
PASSWORD = "secret"


def _ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=(USER, "bob@example.test"), domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24", "imapd_error_limit": "5"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


@pytest.fixture(scope="module")
def plain(request):
    """An instance that lets loopback clients log in without TLS."""
    inst = start_instance(users=(USER,), domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "imapd_loopback_plaintext_login": "yes"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


class Raw:
    """A line-oriented raw client."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            self.sock = _ctx().wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")

    def line(self):
        return self.f.readline()

    def send(self, data):
        self.sock.sendall(data)

    def until_tagged(self, tag):
        lines = []
        while True:
            ln = self.line()
            assert ln, f"closed; got {lines}"
            lines.append(ln)
            if ln.startswith(tag + b" "):
                return lines

    def close(self):
        self.sock.close()


def test_greeting_logindisabled_without_tls(imap):
    c = imaplib.IMAP4("127.0.0.1", imap.port("imap"))
    assert "LOGINDISABLED" in c.capabilities
    assert "STARTTLS" in c.capabilities
    assert "AUTH=PLAIN" not in c.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED|STARTTLS"):
        c.login(USER, PASSWORD)
    c.logout()


def test_starttls_then_login(imap):
    c = imaplib.IMAP4("127.0.0.1", imap.port("imap"))
    c.starttls(_ctx())
    typ, caps = c.capability()
    caps = caps[0].decode().split()
    assert "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps and "STARTTLS" not in caps
    typ, data = c.login(USER, PASSWORD)
    assert typ == "OK"
    typ, caps = c.capability()
    assert "NAMESPACE" in caps[0].decode().split()
    typ, data = c.namespace()
    assert typ == "OK" and data[0] == b'(("" ".")) NIL NIL'
    typ, data = c.xatom("ENABLE", "CONDSTORE")
    assert typ == "OK"
    typ, data = c.noop()
    assert typ == "OK"
    assert c.logout()[0] == "BYE"


def test_imaps_login_and_id(imap):
    c = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"), ssl_context=_ctx())
    assert "LOGINDISABLED" not in c.capabilities
    typ, data = c._simple_command("ID", '("name" "pytest" "version" "1")')
    assert typ == "OK"
    assert c.untagged_responses.get("ID") == [b'("name" "Postern")']
    c.login(USER, PASSWORD)
    typ, data = c._simple_command("ID", "NIL")
    assert typ == "OK"
    c.logout()


def test_wrong_password_and_authenticate(imap):
    c = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"), ssl_context=_ctx())
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        c.login(USER, "wrong")
    c.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
    assert c.state == "AUTH"
    c.logout()
    # AUTHENTICATE LOGIN, two challenges
    c = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"), ssl_context=_ctx())
    answers = iter([USER.encode(), PASSWORD.encode()])
    c.authenticate("LOGIN", lambda _: next(answers))
    assert c.state == "AUTH"
    c.logout()


def test_sasl_ir_and_cancel(imap):
    r = Raw(imap.port("imaps"), tls=True)
    assert r.line().startswith(b"* OK")
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    r.send(b"a1 AUTHENTICATE PLAIN " + ir + b"\r\n")
    assert r.until_tagged(b"a1")[-1].startswith(b"a1 OK")
    r.send(b"a2 LOGOUT\r\n")
    assert r.until_tagged(b"a2")[-1].startswith(b"a2 OK")
    r.close()
    r = Raw(imap.port("imaps"), tls=True)
    r.line()
    r.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith(b"+")
    r.send(b"*\r\n")
    assert r.line().startswith(b"a1 BAD")
    r.send(b"a2 AUTHENTICATE PLAIN !!!notbase64\r\n")
    assert r.line().startswith(b"a2 BAD")
    r.send(b"a3 AUTHENTICATE GSSAPI\r\n")
    assert r.line().startswith(b"a3 NO")
    r.close()


def test_login_with_literals_and_pipelining(plain):
    r = Raw(plain.port("imap"))
    assert b"AUTH=PLAIN" in r.line()
    r.send(b"a1 LOGIN {%d}\r\n" % len(USER))
    assert r.line().startswith(b"+ ")
    # the password as LITERAL+, and a pipelined command after the login
    r.send(USER.encode() + b" {%d+}\r\n%s\r\na2 NAMESPACE\r\n" % (len(PASSWORD),
                                                                   PASSWORD.encode()))
    assert r.until_tagged(b"a1")[-1].startswith(b"a1 OK [CAPABILITY")
    lines = r.until_tagged(b"a2")
    assert lines[-1].startswith(b"a2 OK"), lines
    assert lines[0].startswith(b"* NAMESPACE")
    r.send(b"a3 LOGOUT\r\n")
    assert r.until_tagged(b"a3")[-1].startswith(b"a3 OK")
    r.close()


def test_plaintext_login_from_loopback_when_allowed(plain):
    c = imaplib.IMAP4("127.0.0.1", plain.port("imap"))
    assert "LOGINDISABLED" not in c.capabilities
    c.login(USER, PASSWORD)
    c.logout()


def test_bad_input_preauth(imap):
    r = Raw(imap.port("imap"))
    r.line()
    mark = imap.log_mark()
    r.send(b"+bad NOOP\r\n")
    assert r.line().startswith(b"* BAD")
    r.send(b"a1 SELECT INBOX\r\n")
    assert r.line().startswith(b"a1 BAD")
    r.send(b"a2 FROB\r\n")
    assert r.line().startswith(b"a2 BAD")
    r.send(b"a3 LOGIN {999999999}\r\n")
    assert r.line().startswith(b"a3 BAD [TOOBIG]")
    # still usable: the refused literal was never read
    r.send(b"a4 NOOP\r\n")
    assert r.line().startswith(b"a4 OK")
    r.send(b"a5 " + b"x" * 20000 + b"\r\n")
    assert r.line().startswith(b"a5 BAD")
    # that was the fifth error: the limit is 5
    assert r.line().startswith(b"* BYE")
    assert r.line() == b""
    r.close()
    imap.wait_log("too many errors", since=mark)
    assert imap.log_lines("BAD: client=", since=mark)


def test_nonsync_literal_over_limit_closes(imap):
    r = Raw(imap.port("imap"))
    r.line()
    r.send(b"a1 LOGIN {999999999+}\r\n")
    assert r.line().startswith(b"a1 BAD [TOOBIG]")
    assert r.line().startswith(b"* BYE")
    assert r.line() == b""
    r.close()


def test_commands_after_login_in_wrong_state(plain):
    r = Raw(plain.port("imap"))
    r.line()
    r.send(b"a1 LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
    assert r.until_tagged(b"a1")[-1].startswith(b"a1 OK")
    r.send(b"a2 LOGIN x y\r\n")
    assert r.line().startswith(b"a2 BAD")
    r.send(b"a3 STARTTLS\r\n")
    assert r.line().startswith(b"a3 BAD")
    r.send(b"a4 NOOP extra\r\n")
    assert r.line().startswith(b"a4 BAD")
    r.send(b"a5 ENABLE\r\n")
    assert r.line().startswith(b"a5 BAD")
    r.send(b"a6 ID (\"unbalanced\" \"x\"\r\n")
    assert r.line().startswith(b"a6 BAD")
    r.send(b"a7 LOGOUT\r\n")
    assert r.until_tagged(b"a7")[-1].startswith(b"a7 OK")
    r.close()


def test_starttls_injection_discarded(imap):
    raw = socket.create_connection(("127.0.0.1", imap.port("imap")), timeout=10)
    f = raw.makefile("rb")
    f.readline()
    raw.sendall(b"a1 STARTTLS\r\na2 LOGIN injected x\r\n")
    # read the OK byte by byte: nothing of the TLS stream may be buffered here
    line = b""
    while not line.endswith(b"\n"):
        line += raw.recv(1)
    assert line.startswith(b"a1 OK")
    tls = _ctx().wrap_socket(raw)
    tls.sendall(b"a3 NOOP\r\n")
    got = tls.recv(200)
    assert got.startswith(b"a3 OK"), got
    tls.close()


@pytest.fixture(scope="module")
def slow(request):
    """Short deadlines, to see them enforced."""
    inst = start_instance(users=(USER,), domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24",
                                  "imapd_loopback_plaintext_login": "yes",
                                  "imapd_preauth_deadline": "4s",
                                  "imapd_command_deadline": "2s"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


def _closed_within(r, seconds):
    """Lines until EOF, which must come within seconds."""
    r.sock.settimeout(seconds)
    lines = []
    while True:
        ln = r.line()
        if not ln:
            return lines
        lines.append(ln)


def test_trickled_command_cut_off(slow):
    r = Raw(slow.port("imap"))
    r.line()
    mark = slow.log_mark()
    r.send(b"a1 NO")
    lines = _closed_within(r, 10)
    assert lines and lines[-1].startswith(b"* BYE"), lines
    slow.wait_log("command line deadline exceeded", since=mark)
    r.close()


def test_preauth_deadline(slow):
    r = Raw(slow.port("imap"))
    r.line()
    mark = slow.log_mark()
    t0 = time.monotonic()
    got_bye = False
    while time.monotonic() - t0 < 10:
        try:
            r.send(b"n NOOP\r\n")
        except OSError:
            break
        ln = r.line()
        if not ln:
            break
        if ln.startswith(b"* BYE"):
            got_bye = True
            break
        time.sleep(0.5)
    assert got_bye
    assert time.monotonic() - t0 < 8
    slow.wait_log("pre-auth deadline exceeded", since=mark)
    r.close()


def test_login_still_works_with_deadlines(slow):
    c = imaplib.IMAP4("127.0.0.1", slow.port("imap"))
    c.login(USER, PASSWORD)
    time.sleep(5)                   # past the pre-auth deadline: it no longer applies
    assert c.noop()[0] == "OK"
    c.logout()


# ---- connection limits (anvil) and master's busy answer ----

# Extra services of the limits instance: name -> (offset from the port base, process
# limit, command).  Each has its own counters in anvil (they count per service).
LIMITED = {
    "imap-rate": (146, "-", "imapd -l -o imapd_client_connection_rate_limit=3"
                            " -o imapd_client_connection_count_limit=0"),
    "imap-busy": (147, "2", "imapd -l"),
}


@pytest.fixture(scope="module")
def limited(request):
    """imapd_client_connection_count_limit 2 on imap and imaps.  Only 127.0.0.1 (the
    harness's own checks) is an exception: the tests' clients come from other loopback
    addresses."""
    inst = start_instance(users=(USER,), domains=("example.test",), start=False,
                          config={"mynetworks": "127.0.0.1/32",
                                  "imapd_client_connection_count_limit": "2"})
    try:
        with open(f"{inst.conf_dir}/master.conf", "a") as f:
            for name, (offset, limit, cmd) in LIMITED.items():
                f.write(f"{name} inet {inst.base + offset} nobody y {limit} {cmd}\n")
        inst.start()
    except Exception:
        print(inst.log())
        inst.cleanup()
        raise
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


def _dial(inst, service, source, tls=False, timeout=10):
    """A connection from the loopback address source."""
    port = inst.port(service) if service in ("imap", "imaps") \
        else inst.base + LIMITED[service][0]
    s = connect_from(source, port, timeout)
    return _ctx().wrap_socket(s) if tls else s


_first_line = read_line
_closed = is_closed


def test_count_limit_says_bye_and_others_are_served(limited):
    """Two sessions from 127.0.0.2 are served; the third and fourth get the BYE at
    once and are closed; 127.0.0.3 still gets its greeting; the refusals of 127.0.0.2
    are logged once (once a minute per client and service)."""
    mark = limited.log_mark()
    held = []
    try:
        for _ in range(2):
            s = _dial(limited, "imap", "127.0.0.2")
            held.append(s)
            assert _first_line(s).startswith(b"* OK [CAPABILITY ")
        for _ in range(2):
            s = _dial(limited, "imap", "127.0.0.2")
            held.append(s)
            t0 = time.monotonic()
            assert _first_line(s) == b"* BYE [UNAVAILABLE] Too many connections\r\n"
            assert _closed(s)
            assert time.monotonic() - t0 < 5
        other = _dial(limited, "imap", "127.0.0.3")
        held.append(other)
        assert _first_line(other).startswith(b"* OK [CAPABILITY ")
        limited.wait_log("Connection concurrency limit exceeded", "[127.0.0.2]",
                         "service imap", since=mark)
        assert len(limited.log_lines("limit exceeded", "[127.0.0.2]", since=mark)) == 1
        assert not limited.log_lines("limit exceeded", "[127.0.0.3]", since=mark)
        # one leaves: there is room again
        held.pop(0).close()

        def room():
            u = _dial(limited, "imap", "127.0.0.2")
            held.append(u)
            return _first_line(u).startswith(b"* OK")
        wait_for(room, timeout=10, what="a slot of 127.0.0.2 to be free again")
    finally:
        for s in held:
            s.close()


def test_imaps_refusal_comes_after_the_handshake(limited):
    held = []
    try:
        for _ in range(2):
            s = _dial(limited, "imaps", "127.0.0.4", tls=True)
            held.append(s)
            assert _first_line(s).startswith(b"* OK [CAPABILITY ")
        s = _dial(limited, "imaps", "127.0.0.4", tls=True)
        held.append(s)
        assert _first_line(s) == b"* BYE [UNAVAILABLE] Too many connections\r\n"
    finally:
        for s in held:
            s.close()


def test_rate_limit_says_bye(limited):
    """imap-rate allows 3 connections a minute per client: the fourth from 127.0.0.5
    gets the BYE, 127.0.0.6 is still served, and one line is logged."""
    mark = limited.log_mark()
    for i in range(3):
        s = _dial(limited, "imap-rate", "127.0.0.5")
        try:
            assert _first_line(s).startswith(b"* OK "), i
            s.sendall(b"a LOGOUT\r\n")
        finally:
            s.close()
    for _ in range(2):
        s = _dial(limited, "imap-rate", "127.0.0.5")
        try:
            assert _first_line(s) == b"* BYE [UNAVAILABLE] Too many connections\r\n"
            assert _closed(s)
        finally:
            s.close()
    s = _dial(limited, "imap-rate", "127.0.0.6")
    try:
        assert _first_line(s).startswith(b"* OK ")
    finally:
        s.close()
    limited.wait_log("Connection rate limit exceeded", "[127.0.0.5]", "imap-rate",
                     since=mark)
    assert len(limited.log_lines("limit exceeded", "[127.0.0.5]", since=mark)) == 1


def test_master_answers_busy_when_every_imapd_is_taken(limited):
    """imap-busy has 2 processes: with both serving a session, master answers the next
    clients itself with a BYE (after about a second), logged once."""
    mark = limited.log_mark()
    held = []
    try:
        for source in ("127.0.0.7", "127.0.0.8"):
            s = _dial(limited, "imap-busy", source)
            held.append(s)
            assert _first_line(s).startswith(b"* OK ")
        t0 = time.monotonic()
        for _ in range(2):
            s = _dial(limited, "imap-busy", "127.0.0.9")
            try:
                assert _first_line(s) == b"* BYE Service busy\r\n"
                assert _closed(s)
            finally:
                s.close()
        assert time.monotonic() - t0 < 8
        limited.wait_log("service imap-busy: all 2 processes busy", since=mark)
        assert len(limited.log_lines("service imap-busy: all 2 processes busy",
                                     since=mark)) == 1
        for s in held:
            s.close()
        held = []

        def served():
            u = _dial(limited, "imap-busy", "127.0.0.9")
            try:
                return _first_line(u).startswith(b"* OK ")
            finally:
                u.close()
        wait_for(served, timeout=10, what="imap-busy to serve again")
    finally:
        for s in held:
            s.close()

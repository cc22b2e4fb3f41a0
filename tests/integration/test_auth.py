"""auth(8) against a live instance: login with a virtual user's password, token
lookup, failure delays, and malformed frames, spoken over QUEUE/login/auth with raw
netstring frames (the format of lib/util/attr.h) of protocol auth/3 (lib/mail/proto.h).
A login passes a client connection first, as smtpd and pop3d do: a TCP connection
accepted here from the client address the test wants auth to see."""

import os
import socket
import time

import pytest

from conftest import start_instance

USER = "dora@example.test"
PASSWORD = "s3cret pass"
PROTO = ("proto", "auth/3")


@pytest.fixture(scope="module")
def auth_mta():
    inst = start_instance(domains=("example.test",))
    try:
        inst.run("user", "add", USER, input=PASSWORD + "\n")
    except Exception:
        inst.cleanup()
        raise
    yield inst
    inst.cleanup()


def encode(pairs):
    out = b""
    for name, value in pairs:
        item = name.encode() + b"=" + (value if isinstance(value, bytes) else value.encode())
        out += str(len(item)).encode() + b":" + item + b","
    return out + b"0:,"


class Conn:
    def __init__(self, inst, timeout=15):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(os.path.join(inst.queue_dir(), "login", "auth"))
        self.buf = b""

    def close(self):
        self.s.close()

    def _more(self):
        data = self.s.recv(4096)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _netstring(self):
        while b":" not in self.buf:
            self._more()
        head, _, _ = self.buf.partition(b":")
        n = int(head)
        need = len(head) + 1 + n + 1
        while len(self.buf) < need:
            self._more()
        item = self.buf[len(head) + 1:len(head) + 1 + n]
        assert self.buf[need - 1:need] == b","
        self.buf = self.buf[need:]
        return item

    def read(self):
        attrs = {}
        while True:
            item = self._netstring()
            if item == b"":
                return attrs
            name, _, value = item.partition(b"=")
            attrs.setdefault(name.decode(), value.decode())

    def call(self, *pairs):
        self.s.sendall(encode((PROTO,) + pairs))
        r = self.read()
        assert r.pop("proto") == "auth/3", r
        return r

    def assert_closed(self):
        """The connection ends, after at most an error reply."""
        with pytest.raises((EOFError, ConnectionResetError)):
            for _ in range(2):
                r = self.read()
                assert set(r) == {"proto", "error"}, r


def client_connection(addr):
    """The server end of a TCP connection from addr (a loopback address), as an
    smtpd holds its client's."""
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cli.bind((addr, 0))
    cli.connect(lsn.getsockname())
    srv, _ = lsn.accept()
    lsn.close()
    return srv, cli


def pass_client(conn, addr):
    srv, cli = client_connection(addr)
    try:
        socket.send_fds(conn.s, [b"F"], [srv.fileno()])
    finally:
        srv.close()
        cli.close()


def login(conn, user, password, client="127.0.0.7"):
    pass_client(conn, client)
    return conn.call(("req", "auth"), ("service", "pop3"), ("user", user),
                     ("password", password))


def test_socket_directory(auth_mta):
    st = os.stat(os.path.join(auth_mta.queue_dir(), "login"))
    assert st.st_mode & 0o777 == 0o711


def test_login_and_lookup(auth_mta):
    mark = auth_mta.log_mark()
    c = Conn(auth_mta)
    try:
        r = login(c, "Dora@Example.TEST", PASSWORD)
        assert r["status"] == "ok", r
        assert r["user"] == USER
        token = r["token"]
        assert token.isprintable() and PASSWORD not in token
        # a second request on the same connection
        r = c.call(("req", "lookup"), ("token", token))
    finally:
        c.close()
    assert r["status"] == "ok", r
    assert r["user"] == USER
    assert int(r["uid"]) >= 0 and int(r["gid"]) >= 0
    if os.geteuid() == 0:
        import pwd
        assert int(r["uid"]) == pwd.getpwnam("vmail").pw_uid
    else:
        assert int(r["uid"]) == os.getuid()
    mail = os.path.join(auth_mta.conf_dir, "mail")
    assert r["maildir"].startswith(mail + "/")
    assert r["maildir"].rstrip("/") == auth_mta.maildir(USER)
    key = os.path.join(auth_mta.queue_dir(), "private", "auth.key")
    st = os.stat(key)
    assert st.st_size == 32 and st.st_mode & 0o777 == 0o600
    auth_mta.wait_log("auth ok: service=pop3, user=" + USER, since=mark)


def test_tampered_token(auth_mta):
    c = Conn(auth_mta)
    try:
        token = login(c, USER, PASSWORD)["token"]
        body, _, mac = token.partition(".")
        bad = body + "." + ("0" if mac[0] != "0" else "1") + mac[1:]
        assert c.call(("req", "lookup"), ("token", bad))["status"] == "fail"
        assert c.call(("req", "lookup"), ("token", "nonsense"))["status"] == "fail"
        assert c.call(("req", "lookup"), ("token", token))["status"] == "ok"
    finally:
        c.close()


def fresh_login(inst, user, password, client):
    """One login on a connection of its own, as smtpd and pop3d make them."""
    c = Conn(inst)
    try:
        return login(c, user, password, client=client)
    finally:
        c.close()


def test_wrong_password_gets_a_delay_for_the_caller(auth_mta):
    """auth answers at once and tells the caller how long to wait; the wait grows
    with the client's failures."""
    mark = auth_mta.log_mark()
    t0 = time.monotonic()
    r = fresh_login(auth_mta, USER, "wrong", "127.0.0.9")
    assert r["status"] == "fail", r
    first = int(r["delay"])
    r = fresh_login(auth_mta, "nobody@example.test", "wrong", "127.0.0.9")
    assert r["status"] == "fail", r
    second = int(r["delay"])
    assert time.monotonic() - t0 < 3.0              # no sleeping in auth
    assert first >= 1000 and second > first, (first, second)
    # the right password still works afterwards
    assert fresh_login(auth_mta, USER, PASSWORD, "127.0.0.9")["status"] == "ok"
    auth_mta.wait_log("auth failed: service=pop3, user=" + USER + ", client=127.0.0.9",
                      since=mark)


def test_login_without_a_client_connection_is_refused(auth_mta):
    """The client address comes from the connection passed, never from the frame."""
    mark = auth_mta.log_mark()
    c = Conn(auth_mta)
    try:
        r = c.call(("req", "auth"), ("service", "pop3"), ("user", USER),
                   ("password", PASSWORD))
        assert r["status"] == "tempfail", r
        assert "token" not in r
    finally:
        c.close()
    auth_mta.wait_log("the caller passed no client connection", since=mark)


def test_a_unix_socket_is_no_client_connection(auth_mta):
    mark = auth_mta.log_mark()
    c = Conn(auth_mta)
    a, b = socket.socketpair()
    try:
        socket.send_fds(c.s, [b"F"], [a.fileno()])
        r = c.call(("req", "auth"), ("service", "pop3"), ("user", USER),
                   ("password", PASSWORD))
        assert r["status"] == "tempfail", r
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass                            # closed at once, as it should be
    finally:
        a.close()
        b.close()
        c.close()
    auth_mta.wait_log("not a client's network connection", since=mark)


def test_system_user_unknown(auth_mta):
    c = Conn(auth_mta)
    try:
        r = login(c, "no-such-user-here", "x", client="127.0.0.5")
        assert r["status"] == "fail", r
    finally:
        c.close()


@pytest.mark.parametrize("garbage", [
    b"garbage that is no netstring",
    b"5:req=x,0:,",                                  # no version
    encode([PROTO, ("req", "x")]),                   # unknown request
    encode([PROTO, ("req", "auth"), ("user", USER)]),    # fields missing
    encode([PROTO, ("req", "auth"), ("service", "pop3"), ("user", USER),
            ("password", b"a\0b")]),
    encode([PROTO, ("req", "lookup"), ("token", "a"), ("token", "b")]),  # given twice
    b"99999999:",                                    # oversized
])
def test_garbage_closes_connection(auth_mta, garbage):
    c = Conn(auth_mta)
    try:
        c.s.sendall(garbage)
        c.assert_closed()
    finally:
        c.close()
    c = Conn(auth_mta)
    try:
        assert login(c, USER, PASSWORD)["status"] == "ok"
    finally:
        c.close()

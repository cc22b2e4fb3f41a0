"""POP3 under TLS: plaintext sent after STLS before the handshake is never answered
inside TLS (the STARTTLS injection class), and garbage in place of a ClientHello on
STLS or port 995 costs one connection, never the service."""

import os
import poplib
import socket
import ssl

import pytest

from conftest import start_instance
from instance import wait_for

USER = "alice@example.test"
PASSWORD = "secret"


@pytest.fixture(scope="module")
def popmta():
    inst = start_instance(users=(USER,), domains=("example.test",))
    wait_for(lambda: _greets(inst), what="POP3 port to answer")
    yield inst
    inst.cleanup()


def _greets(inst):
    try:
        with socket.create_connection(("127.0.0.1", inst.port("pop3")), timeout=2) as s:
            s.settimeout(5)
            return s.recv(100).startswith(b"+OK")
    except OSError:
        return False


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def read_line(sock):
    """One line, a byte at a time, so no TLS byte is consumed by a buffer."""
    line = b""
    while not line.endswith(b"\n"):
        ch = sock.recv(1)
        assert ch, "connection closed"
        line += ch
    return line


def test_stls_injection_discarded(popmta):
    with socket.create_connection(("127.0.0.1", popmta.port("pop3")), timeout=10) as raw:
        assert read_line(raw).startswith(b"+OK")
        raw.sendall(b"STLS\r\nUSER injected@example.test\r\n")
        assert read_line(raw).startswith(b"+OK"), "STLS refused"
        with ctx().wrap_socket(raw) as tls:
            tls.sendall(b"NOOP\r\n")
            first = read_line(tls)
            # Had "USER injected" been kept, its +OK would come first; NOOP in the
            # AUTHORIZATION state is an error, so the first reply must be -ERR.
            assert first.startswith(b"-ERR"), first
            tls.sendall(b"USER " + USER.encode() + b"\r\n")
            assert read_line(tls).startswith(b"+OK")
            tls.sendall(b"PASS " + PASSWORD.encode() + b"\r\n")
            assert read_line(tls).startswith(b"+OK")
            tls.sendall(b"QUIT\r\n")
            assert read_line(tls).startswith(b"+OK")


@pytest.mark.parametrize("where", ["stls", "pop3s"])
def test_garbage_instead_of_client_hello(popmta, where):
    port = popmta.port("pop3" if where == "stls" else "pop3s")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        if where == "stls":
            assert read_line(raw).startswith(b"+OK")
            raw.sendall(b"STLS\r\n")
            assert read_line(raw).startswith(b"+OK")
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(300))
        data = b""
        try:
            while len(data) < 100000:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"+OK" not in data
    # The service lives on: a proper TLS login works right after.
    p = poplib.POP3_SSL("127.0.0.1", popmta.port("pop3s"), timeout=30, context=ctx())
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")

"""Plain sockets for the tests that must see a server's first bytes themselves:
connections from a chosen loopback address, one line read whole, a close noticed."""

import socket
import ssl


def connect_from(source, port, timeout=10):
    """A TCP connection from the loopback address source to 127.0.0.1:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_line(s):
    """Bytes up to and including the first newline (or up to EOF)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def is_closed(s):
    """True when the server has closed s (EOF or reset) within s's timeout."""
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True


def tls_wrap(s):
    """s after a TLS handshake that trusts any certificate (the instances' own)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(s)

"""What the IMAP tests share about a live instance: whether its IMAP port greets."""

import socket


def greets(inst, service="imap"):
    """True when inst's IMAP port answers with its greeting (one bounded try)."""
    try:
        with socket.create_connection(("127.0.0.1", inst.port(service)), timeout=2) as s:
            s.settimeout(5)
            return s.recv(100).startswith(b"* OK")
    except OSError:
        return False

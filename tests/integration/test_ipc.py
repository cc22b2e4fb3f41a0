"""Protocol versions between daemons, against a live instance: a peer speaking
another version of a protocol (or none, as earlier releases did) is answered with an
error reply and logged as such, never misread; the right version is served.  Frames
are raw netstrings (lib/util/attr.h) written to the sockets under QUEUE/private and
QUEUE/login (names in lib/mail/proto.h)."""

import os
import socket

import pytest

from conftest import start_instance

USER = "alice@example.test"


@pytest.fixture(scope="module")
def ipc_mta():
    inst = start_instance(users=(USER,), domains=("example.test",))
    yield inst
    inst.cleanup()


def encode(pairs):
    out = b""
    for name, value in pairs:
        item = (name + "=" + value).encode()
        out += str(len(item)).encode() + b":" + item + b","
    return out + b"0:,"


def read_frames(sock):
    """Every frame until the peer closes: a list of lists of (name, value)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    frames, attrs = [], []
    while data:
        head, _, rest = data.partition(b":")
        n = int(head)
        item, data = rest[:n], rest[n + 1:]
        if not item:
            frames.append(attrs)
            attrs = []
            continue
        name, _, value = item.partition(b"=")
        attrs.append((name.decode(), value.decode()))
    return frames


def exchange(inst, path, frame, close_after=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    try:
        s.connect(os.path.join(inst.queue_dir(), path))
        s.sendall(frame)
        if close_after:
            s.shutdown(socket.SHUT_WR)
        return read_frames(s)
    finally:
        s.close()


def test_resolve_current_version(ipc_mta):
    frames = exchange(ipc_mta, "private/resolve",
                      encode([("proto", "resolve/2"), ("req", "verify"), ("addr", USER)]))
    assert len(frames) == 1
    reply = dict(frames[0])
    assert reply["proto"] == "resolve/2"
    assert reply["status"] == "ok", reply
    assert reply["rcpt"] == USER


@pytest.mark.parametrize("proto, message", [
    ("resolve/1", "protocol resolve version 1, expected 2"),
    ("resolve/3", "protocol resolve version 3, expected 2"),
    ("auth/3", "protocol auth version 3, expected resolve version 2"),
    (None, "protocol resolve version 1 (no \"proto\" attribute), expected 2"),
])
def test_resolve_other_version(ipc_mta, proto, message):
    pairs = [("req", "verify"), ("addr", USER)]
    if proto is not None:
        pairs.insert(0, ("proto", proto))
    # the connection is left open by the client: the daemon ends it
    mark = ipc_mta.log_mark()
    frames = exchange(ipc_mta, "private/resolve", encode(pairs), close_after=False)
    assert frames == [[("proto", "resolve/2"), ("error", message)]]
    ipc_mta.wait_log(message, since=mark)


def test_auth_other_version(ipc_mta):
    mark = ipc_mta.log_mark()
    frames = exchange(ipc_mta, "login/auth",
                      encode([("proto", "auth/7"), ("req", "lookup"), ("token", "x")]),
                      close_after=False)
    assert frames == [[("proto", "auth/3"), ("error", "protocol auth version 7, expected 3")]]
    ipc_mta.wait_log("protocol auth version 7, expected 3", since=mark)


def test_local_other_version(ipc_mta):
    mark = ipc_mta.log_mark()
    frames = exchange(ipc_mta, "private/local",
                      encode([("proto", "deliver/1"), ("req", "deliver")]), close_after=False)
    assert frames == [[("proto", "deliver/2"),
                       ("error", "protocol deliver version 1, expected 2")]]
    ipc_mta.wait_log("protocol deliver version 1, expected 2", since=mark)


def test_qmgr_wakeup_other_version(ipc_mta):
    # one-way: no reply, a log line, and qmgr keeps working
    mark = ipc_mta.log_mark()
    exchange(ipc_mta, "private/qmgr", encode([("proto", "qmgr/5"), ("req", "wakeup")]))
    ipc_mta.wait_log("bad wake-up frame: protocol qmgr version 5, expected 2", since=mark)
    with ipc_mta.smtp() as c:
        c.sendmail("bob@example.test", [USER],
                   b"Subject: after\r\nMessage-ID: <after-wakeup@ipc.test>\r\n\r\n"
                   b"still flowing\r\n")
    ipc_mta.wait_message(USER, "<after-wakeup@ipc.test>")

"""anvil(8), the shared counter, against a live instance: raw frames on its sockets
(QUEUE/private/anvil, QUEUE/login/anvil) as any daemon sends them.  Connections are
counted per service and client and released when the process that claimed them dies;
login failures are counted per client and per account in a window of
anvil_rate_time_unit; a malformed frame closes only that connection."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import start_instance
from instance import wait_for

UNIT_S = 2                                      # anvil_rate_time_unit of the instance


@pytest.fixture(scope="module")
def anvil_mta():
    inst = start_instance(config={"anvil_rate_time_unit": f"{UNIT_S}s"})
    yield inst
    inst.cleanup()


def encode(*pairs):
    out = b""
    for name, value in pairs:
        item = (name + "=" + str(value)).encode()
        out += str(len(item)).encode() + b":" + item + b","
    return out + b"0:,"


def request(req, **attrs):
    return encode(("proto", "anvil/2"), ("req", req), *attrs.items())


class Peer:
    """One connection to anvil, as one daemon process keeps it."""

    def __init__(self, inst, path="private/anvil"):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(os.path.join(inst.queue_dir(), path))
        self.buf = b""

    def frame(self):
        """The next frame as a dict, or None when anvil closed the connection."""
        while True:
            end = self._frame_end()
            if end is not None:
                raw, self.buf = self.buf[:end], self.buf[end:]
                return self._parse(raw)
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def _frame_end(self):
        pos = 0
        while True:
            colon = self.buf.find(b":", pos)
            if colon < 0:
                return None
            n = int(self.buf[pos:colon])
            if len(self.buf) < colon + 1 + n + 1:
                return None
            pos = colon + 1 + n + 1
            if n == 0:
                return pos

    @staticmethod
    def _parse(raw):
        out, pos = {}, 0
        while True:
            colon = raw.index(b":", pos)
            n = int(raw[pos:colon])
            item = raw[colon + 1:colon + 1 + n]
            pos = colon + 1 + n + 1
            if n == 0:
                return out
            name, _, value = item.partition(b"=")
            out[name.decode()] = value.decode()

    def call(self, req, **attrs):
        self.sock.sendall(request(req, **attrs))
        return self.frame()

    def connect(self, service, client):
        r = self.call("connect", service=service, client=client)
        assert r["status"] == "ok", r
        return int(r["conns"]), int(r["rate"])

    def login(self, req, client, account):
        r = self.call(req, client=client, account=account)
        assert r["status"] == "ok", r
        return (int(r["client_fails"]), int(r["account_fails"])) if req != "login_ok" else r

    def close(self):
        self.sock.close()


def anvil_pids(inst):
    return inst.daemon_pids("anvil")


def test_counts_per_service_and_client(anvil_mta):
    a, b = Peer(anvil_mta), Peer(anvil_mta)
    try:
        assert a.connect("t1", "127.0.0.3") == (1, 1)
        assert a.connect("t1", "127.0.0.3") == (2, 2)
        assert b.connect("t1", "127.0.0.3") == (3, 3)
        assert b.connect("t1", "127.0.0.4") == (1, 1)
        assert b.connect("t1b", "127.0.0.3") == (1, 1)
        assert b.call("disconnect", service="t1", client="127.0.0.3")["status"] == "ok"
        # a disconnect b does not hold changes nothing
        assert b.call("disconnect", service="t1", client="127.0.0.3")["status"] == "ok"
        conns, rate = b.connect("t1", "127.0.0.3")
        assert (conns, rate) == (3, 4)
    finally:
        a.close()
        b.close()
    assert len(anvil_pids(anvil_mta)) == 1


def test_a_process_that_dies_releases_its_slots(anvil_mta):
    """A process holding three connections of a client is killed with SIGKILL: they
    are released, and only the survivor's stays counted."""
    path = os.path.join(anvil_mta.queue_dir(), "private", "anvil")
    child = subprocess.Popen([sys.executable, "-c", f"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect({path!r})
req = {request("connect", service="t2", client="127.0.0.3")!r}
for _ in range(3):
    s.sendall(req)
    got = b""
    while not got.endswith(b"0:,"):
        got += s.recv(4096)
print("held", flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    survivor = Peer(anvil_mta)
    try:
        assert child.stdout.readline().strip() == "held"
        assert survivor.connect("t2", "127.0.0.3") == (4, 4)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        # anvil sees the connection close: the next count is the survivor's plus one
        other = Peer(anvil_mta)

        def released():
            conns, _ = other.connect("t2", "127.0.0.3")
            other.call("disconnect", service="t2", client="127.0.0.3")
            return conns == 2
        wait_for(released, timeout=10, what="the killed process's slots to be released")
        other.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        survivor.close()


def test_login_failures_per_client_and_per_account(anvil_mta):
    p = Peer(anvil_mta)
    try:
        assert p.login("login_query", "127.0.0.5", "joe@example.test") == (0, 0)
        assert p.login("login_fail", "127.0.0.5", "joe@example.test") == (1, 1)
        assert p.login("login_fail", "127.0.0.5", "JOE@Example.test") == (2, 2)
        assert p.login("login_fail", "127.0.0.6", "joe@example.test") == (1, 3)
        assert p.login("login_fail", "127.0.0.5", "ann@example.test") == (3, 1)
        assert p.login("login_query", "127.0.0.5", "joe@example.test") == (3, 3)
        # counted across connections (that is, across auth processes)
        q = Peer(anvil_mta)
        assert q.login("login_query", "127.0.0.5", "joe@example.test") == (3, 3)
        q.close()
        # joe logs in from 127.0.0.5: his failures from there are forgotten
        p.login("login_ok", "127.0.0.5", "joe@example.test")
        assert p.login("login_query", "127.0.0.5", "joe@example.test") == (1, 1)
        assert p.login("login_query", "127.0.0.6", "joe@example.test") == (1, 1)
    finally:
        p.close()


def test_window_expiry(anvil_mta):
    """With anvil_rate_time_unit = 2s, failures and rates go back to zero after the
    window, and not before."""
    p = Peer(anvil_mta)
    try:
        start = time.monotonic()
        assert p.login("login_fail", "127.0.0.7", "w@example.test") == (1, 1)
        assert p.login("login_fail", "127.0.0.7", "w@example.test") == (2, 2)
        assert p.connect("t3", "127.0.0.7") == (1, 1)
        assert p.connect("t3", "127.0.0.7") == (2, 2)
        wait_for(lambda: p.login("login_query", "127.0.0.7", "w@example.test") == (0, 0),
                 timeout=UNIT_S + 5, interval=0.1, what="the failures' window to end")
        assert time.monotonic() - start >= UNIT_S - 0.1
        # the open connections stay; the rate starts again
        assert p.connect("t3", "127.0.0.7") == (3, 1)
    finally:
        p.close()


def test_limit_reported_once_a_minute(anvil_mta):
    p, q = Peer(anvil_mta), Peer(anvil_mta)
    try:
        assert p.call("limit", service="t4", client="127.0.0.8")["log"] == "yes"
        assert q.call("limit", service="t4", client="127.0.0.8")["log"] == "no"
        assert p.call("limit", service="t4", client="127.0.0.8")["log"] == "no"
        assert q.call("limit", service="t4", client="127.0.0.9")["log"] == "yes"
    finally:
        p.close()
        q.close()


@pytest.mark.parametrize("junk", [
    b"garbage",
    b"5:abc,0:,",                                   # no '='
    b"01:a,0:,",                                    # leading zero
    b"99999:" + b"x" * 5000,                        # larger than a frame may be
    encode(("proto", "anvil/2")),                   # no request
    encode(("proto", "anvil/2"), ("req", "explode")),
    encode(("proto", "anvil/2"), ("req", "connect"), ("service", "smtp")),
    encode(("proto", "anvil/2"), ("req", "connect"), ("service", "s"), ("client", "c" * 600)),
])
def test_malformed_frames_close_that_connection_only(anvil_mta, junk):
    pids = anvil_pids(anvil_mta)
    keep = Peer(anvil_mta)
    bad = Peer(anvil_mta)
    mark = anvil_mta.log_mark()
    try:
        assert keep.connect("t5", "127.0.0.3")[0] >= 1
        bad.sock.sendall(junk)
        assert bad.frame() is None                  # closed without a reply
        anvil_mta.wait_log("anvil[", "warning:", since=mark)
        assert keep.connect("t5", "127.0.0.3")[0] >= 2
        assert anvil_pids(anvil_mta) == pids
    finally:
        keep.close()
        bad.close()


def test_other_version_is_answered_and_closed(anvil_mta):
    p = Peer(anvil_mta)
    try:
        p.sock.sendall(encode(("proto", "anvil/1"), ("req", "connect"),
                              ("service", "smtp"), ("client", "127.0.0.3")))
        r = p.frame()
        assert "version 1, expected 2" in r.get("error", ""), r
        assert p.frame() is None
    finally:
        p.close()


def test_login_socket_counts_connections_only(anvil_mta):
    """login/anvil is for the pre-auth processes: connection counts, no login
    requests (any local user can reach it)."""
    p = Peer(anvil_mta, "login/anvil")
    mark = anvil_mta.log_mark()
    try:
        assert p.connect("t6", "127.0.0.3") == (1, 1)
        assert p.call("limit", service="t6", client="127.0.0.3")["log"] == "yes"
        assert p.call("login_fail", client="127.0.0.3", account="x") is None
        anvil_mta.wait_log("login_fail", "not allowed", since=mark)
        q = Peer(anvil_mta)
        assert q.login("login_query", "127.0.0.3", "x") == (0, 0)
        q.close()
    finally:
        p.close()

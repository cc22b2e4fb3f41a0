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
from client_socket import connect_from, is_closed, read_line, tls_wrap

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



def test_reload_new_clients_go_to_a_new_anvil(anvil_mta):
    """After a reload the old anvil serves the clients it has until they leave (then
    exits); new clients reach the new one."""
    old = Peer(anvil_mta)
    try:
        assert old.connect("t7", "127.0.0.3") == (1, 1)
        (old_pid,) = anvil_pids(anvil_mta)
        anvil_mta.reload(daemons=("qmgr",))
        new = Peer(anvil_mta)
        try:
            assert new.connect("t7", "127.0.0.3") == (1, 1)
            wait_for(lambda: len(anvil_pids(anvil_mta)) == 2, timeout=10,
                     what="a second anvil after the reload")
            # the old one still serves its client
            assert old.connect("t7", "127.0.0.3") == (2, 2)
            assert old_pid in anvil_pids(anvil_mta)
        finally:
            new.close()
    finally:
        old.close()
    wait_for(lambda: old_pid not in anvil_pids(anvil_mta), timeout=10,
             what="the old anvil to exit once its last client left")
    assert len(anvil_pids(anvil_mta)) == 1

# ---- limits in smtpd, pop3d -l and master ----

# Extra services of the limits instance: name -> (offset from the port base, limit,
# command).  Each one's own limits are set with -o, so that the tests do not meet.
EXTRA = {
    "smtp-rate": (26, "-", "smtpd -o smtpd_client_connection_rate_limit=5"
                           " -o smtpd_client_connection_count_limit=0"),
    "smtp-kill": (27, "-", "smtpd -o smtpd_client_connection_count_limit=2"),
    "smtp-busy": (28, "2", "smtpd -o smtpd_client_connection_count_limit=0"),
    "smtp-scale": (29, "30", "smtpd -o max_idle=2s"),
    "pop3-busy": (111, "2", "pop3d -l"),
    "smtps-busy": (466, "1", "smtpd -o smtpd_tls_wrappermode=yes"),
    "smtps-limit": (467, "-", "smtpd -o smtpd_tls_wrappermode=yes"
                              " -o smtpd_client_connection_count_limit=1"),
}


@pytest.fixture(scope="module")
def limits_mta():
    # Only 127.0.0.1 (the harness's own checks) is an exception: the clients of the
    # tests come from other loopback addresses.
    inst = start_instance(start=False, config={
        "mynetworks": "127.0.0.1/32",
        "smtpd_client_connection_count_limit": "50",
        "pop3d_client_connection_count_limit": "3",
    })
    try:
        with open(os.path.join(inst.conf_dir, "master.conf"), "a") as f:
            for name, (offset, limit, cmd) in EXTRA.items():
                user = "nobody" if cmd.startswith("pop3d") else "-"
                f.write(f"{name} inet {inst.base + offset} {user} y {limit} {cmd}\n")
        inst.start()
    except Exception:
        print(inst.log())
        inst.cleanup()
        raise
    yield inst
    inst.cleanup()


def _sanitized():
    """True for a build with AddressSanitizer, whose processes start several times
    slower (the flood needs some fifty smtpd processes started)."""
    from instance import LIBEXEC
    with open(os.path.join(LIBEXEC, "smtpd"), "rb") as f:
        return b"__asan_init" in f.read()


# Not a speed target (make bench measures): without the limits the flood would hold
# every process for smtpd_timeout (300s) and 127.0.0.4 would get master's "busy"
# refusal, never a 220; the bound leaves room for a loaded machine.
GREETING_BOUND_S = 45 if _sanitized() else 30


def port_of(inst, name):
    return inst.port(name) if name in ("smtp", "pop3", "pop3s", "smtps") \
        else inst.base + EXTRA[name][0]


def dial(inst, service, source, timeout=10):
    """A TCP connection from the loopback address source to a service."""
    return connect_from(source, port_of(inst, service), timeout)


def first_line(s):
    return read_line(s).decode(errors="replace")


def service_pids(inst, daemon, service):
    """Pids of daemon's processes started for the master.conf service."""
    out = []
    for pid in inst.daemon_pids(daemon):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"-s" in argv and argv.index(b"-s") + 1 < len(argv) \
                and argv[argv.index(b"-s") + 1] == service.encode():
            out.append(pid)
    return out


def test_flood_from_one_address_leaves_room_for_others(limits_mta):
    """150 connections at once from 127.0.0.3: at most 50 (the count limit) are
    served, the rest get 421 at once; meanwhile 127.0.0.4 gets its greeting (within
    GREETING_BOUND_S), and the refusals are logged once."""
    import selectors
    mark = limits_mta.log_mark()
    flood = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(150):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.3", 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", limits_mta.port("smtp")))
            flood.append(s)
            sel.register(s, selectors.EVENT_READ)
        start = time.monotonic()
        other = dial(limits_mta, "smtp", "127.0.0.4", timeout=GREETING_BOUND_S)
        try:
            assert first_line(other).startswith("220 "), "no greeting for 127.0.0.4"
        finally:
            other.close()
        assert time.monotonic() - start < GREETING_BOUND_S

        replies = {}
        deadline = time.monotonic() + 30
        while len(replies) < 150 and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                try:
                    data = s.recv(1024)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                replies[s] = data.decode(errors="replace")
                sel.unregister(s)
        assert len(replies) == 150, f"only {len(replies)} of 150 answered"
        greeted = [r for r in replies.values() if r.startswith("220 ")]
        refused = [r for r in replies.values() if r.startswith("421 4.7.0 ")]
        assert 1 <= len(greeted) <= 50, len(greeted)
        assert len(greeted) + len(refused) == 150
        assert all("Error: too many connections from 127.0.0.3" in r for r in refused)
    finally:
        for s in flood:
            s.close()
    limits_mta.wait_log("Connection concurrency limit exceeded", "[127.0.0.3]",
                        "service smtp", since=mark)
    assert len(limits_mta.log_lines("limit exceeded", "[127.0.0.3]", since=mark)) == 1
    # the refused ones are not logged one by one
    assert len(limits_mta.log_lines(": connect from [127.0.0.3]", since=mark)) <= 50


def test_smtp_count_limit_reply(limits_mta):
    held = []
    try:
        for _ in range(50):
            s = dial(limits_mta, "smtp", "127.0.0.5")
            held.append(s)
            assert first_line(s).startswith("220 ")
        s = dial(limits_mta, "smtp", "127.0.0.5")
        held.append(s)
        assert first_line(s) == ("421 4.7.0 mx.example.test Error: too many connections "
                                 "from 127.0.0.5\r\n")
        assert is_closed(s)
        # another address is not affected
        t = dial(limits_mta, "smtp", "127.0.0.9")
        held.append(t)
        assert first_line(t).startswith("220 ")
        # one leaves: there is room again
        held[0].close()
        held.pop(0)

        def room():
            u = dial(limits_mta, "smtp", "127.0.0.5")
            held.append(u)
            return first_line(u).startswith("220 ")
        wait_for(room, timeout=10, what="a slot of 127.0.0.5 to be free again")
    finally:
        for s in held:
            s.close()


def test_pop3_count_limit_reply(limits_mta):
    mark = limits_mta.log_mark()
    held = []
    try:
        for _ in range(3):
            s = dial(limits_mta, "pop3", "127.0.0.5")
            held.append(s)
            assert first_line(s).startswith("+OK")
        for _ in range(3):
            s = dial(limits_mta, "pop3", "127.0.0.5")
            held.append(s)
            assert first_line(s) == "-ERR [SYS/TEMP] too many connections\r\n"
            assert is_closed(s)
        limits_mta.wait_log("Connection concurrency limit exceeded", "[127.0.0.5]",
                            "service pop3", since=mark)
        assert len(limits_mta.log_lines("limit exceeded", "[127.0.0.5]", "pop3",
                                        since=mark)) == 1
    finally:
        for s in held:
            s.close()


def test_pop3s_refusal_comes_after_the_handshake(limits_mta):
    held = []
    try:
        for _ in range(3):
            s = tls_wrap(dial(limits_mta, "pop3s", "127.0.0.6"))
            held.append(s)
            assert first_line(s).startswith("+OK")
        s = tls_wrap(dial(limits_mta, "pop3s", "127.0.0.6"))
        held.append(s)
        assert first_line(s) == "-ERR [SYS/TEMP] too many connections\r\n"
    finally:
        for s in held:
            s.close()


def test_smtps_refusal_comes_after_the_handshake(limits_mta):
    held = []
    try:
        s = tls_wrap(dial(limits_mta, "smtps-limit", "127.0.0.6"))
        held.append(s)
        assert first_line(s).startswith("220 ")
        s = tls_wrap(dial(limits_mta, "smtps-limit", "127.0.0.6"))
        held.append(s)
        assert first_line(s) == ("421 4.7.0 mx.example.test Error: too many connections "
                                 "from 127.0.0.6\r\n")
    finally:
        for s in held:
            s.close()


def test_smtp_rate_limit(limits_mta):
    mark = limits_mta.log_mark()
    for i in range(5):
        s = dial(limits_mta, "smtp-rate", "127.0.0.7")
        try:
            assert first_line(s).startswith("220 "), i
            s.sendall(b"QUIT\r\n")
        finally:
            s.close()
    for _ in range(3):
        s = dial(limits_mta, "smtp-rate", "127.0.0.7")
        try:
            assert first_line(s).startswith("421 4.7.0 mx.example.test Error: too many "
                                             "connections from 127.0.0.7")
        finally:
            s.close()
    s = dial(limits_mta, "smtp-rate", "127.0.0.8")
    try:
        assert first_line(s).startswith("220 ")
    finally:
        s.close()
    limits_mta.wait_log("Connection rate limit exceeded", "[127.0.0.7]", "smtp-rate",
                        since=mark)
    assert len(limits_mta.log_lines("limit exceeded", "[127.0.0.7]", since=mark)) == 1


def test_killed_smtpd_releases_its_slot(limits_mta):
    """smtp-kill allows 2 connections per client.  Two are open; one smtpd is killed
    with SIGKILL (it tells anvil nothing): its slot goes with it."""
    held = []
    try:
        for _ in range(2):
            s = dial(limits_mta, "smtp-kill", "127.0.0.6")
            held.append(s)
            assert first_line(s).startswith("220 ")
        s = dial(limits_mta, "smtp-kill", "127.0.0.6")
        assert first_line(s).startswith("421 ")
        s.close()
        pids = service_pids(limits_mta, "smtpd", "smtp-kill")
        assert len(pids) >= 2
        os.kill(pids[0], signal.SIGKILL)

        def served():
            u = dial(limits_mta, "smtp-kill", "127.0.0.6", timeout=15)
            line = first_line(u)
            if line.startswith("220 "):
                held.append(u)
                return True
            u.close()
            return False
        wait_for(served, timeout=20, interval=0.2,
                 what="a connection from 127.0.0.6 served after the kill")
    finally:
        for s in held:
            s.close()


def test_master_answers_busy_when_every_process_is_taken(limits_mta):
    mark = limits_mta.log_mark()
    held = []
    try:
        for service, greeting, busy in (
                ("smtp-busy", "220 ", "421 4.7.0 Service busy, try again later\r\n"),
                ("pop3-busy", "+OK", "-ERR [SYS/TEMP] Service busy\r\n")):
            for _ in range(2):
                s = dial(limits_mta, service, "127.0.0.1")
                held.append(s)
                assert first_line(s).startswith(greeting)
            start = time.monotonic()
            for _ in range(3):
                s = dial(limits_mta, service, "127.0.0.1", timeout=10)
                try:
                    assert first_line(s) == busy
                    assert is_closed(s)
                finally:
                    s.close()
            assert time.monotonic() - start < 8
            limits_mta.wait_log(f"service {service}: all 2 processes busy", since=mark)
            assert len(limits_mta.log_lines(f"service {service}: all 2 processes busy",
                                            since=mark)) == 1
        # implicit TLS: closed without a word
        s = tls_wrap(dial(limits_mta, "smtps-busy", "127.0.0.1"))
        held.append(s)
        assert first_line(s).startswith("220 ")
        s = dial(limits_mta, "smtps-busy", "127.0.0.1")
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        finally:
            s.close()
        # a process free again serves the next client
        for s in held:
            s.close()
        held = []

        def served():
            u = dial(limits_mta, "smtp-busy", "127.0.0.1")
            try:
                return first_line(u).startswith("220 ")
            finally:
                u.close()
        wait_for(served, timeout=10, what="smtp-busy to serve again")
    finally:
        for s in held:
            s.close()


def test_processes_scale_up_and_down(limits_mta):
    """20 sessions at once on smtp-scale (limit 30, max_idle 2s): 20 processes; when
    the sessions end, they exit again."""
    held = []
    try:
        assert len(service_pids(limits_mta, "smtpd", "smtp-scale")) <= 1
        for _ in range(20):
            held.append(dial(limits_mta, "smtp-scale", "127.0.0.1"))
        for s in held:
            assert first_line(s).startswith("220 ")
        n = len(service_pids(limits_mta, "smtpd", "smtp-scale"))
        assert 20 <= n <= 30, n
    finally:
        for s in held:
            s.close()
    wait_for(lambda: not service_pids(limits_mta, "smtpd", "smtp-scale"), timeout=20,
             what="the idle smtp-scale processes to exit")

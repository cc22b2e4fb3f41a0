"""tlsproxy(8): TLS clients of imapd and pop3d are relayed by one proxy process, so
that after login none of them holds a process of its own.  Fifty logged-in IMAPS
connections add no process per connection and each still works (NOOP, IDLE woken by
a delivery and by another connection's STORE); a client that stalls in its handshake
holds up no one; garbage instead of a ClientHello closes that connection with a log
line and the proxy lives on; a proxy at its connection limit refuses at once and the
pre-auth process does TLS itself; after a reload the old proxy keeps its connections
until they end while a new one serves the new clients; a handshake not done by the
pre-auth deadline is cut off by the proxy; a proxy out of descriptors pauses taking
requests instead of spinning."""

import imaplib
import os
import resource
import socket
import ssl
import time

import pytest

from conftest import start_instance
from instance import wait_for
from imap_instance import LineClient, greets

USER = "alice@example.test"
OTHER = "bob@example.test"
PASSWORD = "secret"
TIMEOUT = 30
MANY = 50


def _ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _instance(**config):
    settings = {"mynetworks": "192.0.2.0/24",
                "imapd_client_connection_count_limit": "0",
                "imapd_client_connection_rate_limit": "0"}
    settings.update(config)
    inst = start_instance(users=(USER, OTHER), domains=("example.test",), config=settings)
    wait_for(lambda: greets(inst), what="IMAP port to answer")
    return inst


@pytest.fixture(scope="module")
def imap():
    inst = _instance()
    yield inst
    inst.cleanup()


def TLSRaw(inst, user=USER):
    """A logged-in IMAPS connection read line by line, for IDLE."""
    return LineClient(inst, user, PASSWORD, tls=True, timeout=TIMEOUT)


def _processes(inst):
    return {name: len(inst.daemon_pids(name)) for name in ("imapd", "tlsproxy")}


def test_many_tls_connections_share_one_proxy(imap):
    before = _processes(imap)
    conns = []
    try:
        for _ in range(MANY):
            conns.append(TLSRaw(imap))
        after = _processes(imap)
        assert after["tlsproxy"] == 1, after
        # pre-auth processes are reused and the session process is one for the user:
        # the count must not grow with the connections (it did: one each)
        assert after["imapd"] <= before["imapd"] + 6, (before, after)
        for c in conns:
            assert c.cmd(b"t NOOP")[-1].startswith(b"t OK")
        for c in conns:
            c.cmd(b"t SELECT INBOX")
            c.idle()
        imap.submit("x@example.test", [USER], b"Subject: wake\r\n\r\nhello\r\n")
        for c in conns:
            c.wait_for_line(rb"^\* 1 EXISTS", 20)
        # another connection's STORE reaches every idler
        other = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"), ssl_context=_ctx(),
                                  timeout=TIMEOUT)
        other.login(USER, PASSWORD)
        other.select("INBOX")
        assert other.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
        for c in conns:
            c.wait_for_line(rb"^\* 1 FETCH .*\\Flagged", 10)
            c.done()
        other.logout()
        assert _processes(imap)["tlsproxy"] == 1
    finally:
        for c in conns:
            c.close()


def test_stalled_handshake_holds_up_no_one(imap):
    stalled = socket.create_connection(("127.0.0.1", imap.port("imaps")), timeout=TIMEOUT)
    try:
        stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")   # a ClientHello's start
        start = time.monotonic()
        c = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"), ssl_context=_ctx(),
                              timeout=TIMEOUT)
        c.login(OTHER, PASSWORD)
        assert c.noop()[0] == "OK"
        c.logout()
        assert time.monotonic() - start < 5
    finally:
        stalled.close()


def test_garbage_instead_of_client_hello(imap):
    wait_for(lambda: imap.daemon_pids("tlsproxy"), what="a tlsproxy process")
    proxy = imap.daemon_pids("tlsproxy")
    mark = imap.log_mark()
    with socket.create_connection(("127.0.0.1", imap.port("imaps")), timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)) * 4)
        got = b""
        for _ in range(100):            # bounded: the proxy closes, recv returns b""
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        assert b"* OK" not in got, got
    imap.wait_log("tlsproxy", "client=[127.0.0.1]: TLS handshake failed", since=mark)
    assert imap.daemon_pids("tlsproxy") == proxy
    c = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"), ssl_context=_ctx(), timeout=TIMEOUT)
    c.login(USER, PASSWORD)
    c.logout()


def test_starttls_garbage_and_pop3s_through_the_proxy(imap):
    import poplib
    mark = imap.log_mark()
    with socket.create_connection(("127.0.0.1", imap.port("imap")), timeout=TIMEOUT) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"* OK")
        s.sendall(b"s STARTTLS\r\n")
        assert f.readline().startswith(b"s OK")
        s.sendall(b"\x00" * 64 + b"not TLS at all\r\n")
        try:
            assert f.read() == b""
        except ConnectionResetError:
            pass                        # closed with our bytes unread: a reset
    imap.wait_log("tlsproxy", "TLS handshake failed", since=mark)
    p = poplib.POP3_SSL("127.0.0.1", imap.port("pop3s"), context=_ctx(), timeout=TIMEOUT)
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()
    imap.wait_log("tlsproxy", "service=pop3s: TLS TLSv1.", since=mark)


def test_full_proxy_refuses_and_the_preauth_process_does_tls():
    inst = _instance(tlsproxy_connection_limit="2")
    try:
        mark = inst.log_mark()
        conns = [imaplib.IMAP4_SSL("127.0.0.1", inst.port("imaps"), ssl_context=_ctx(),
                                   timeout=TIMEOUT) for _ in range(3)]
        for c in conns:
            c.login(USER, PASSWORD)
            assert c.noop()[0] == "OK"
        inst.wait_log("TLS done in this process", "too many connections", since=mark)
        for c in conns:
            c.logout()
    finally:
        inst.cleanup()


def test_reload_keeps_relayed_connections(imap):
    """After a reload the old proxy keeps relaying its connections and takes no new
    ones; a new proxy serves the clients that come after; the old one ends with its
    last connection."""
    old = TLSRaw(imap)
    old.cmd(b"t SELECT INBOX")
    wait_for(lambda: len(imap.daemon_pids("tlsproxy")) == 1, what="one tlsproxy")
    old_proxy = imap.daemon_pids("tlsproxy")[0]
    mark = imap.log_mark()
    imap.run("reload")
    imap.wait_log("reload -- configuration", since=mark)
    new = TLSRaw(imap)
    assert new.cmd(b"t NOOP")[-1].startswith(b"t OK")
    assert old.cmd(b"t NOOP")[-1].startswith(b"t OK")
    assert len(imap.daemon_pids("tlsproxy")) == 2
    old.close()
    wait_for(lambda: old_proxy not in imap.daemon_pids("tlsproxy"),
             what="the old tlsproxy to end with its last connection")
    assert new.cmd(b"t NOOP")[-1].startswith(b"t OK")
    new.close()


def test_stalled_handshake_is_cut_at_the_preauth_deadline():
    """A client that starts a handshake and never ends it is closed by the proxy once
    the pre-auth deadline passes, with a log line, and the proxy serves on."""
    inst = _instance(imapd_preauth_deadline="2s")
    try:
        mark = inst.log_mark()
        with socket.create_connection(("127.0.0.1", inst.port("imaps")), timeout=TIMEOUT) as s:
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            start = time.monotonic()
            try:
                assert s.recv(4096) == b""      # blocks until the proxy closes
            except ConnectionResetError:
                pass
            assert time.monotonic() - start < 10
        inst.wait_log("tlsproxy", "TLS handshake failed: timed out (pre-auth deadline exceeded)",
                      since=mark)
        c = imaplib.IMAP4_SSL("127.0.0.1", inst.port("imaps"), ssl_context=_ctx(),
                              timeout=TIMEOUT)
        c.login(USER, PASSWORD)
        c.logout()
    finally:
        inst.cleanup()


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])        # utime + stime


def _set_nofile(pid, soft):
    """Sets pid's soft open-file limit (below its hard one), from a child that takes pid's ids
    (acting on another user's process would need CAP_SYS_RESOURCE, which a container
    may lack)."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid"):
                ids[key] = int(value.split()[0])
    child = os.fork()
    if child == 0:
        code = 1
        try:
            if os.getuid() == 0:
                os.setgroups([])
                os.setresgid(ids["Gid"], ids["Gid"], ids["Gid"])
                os.setresuid(ids["Uid"], ids["Uid"], ids["Uid"])
            hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(child, 0)[1] == 0, "prlimit failed"


def test_out_of_descriptors_pauses_accepting():
    """A proxy out of descriptors leaves callers in the backlog for a second instead of
    polling its listener again at once (which would spin), says so once, and serves
    again when descriptors are free."""
    inst = _instance()
    held = []
    try:
        c = imaplib.IMAP4_SSL("127.0.0.1", inst.port("imaps"), ssl_context=_ctx(),
                              timeout=TIMEOUT)
        c.login(USER, PASSWORD)
        c.logout()
        wait_for(lambda: inst.daemon_pids("tlsproxy"), what="a tlsproxy process")
        pid = inst.daemon_pids("tlsproxy")[0]
        wait_for(lambda: len(os.listdir("/proc/%d/fd" % pid)) < 20, what="the relay to end")
        # no descriptor left: the next accept fails
        with open("/proc/%d/limits" % pid) as f:
            soft = int(next(ln for ln in f if ln.startswith("Max open files")).split()[3])
        _set_nofile(pid, len(os.listdir("/proc/%d/fd" % pid)))
        mark = inst.log_mark()
        path = os.path.join(inst.queue_dir(), "login", "tlsproxy")
        for _ in range(10):
            a, b = socket.socketpair()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            socket.send_fds(s, [b"F"], [b.fileno()])
            held += [s, a, b]
        inst.wait_log("tlsproxy", "taking no request for a second", since=mark)
        before = _cpu_ticks(pid)
        time.sleep(1.5)                     # measuring a spin: CPU over a span
        spent = _cpu_ticks(pid) - before
        assert spent < 0.3 * os.sysconf("SC_CLK_TCK"), spent
        assert len(inst.log_lines("tlsproxy", "accept:", since=mark)) == 1
        _set_nofile(pid, soft)
        for s in held:
            s.close()
        held = []
        mark = inst.log_mark()
        c = imaplib.IMAP4_SSL("127.0.0.1", inst.port("imaps"), ssl_context=_ctx(),
                              timeout=TIMEOUT)
        c.login(USER, PASSWORD)
        c.logout()
        inst.wait_log("tlsproxy", "service=imaps: TLS TLSv1.", since=mark)
    finally:
        for s in held:
            s.close()
        inst.cleanup()

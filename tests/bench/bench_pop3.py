#!/usr/bin/python3
"""make bench, POP3 part: logins per second and messages retrieved per second with 1 and
10 concurrent clients, against a live Postern instance (pop3d -l in front, pop3d behind)
and, side by side, a private Dovecot pop3d on loopback serving the same Maildirs.

Both servers get the same users, the same password hashes (yescrypt, as `postern user add`
writes them; Dovecot verifies them through libcrypt with its CRYPT scheme) and the same
message files (hard links: the same names and bytes in both trees).  Dovecot runs in its
high-performance login mode (pop3-login processes reused, service_count = 0) with pop3
processes reused when they can be, no auth cache (its default, as Postern has none) and
pop3_no_flag_updates = yes (Postern's pop3d changes no flags either).

Each client is a thread with a raw socket.  Logins: connect, USER, PASS, QUIT, in a loop.
Retrieval: all clients log in, then each RETRs every message of its mailbox (pipelined,
a window of commands in flight, as both servers announce PIPELINING) and quits; the clock
runs from the last login to the last QUIT, so logins are counted only in their own figure.
Each client has its own user, since a POP3 session locks its mailbox.  Each mailbox is opened once on each server before measuring, so that
the one-time work of a first login (new/ to cur/, Dovecot's index) is not counted.

The Dovecot instance lives in a fresh directory under /tmp, removed at the end, and every
process of it is stopped before its run returns.  Needs root and Debian's dovecot-pop3d;
installs nothing.  Figures are rates and ratios measured in the same run."""

import contextlib
import ctypes
import multiprocessing
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
from instance import Instance, POSTERN, reserve_port, wait_for  # noqa: E402
from bench_postfix import set_subreaper, session_members, reap  # noqa: E402

DOVECOT = "/usr/sbin/dovecot"
DOVECOT_POP3 = "/usr/lib/dovecot/pop3"
DOMAIN = "bench.test"
PASSWORD = "bench-secret"
USERS = 10
MESSAGES = int(os.environ.get("BENCH_POP3_MESSAGES", "2000"))   # per mailbox
LOGINS = int(os.environ.get("BENCH_POP3_LOGINS", "100"))        # per trial, all clients
TRIALS = int(os.environ.get("BENCH_POP3_TRIALS", "3"))
SIZE = 4096
WINDOW = 8                 # RETR commands in flight per client
TIMEOUT = 60               # seconds, every socket operation
CLIENT_COUNTS = (1, 10)


def address(n):
    return f"pop{n}@{DOMAIN}"


# ---- the mail ----

def message(i):
    """About SIZE bytes with LF line ends, as local(8) stores them; no line starts with '.'."""
    head = (f"From: load@client.test\nTo: {address(0)}\nSubject: pop3 bench {i}\n"
            f"Message-ID: <pop3-bench-{i}@client.test>\n\n").encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\n"
    body = line * ((SIZE - len(head)) // len(line))
    return head + body


def fill(maildir, count, uid, gid):
    """Writes count messages into maildir/new with local(8)'s names; returns {name: crlf size}."""
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(maildir, d), exist_ok=True)
    t = int(time.time()) - count
    names = {}
    for i in range(count):
        data = message(i)
        w = len(data) + data.count(b"\n") - data.count(b"\r\n")
        name = f"{t + i}.M{i}P{os.getpid()}Q{i}.bench,S={len(data)},W={w}"
        with open(os.path.join(maildir, "new", name), "wb") as f:
            f.write(data)
        names[name] = w
    chown_tree(maildir, uid, gid)
    return names


def link_tree(src, dst, uid, gid):
    """The same message files (hard links, same names) in a second Maildir."""
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(dst, d), exist_ok=True)
        for name in os.listdir(os.path.join(src, d)):
            os.link(os.path.join(src, d, name), os.path.join(dst, d, name))
    chown_tree(dst, uid, gid)


def chown_tree(top, uid, gid):
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(top):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


# ---- a minimal POP3 client ----

class Pop3:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        # Pipelined commands go out at once, not held back by Nagle behind unacked ones.
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.expect_ok("greeting")

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return ln
            if len(self.buf) > 4096:
                raise RuntimeError("status line too long")
            self.more()

    def more(self):
        chunk = self.s.recv(262144)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def expect_ok(self, what):
        ln = self.line()
        if not ln.startswith(b"+OK"):
            raise RuntimeError(f"{what}: {ln[:200]!r}")
        return ln

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.expect_ok(text.split()[0])

    def login(self, user):
        self.cmd(f"USER {user}")
        return self.cmd(f"PASS {PASSWORD}")

    def multiline(self):
        """The body of a multi-line reply whose status line was read; returns its length
        with the dot-stuffing undone."""
        start = 0
        while True:
            # The status line's CRLF is gone: an empty body is ".\r\n" at once.
            if self.buf[:3] == b".\r\n":
                del self.buf[:3]
                return 0
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                body = self.buf[:i + 2]
                del self.buf[:i + 5]
                return len(body) - body.count(b"\r\n..")
            start = max(0, len(self.buf) - 4)
            self.more()

    def retr_all(self, sizes):
        """RETRs messages 1..len(sizes), WINDOW commands in flight; checks each size."""
        n = len(sizes)
        sent = 0
        for k in range(n):
            while sent < n and sent < k + WINDOW:
                sent += 1
                self.s.sendall(f"RETR {sent}\r\n".encode())
            self.expect_ok(f"RETR {k + 1}")
            got = self.multiline()
            if got != sizes[k]:
                raise RuntimeError(f"RETR {k + 1}: {got} bytes, expected {sizes[k]}")
        return n

    def quit(self):
        self.cmd("QUIT")
        self.s.close()

    def close(self):
        self.s.close()


def sizes_of(port, user):
    """The LIST sizes of user's mailbox, in message order (also the warm-up login)."""
    p = Pop3(port)
    p.login(user)
    p.s.sendall(b"LIST\r\n")
    p.expect_ok("LIST")
    sizes = []
    while True:
        ln = p.line()
        if ln == b".":
            break
        num, size = ln.split()
        if int(num) != len(sizes) + 1:
            raise RuntimeError(f"LIST out of order: {ln!r}")
        sizes.append(int(size))
    p.quit()
    return sizes


# ---- load ----

def run_threads(clients, work, barrier=None, t_go=None):
    """Runs work(n) in clients threads; returns (seconds, sum of results).  With a
    barrier (that work waits at), the clock starts at t_go[0], which the barrier's
    action sets.  Any failure of a client fails the measurement."""
    results = [0] * clients
    errors = []

    def body(n):
        try:
            results[n] = work(n)
        except Exception as e:  # reported below
            errors.append(f"client {n}: {e}")
            if barrier is not None:
                barrier.abort()

    threads = [threading.Thread(target=body, args=(n,), daemon=True) for n in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
        if t.is_alive():
            raise TimeoutError("a POP3 client did not finish within 900 s")
    elapsed = time.monotonic() - (t_go[0] if barrier is not None else t0)
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return elapsed, sum(results)


def logins(port, clients):
    """Logins per second: each client connects, logs in and quits, LOGINS/clients times."""
    per = max(1, LOGINS // clients)

    def work(n):
        for _ in range(per):
            p = Pop3(port)
            p.login(address(n))
            p.quit()
        return per
    secs, done = run_threads(clients, work)
    return done / secs


def run_procs(clients, work):
    """work(n, barrier) in clients separate processes (one interpreter each, so the
    clients are not held back by one interpreter's lock); the clock starts when all have
    passed the barrier.  Returns (seconds, sum of results); any failure fails it."""
    ctx = multiprocessing.get_context("fork")
    t_go = ctx.Value("d", 0.0)

    def go():
        t_go.value = time.monotonic()
    barrier = ctx.Barrier(clients, action=go, timeout=TIMEOUT)
    results = ctx.Array("q", clients)

    def body(n):
        try:
            results[n] = work(n, barrier)
        except Exception as e:
            sys.stderr.write(f"POP3 client {n}: {e}\n")
            barrier.abort()
            raise
    procs = [ctx.Process(target=body, args=(n,), daemon=True) for n in range(clients)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(timeout=900)
        if pr.is_alive():
            pr.kill()
            raise TimeoutError("a POP3 client did not finish within 900 s")
    if any(pr.exitcode != 0 for pr in procs):
        raise RuntimeError("a POP3 client failed")
    return time.monotonic() - t_go.value, sum(results)


def retrieval(port, clients, sizes):
    """Messages retrieved per second: every client logs in, then all RETR their whole
    mailbox at once (the clock runs from the last login to the last QUIT answered);
    rounds are repeated until they add up to a second or more (at most 10)."""
    total_secs, total = 0.0, 0
    for _ in range(10):
        def work(n, barrier):
            p = Pop3(port)
            p.login(address(n))
            barrier.wait()
            got = p.retr_all(sizes[n])
            p.quit()
            return got
        secs, done = run_procs(clients, work)
        total_secs += secs
        total += done
        if total_secs >= 1.0:
            break
    return total / total_secs


def warm_up(port):
    """The LIST of every mailbox, in message order; this first login per mailbox does the
    one-time work (new/ to cur/, Dovecot's index) before anything is timed."""
    sizes = [sizes_of(port, address(n)) for n in range(USERS)]
    for n in range(USERS):
        if len(sizes[n]) != MESSAGES:
            raise RuntimeError(f"{address(n)}: {len(sizes[n])} messages, expected {MESSAGES}")
    return sizes


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


# ---- processes ----

def stop_session(leader, what):
    """SIGTERM to a session leader we started, then the same (SIGKILL after a grace
    period) for any member of its session still running; as subreaper we reap them."""
    if leader.poll() is None:
        leader.send_signal(signal.SIGTERM)
        try:
            leader.wait(timeout=15)
        except subprocess.TimeoutExpired:
            leader.kill()
            leader.wait(timeout=15)
    deadline = time.monotonic() + 15
    while True:
        live = []
        for pid, state in session_members(leader.pid).items():
            if reap(pid) is None and state != "Z":
                live.append(pid)
        if not live:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} processes would not stop: {live}")
        sig = signal.SIGKILL if time.monotonic() > deadline - 10 else signal.SIGTERM
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def pop3_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(5)
            ok = s.recv(512).startswith(b"+OK")
            s.sendall(b"QUIT\r\n")
            return ok
    except OSError:
        return False


@contextlib.contextmanager
def postern_server(inst):
    """Runs the instance's master in the foreground as our child; yields the POP3 port."""
    log = open(os.path.join(inst.dir, "stderr.log"), "w")
    master = subprocess.Popen([POSTERN, "-c", inst.conf_dir, "start", "-f"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                              start_new_session=True)
    try:
        wait_for(lambda: pop3_answers(inst.port("pop3")) or master.poll() is not None,
                 timeout=30, what="postern pop3 to answer")
        if master.poll() is not None:
            raise RuntimeError(f"postern master exited ({master.returncode})")
        yield inst.port("pop3")
    finally:
        try:
            stop_session(master, "postern")
        finally:
            log.close()


def dovecot_available():
    if os.geteuid() != 0:
        return "needs root"
    if not (os.path.exists(DOVECOT) and os.path.exists(DOVECOT_POP3)):
        return "needs Debian's dovecot-pop3d package"
    for u in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(u)
        except KeyError:
            return f"user {u} missing"
    return None


def dovecot_conf(top, port, uid, gid):
    return f"""# Private Dovecot for the POP3 bench: loopback only, nothing outside {top}.
instance_name = postern-bench-{os.getpid()}
base_dir = {top}/run
state_dir = {top}/state
listen = 127.0.0.1
protocols = pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {top}/dovecot.log
info_log_path = {top}/dovecot.log
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~
pop3_no_flag_updates = yes
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {top}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={top}/mail/%d/%n
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 2
}}
service pop3 {{
  service_count = 0
  process_limit = 100
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0
  }}
}}
"""


@contextlib.contextmanager
def dovecot_server(inst, uid, gid):
    """A private Dovecot with the instance's users and (linked) Maildirs; yields its port."""
    top = tempfile.mkdtemp(prefix="bench-dovecot-", dir="/tmp")
    conf = os.path.join(top, "dovecot.conf")
    master = None
    ready = False
    try:
        os.chmod(top, 0o755)
        for d in ("run", "state", "mail"):
            os.mkdir(os.path.join(top, d), 0o755)
        # The same users and hashes as Postern's passwd map.
        with open(inst.map_path("passwd")) as f, open(os.path.join(top, "passwd"), "w") as out:
            for line in f:
                fields = line.split()
                if len(fields) == 2 and not line.startswith("#"):
                    out.write(f"{fields[0]}:{{CRYPT}}{fields[1]}\n")
        for n in range(USERS):
            local, domain = address(n).split("@")
            link_tree(inst.maildir(address(n)), os.path.join(top, "mail", domain, local),
                      uid, gid)
        chown_tree(os.path.join(top, "mail"), uid, gid)
        port = reserve_port()
        with open(conf, "w") as f:
            f.write(dovecot_conf(top, port, uid, gid))
        with open(os.path.join(top, "stderr.log"), "w") as errlog:
            master = subprocess.Popen([DOVECOT, "-F", "-c", conf], stdin=subprocess.DEVNULL,
                                      stdout=errlog, stderr=errlog, start_new_session=True)
        wait_for(lambda: pop3_answers(port) or master.poll() is not None, timeout=30,
                 what="dovecot pop3 to answer")
        if master.poll() is not None:
            with open(os.path.join(top, "stderr.log")) as f:
                raise RuntimeError(f"dovecot exited ({master.returncode}): {f.read()[-500:]}")
        ready = True
        yield port
    except Exception:
        if ready:
            raise
        try:
            with open(os.path.join(top, "dovecot.log"), errors="replace") as f:
                print("dovecot log (last lines):\n" + "".join(f.readlines()[-15:]))
        except OSError:
            pass
        raise
    finally:
        try:
            if master is not None:
                stop_session(master, "dovecot")
        finally:
            shutil.rmtree(top, ignore_errors=True)


def yescrypt_ms(setting):
    """Milliseconds of one crypt(3) of PASSWORD with setting (the hash), in this process."""
    try:
        lib = ctypes.CDLL("libcrypt.so.1")
    except OSError:
        return None
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    t0 = time.monotonic()
    for _ in range(5):
        lib.crypt(PASSWORD.encode(), setting.encode())
    return (time.monotonic() - t0) * 200


def main():
    print(f"bench pop3: {USERS} users of {MESSAGES} messages of ~{SIZE} bytes; "
          f"{LOGINS} logins and 1 s or more of retrieval per trial, median of {TRIALS} "
          f"trials alternating between the servers")
    vm = pwd.getpwnam("vmail") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    uid, gid = vm.pw_uid, vm.pw_gid
    why = dovecot_available()
    # Both servers log every login and logout to a file of their own.
    inst = Instance(domains=(DOMAIN,))
    was_subreaper = set_subreaper(True)
    try:
        for n in range(USERS):
            inst.add_user(address(n), PASSWORD)
        fill(inst.maildir(address(0)), MESSAGES, uid, gid)
        # The other mailboxes hold the same files (hard links) under the same names.
        for n in range(1, USERS):
            link_tree(inst.maildir(address(0)), inst.maildir(address(n)), uid, gid)
        with open(inst.map_path("passwd")) as f:
            setting = next(ln.split()[1] for ln in f if ln.startswith(address(0) + " "))
        cost = yescrypt_ms(setting)
        if cost is not None:
            print(f"yescrypt verify (libcrypt, this process): {cost:.1f} ms")
        with contextlib.ExitStack() as stack:
            # Dovecot's tree is linked first, while Postern's Maildirs are still in new/.
            servers = {}
            if why is None:
                servers["dovecot"] = stack.enter_context(dovecot_server(inst, uid, gid))
            servers["postern"] = stack.enter_context(postern_server(inst))
            sizes = {name: warm_up(port) for name, port in servers.items()}
            figures = {}
            for kind in ("logins", "retrieved"):
                for c in CLIENT_COUNTS:
                    trials = {name: [] for name in servers}
                    for _ in range(TRIALS):
                        for name, port in servers.items():
                            if kind == "logins":
                                trials[name].append(logins(port, c))
                            else:
                                trials[name].append(retrieval(port, c, sizes[name]))
                    figures[(kind, c)] = {name: median(v) for name, v in trials.items()}
    except Exception:
        print("postern log (last lines):\n" + "\n".join(inst.log().splitlines()[-15:]))
        raise
    finally:
        set_subreaper(was_subreaper)
        inst.cleanup()

    labels = {"logins": "logins/s   ", "retrieved": "retrieved/s"}
    for kind in ("logins", "retrieved"):
        for c in CLIENT_COUNTS:
            f = figures[(kind, c)]
            who = f"{c:2d} client{'s' if c > 1 else ' '}"
            line = f"pop3 {labels[kind]} {who}: postern {f['postern']:8.0f}"
            if "dovecot" in f:
                line += (f"  dovecot {f['dovecot']:8.0f}  "
                         f"ratio {f['postern'] / f['dovecot']:.2f}")
            print(line)
    if why is not None:
        print(f"dovecot: not measured ({why})")


if __name__ == "__main__":
    main()

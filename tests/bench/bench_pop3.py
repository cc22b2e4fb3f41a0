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
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
from instance import Instance  # noqa: E402
from bench_postfix import set_subreaper  # noqa: E402
from bench_dovecot import (TIMEOUT, chown_tree, dovecot_available, dovecot_server,  # noqa: E402
                           link_tree, mail_owner, median, postern_server, run_procs,
                           run_threads)

DOMAIN = "bench.test"
PASSWORD = "bench-secret"
USERS = 10
MESSAGES = int(os.environ.get("BENCH_POP3_MESSAGES", "2000"))   # per mailbox
LOGINS = int(os.environ.get("BENCH_POP3_LOGINS", "100"))        # per trial, all clients
TRIALS = int(os.environ.get("BENCH_POP3_TRIALS", "3"))
SIZE = 4096
WINDOW = 8                 # RETR commands in flight per client
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

def logins(port, clients):
    """Logins per second: each client connects, logs in and quits, LOGINS/clients times."""
    per = max(1, LOGINS // clients)

    def work(n):
        for _ in range(per):
            p = Pop3(port)
            p.login(address(n))
            p.quit()
        return per
    secs, done = run_threads(clients, work, "POP3 client")
    return done / secs


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
        secs, done = run_procs(clients, work, "POP3 client")
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


POP3_SERVICES = """service pop3-login {{
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
"""


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
    uid, gid = mail_owner()
    why = dovecot_available("pop3")
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
                servers["dovecot"] = stack.enter_context(dovecot_server(
                    inst, [address(n) for n in range(USERS)], "pop3",
                    lambda port: POP3_SERVICES.format(port=port),
                    settings="pop3_no_flag_updates = yes"))[0]
            servers["postern"] = stack.enter_context(postern_server(inst, "pop3", b"+OK"))[0]
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

#!/usr/bin/python3
"""make bench, IMAP part: Postern's imapd and, side by side in the same run, a private
Dovecot imap on loopback serving the same users (the same password hashes) and the
same Maildirs (hard links: the same names and bytes).  Figures, each as Postern's,
Dovecot's and the ratio Postern/Dovecot:

  logins/s         connect, LOGIN, LOGOUT in a loop, 1 and 10 clients
  mixed sessions/s LOGIN, SELECT, FETCH 1:50 (UID FLAGS RFC822.SIZE ENVELOPE), FETCH of
                   5 bodies, STORE +FLAGS and -FLAGS \\Flagged on 5 messages, SEARCH
                   SUBJECT, LOGOUT; 1 and 10 clients, each its own user and mailbox
                   (opened once on each server before measuring, so both have their
                   indexes: Dovecot's dovecot.index*, Postern's postern-imap-index)
  big folder       SELECT, then FETCH 1:* (FLAGS), of a folder of BENCH_IMAP_BIG (100000)
                   messages: cold (the first open: new/ to cur/, UIDs, indexes; the
                   files are in the page cache for both) and warm (median of
                   BENCH_IMAP_BIG_TRIALS, 21, alternating between the servers)
  IDLE memory      N connections logged in, INBOX selected, in IDLE at once (N =
                   BENCH_IMAP_IDLE, 10000, or the largest number that worked, said so):
                   the PSS and RSS of all the server's processes (/proc/PID/smaps_rollup)
                   before and with the N connections; a login refused for now under
                   that load ([UNAVAILABLE]) is tried again, as clients do, and the
                   next server's turn waits until this one's session processes are gone
  IDLE TLS memory  the same over implicit TLS (port 993 on both: Postern's tlsproxy,
                   Dovecot's imap-login in high-performance mode doing the TLS), only
                   when BENCH_IMAP_PARTS names idle_tls

BENCH_IMAP_PARTS (logins,mixed,big,idle; idle_tls besides) picks figures; the other
BENCH_IMAP_* variables above scale them.

Both servers run in their default shape for many users: Postern one session process a
user, serving all that user's connections (up to imapd_session_connection_limit, 100:
the IDLE figure's 100 users each hold 100 connections); Dovecot imap-login in high-performance mode (service_count = 0), one imap
process a connection, no hibernation (its default).  The IDLE users' hashes are
sha512-crypt, not yescrypt, on both: that figure is memory, and 10000 yescrypt
verifications would take minutes of CPU.  Each client is a separate process for the
timed loads (no interpreter lock between them).  Needs root and Debian's dovecot-imapd
for Dovecot's side; installs nothing."""

import contextlib
import ctypes
import os
import resource
import socket
import ssl
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
from instance import Instance, reserve_port  # noqa: E402
from imap_raw import Client  # noqa: E402
from bench_postfix import set_subreaper  # noqa: E402
from bench_dovecot import (chown_tree, dovecot_available, dovecot_server,  # noqa: E402
                           link_tree, mail_owner, median, postern_server, run_procs,
                           run_threads, session_memory)

DOMAIN = "bench.test"
PASSWORD = "bench-secret"
USERS = 10
MESSAGES = int(os.environ.get("BENCH_IMAP_MESSAGES", "1000"))     # per mixed mailbox
BIG = int(os.environ.get("BENCH_IMAP_BIG", "100000"))
IDLE = int(os.environ.get("BENCH_IMAP_IDLE", "10000"))
IDLE_USERS = 100
LOGINS = int(os.environ.get("BENCH_IMAP_LOGINS", "100"))          # per trial
SESSIONS = int(os.environ.get("BENCH_IMAP_SESSIONS", "20"))       # per trial, all clients
TRIALS = int(os.environ.get("BENCH_IMAP_TRIALS", "3"))
# warm opens of the big folder are short and noisy: more of them for the median
BIG_TRIALS = int(os.environ.get("BENCH_IMAP_BIG_TRIALS", "21"))
# which figures: any of logins, mixed, big, idle, idle_tls (comma-separated)
PARTS = set(os.environ.get("BENCH_IMAP_PARTS", "logins,mixed,big,idle").split(","))
CLIENT_COUNTS = (1, 10)
TIMEOUT = 60
BIG_TIMEOUT = 900          # a cold open of the big folder
GREETING = b"* OK"


def address(n):
    return f"imap{n}@{DOMAIN}"


def idle_address(n):
    return f"idle{n}@{DOMAIN}"


BIG_USER = f"big@{DOMAIN}"


# ---- the mail ----

def message(i, size):
    """A message of about size bytes with LF line ends, as local(8) stores them."""
    head = (f"From: Load {i % 37} <load{i % 37}@client.test>\nTo: {address(0)}\n"
            f"Subject: imap bench {i}\nDate: Mon, 02 Mar 2026 10:{i % 60:02d}:00 +0000\n"
            f"Message-ID: <imap-bench-{i}@client.test>\n\n").encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\n"
    return head + line * max(1, (size - len(head)) // len(line))


def fill(maildir, count, size, uid, gid):
    """count messages into maildir/new with local(8)'s names."""
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(maildir, d), exist_ok=True)
    t = int(time.time()) - count
    pid = os.getpid()
    for i in range(count):
        data = message(i, size)
        w = len(data) + data.count(b"\n")
        name = f"{t + i}.M{i}P{pid}Q{i}.bench,S={len(data)},W={w}"
        fd = os.open(os.path.join(maildir, "new", name), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, data)
        os.close(fd)
    chown_tree(maildir, uid, gid)


def add_users_fast(inst, addresses, hashed, uid, gid):
    """Users straight into the passwd and vmailbox maps (one build each, not one
    `postern user add` a user), each with hashed as its password hash and an empty
    Maildir."""
    with open(inst.map_path("passwd"), "a") as f:
        for a in addresses:
            f.write(f"{a} {hashed}\n")
    with open(inst.map_path("vmailbox"), "a") as f:
        for a in addresses:
            local, domain = a.split("@")
            f.write(f"{a} {domain}/{local}/\n")
    inst.run("map", "build", inst.map_path("passwd"))
    inst.run("map", "build", inst.map_path("vmailbox"))
    for a in addresses:
        md = inst.maildir(a)
        for d in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(md, d), exist_ok=True)
        chown_tree(md, uid, gid)


def sha512_crypt(password):
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = (ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                  ctypes.c_int)
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    salt = lib.crypt_gensalt(b"$6$", 5000, None, 0)
    return lib.crypt(password.encode(), salt).decode()


# ---- the client ----

def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(port, timeout=TIMEOUT, tls=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        s = tls_context().wrap_socket(s)
    c = Client(s, timeout)
    g = c.line()
    if not g.startswith(GREETING):
        raise RuntimeError(f"greeting: {g[:100]!r}")
    return c


def ok(c, text, collect=True):
    tagged, unt = c.cmd(text.encode() if isinstance(text, str) else text, collect)
    if not tagged.startswith(b"OK"):
        raise RuntimeError(f"{text[:40]!r}: {tagged[:200]!r}")
    return unt


def login(port, user, timeout=TIMEOUT, tls=False):
    c = connect(port, timeout, tls)
    ok(c, f'LOGIN "{user}" "{PASSWORD}"')
    return c


def logout(c):
    c.cmd(b"LOGOUT")
    c.s.close()


def exists(unt):
    return next(int(u.split()[1]) for u in unt if u.endswith(b" EXISTS"))


def mixed_session(port, user):
    c = login(port, user)
    n = exists(ok(c, "SELECT INBOX"))
    got = ok(c, f"FETCH 1:{min(50, n)} (UID FLAGS RFC822.SIZE ENVELOPE)", False)
    if got < min(50, n):
        raise RuntimeError(f"FETCH 1:50: {got} responses")
    step = max(1, n // 5)
    ok(c, "FETCH " + ",".join(str(1 + k * step) for k in range(5)) + " BODY.PEEK[]")
    ok(c, "STORE 1:5 +FLAGS.SILENT (\\Flagged)")
    ok(c, "STORE 1:5 -FLAGS.SILENT (\\Flagged)")
    hits = [u for u in ok(c, 'SEARCH SUBJECT "imap bench 7"') if u.startswith(b"* SEARCH")]
    if not hits or len(hits[0].split()) < 3:
        raise RuntimeError("SEARCH found nothing")
    logout(c)
    return 1


# ---- figures ----

def logins(port, clients):
    per = max(1, LOGINS // clients)

    def work(n):
        for _ in range(per):
            logout(login(port, address(n)))
        return per
    secs, done = run_threads(clients, work, "IMAP client")
    return done / secs


def mixed(port, clients):
    per = max(1, SESSIONS // clients)

    def work(n, barrier):
        barrier.wait()
        for _ in range(per):
            mixed_session(port, address(n))
        return per
    secs, done = run_procs(clients, work, "IMAP client")
    return done / secs


def big_folder(port):
    """(seconds of SELECT, seconds of FETCH 1:* (FLAGS)) of the big folder."""
    c = login(port, BIG_USER, BIG_TIMEOUT)
    t0 = time.monotonic()
    n = exists(ok(c, "SELECT INBOX"))
    t1 = time.monotonic()
    got = ok(c, "FETCH 1:* (FLAGS)", False)
    t2 = time.monotonic()
    logout(c)
    if n != BIG or got != BIG:
        raise RuntimeError(f"big folder: {n} EXISTS, {got} FETCH, expected {BIG}")
    return t1 - t0, t2 - t1


def warm_up(port):
    """Every mixed mailbox opened once, with the items the mixed session fetches."""
    for n in range(USERS):
        c = login(port, address(n))
        if exists(ok(c, "SELECT INBOX")) != MESSAGES:
            raise RuntimeError(f"{address(n)}: not {MESSAGES} messages")
        ok(c, "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)", False)
        ok(c, 'SEARCH SUBJECT "imap bench 7"')
        logout(c)


def idle_memory(port, leader, want, tls=False):
    """Opens up to want connections in IDLE (over TLS with tls); returns (connections held, PSS before,
    RSS before, PSS with them, RSS with them, processes with them, why it stopped
    short or None).  Every connection is closed before it returns."""
    conns = []
    started = [0]
    lock = threading.Lock()
    stop = []
    # the server's fixed processes (auth, login processes) up before the baseline
    run_threads(16, lambda n: logout(login(port, idle_address(n), tls=tls)) or 1,
                "IDLE warm-up")
    pss0, rss0, nproc0 = session_memory(leader)

    def idle_login(user):
        """A login that a loaded auth service refused for now is tried again, as a
        client would, three times at most."""
        for attempt in range(3):
            try:
                return login(port, user, 120, tls)
            except RuntimeError as e:
                if b"UNAVAILABLE" not in str(e).encode() or attempt == 2:
                    raise
                time.sleep(1 + attempt)

    def work(n):
        k = 0
        while not stop:
            with lock:
                if started[0] >= want:
                    return k
                started[0] += 1
            try:
                c = idle_login(idle_address((n * 7919 + k) % IDLE_USERS))
                ok(c, "SELECT INBOX")
                c.n += 1
                c.send(f"c{c.n} IDLE\r\n".encode())
                ln = c.line()
                if not ln.startswith(b"+"):
                    raise RuntimeError(f"IDLE: {ln[:100]!r}")
            except Exception as e:
                stop.append(f"after {len(conns)} connections: {e}")
                return k
            with lock:
                conns.append(c)
            k += 1
        return k

    why = None
    try:
        try:
            run_threads(16, work, "IDLE client")
        except RuntimeError as e:
            why = str(e)
        if stop:
            why = stop[0]
        held = len(conns)
        # every connection still there and idling: the server answers DONE on one
        pss, rss, nproc = session_memory(leader)
        return held, pss0, rss0, pss, rss, nproc, why
    finally:
        for c in conns:
            try:
                c.s.close()
            except OSError:
                pass
        # the next figure starts when this server's session processes have gone
        deadline = time.monotonic() + 600
        while (session_memory(leader)[2] > nproc0 + 20 and time.monotonic() < deadline):
            time.sleep(0.5)


def raise_file_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


IMAP_SERVICES = """service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = {clients}
}}
service imap {{
  process_limit = {procs}
  client_limit = 1
}}
"""

IMAP_SETTINGS = """default_client_limit = {clients}
default_process_limit = {procs}
default_vsz_limit = 0
protocol imap {{
  mail_max_userip_connections = {procs}
}}"""

# Dovecot's TLS for the idle_tls figure: Postern's certificate and key.
IMAP_TLS_SETTINGS = """
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}"""


def ratio(a, b):
    return f"{a / b:6.2f}" if b else "     -"


def mib(b):
    return b / (1 << 20)


def main():
    print(f"bench imap: {USERS} users of {MESSAGES} messages, a folder of {BIG}, "
          f"{IDLE} IDLE connections; median of {TRIALS} trials ({BIG_TRIALS} for the warm "
          f"big folder) alternating between the servers")
    uid, gid = mail_owner()
    why = dovecot_available("imap")
    limit = raise_file_limit(4 * IDLE + 4096)
    inst = Instance(domains=(DOMAIN,),
                    config={"imapd_loopback_plaintext_login": "yes",
                            "imapd_client_connection_count_limit": "0",
                            "imapd_client_connection_rate_limit": "0",
                            "tlsproxy_connection_limit": str(min(IDLE + 1000, 1000000))})
    was_subreaper = set_subreaper(True)
    figures = {}
    try:
        for n in range(USERS):
            inst.add_user(address(n), PASSWORD)
        inst.add_user(BIG_USER, PASSWORD)
        add_users_fast(inst, [idle_address(n) for n in range(IDLE_USERS)],
                       sha512_crypt(PASSWORD), uid, gid)
        fill(inst.maildir(address(0)), MESSAGES, 4096, uid, gid)
        for n in range(1, USERS):
            link_tree(inst.maildir(address(0)), inst.maildir(address(n)), uid, gid)
        if "big" in PARTS:
            t0 = time.monotonic()
            fill(inst.maildir(BIG_USER), BIG, 600, uid, gid)
            print(f"(wrote {BIG} messages in {time.monotonic() - t0:.0f} s)")
        addresses = ([address(n) for n in range(USERS)]
                     + ([BIG_USER] if "big" in PARTS else [])
                     + [idle_address(n) for n in range(IDLE_USERS)])
        procs = IDLE + 1000
        with contextlib.ExitStack() as stack:
            # Dovecot's tree is linked first, while Postern's Maildirs are still in new/.
            servers = {}
            tls_ports = {"postern": inst.port("imaps")}
            if why is None:
                tls_ports["dovecot"] = reserve_port() if "idle_tls" in PARTS else 0
                settings = IMAP_SETTINGS.format(clients=procs + 1000, procs=procs)
                if "idle_tls" in PARTS:
                    tls_dir = os.path.join(inst.conf_dir, "tls")
                    settings += IMAP_TLS_SETTINGS.format(
                        cert=os.path.join(tls_dir, "cert.pem"),
                        key=os.path.join(tls_dir, "key.pem"))
                servers["dovecot"] = stack.enter_context(dovecot_server(
                    inst, addresses, "imap",
                    lambda port: IMAP_SERVICES.format(port=port, clients=procs + 1000,
                                                      procs=procs,
                                                      tls_port=tls_ports["dovecot"]),
                    settings=settings, greeting=GREETING))
            servers["postern"] = stack.enter_context(postern_server(inst, "imap", GREETING))
            order = list(servers)
            if "big" in PARTS:
                for name in order:
                    figures[("big cold", name)] = big_folder(servers[name][0])
            if "mixed" in PARTS:
                for name in order:
                    warm_up(servers[name][0])
            for c in CLIENT_COUNTS if "logins" in PARTS else ():
                trials = {name: [] for name in order}
                for _ in range(TRIALS):
                    for name in order:
                        trials[name].append(logins(servers[name][0], c))
                for name in order:
                    figures[("logins", c, name)] = median(trials[name])
            for c in CLIENT_COUNTS if "mixed" in PARTS else ():
                trials = {name: [] for name in order}
                for _ in range(TRIALS):
                    for name in order:
                        trials[name].append(mixed(servers[name][0], c))
                for name in order:
                    figures[("mixed", c, name)] = median(trials[name])
            trials = {name: [] for name in order}
            for _ in range(BIG_TRIALS if "big" in PARTS else 0):
                for name in order:
                    trials[name].append(big_folder(servers[name][0]))
            for name in order if "big" in PARTS else ():
                figures[("big warm", name)] = (median([t[0] for t in trials[name]]),
                                               median([t[1] for t in trials[name]]))
            for name in order if "idle" in PARTS else ():
                figures[("idle", name)] = idle_memory(servers[name][0], servers[name][1],
                                                      IDLE)
            for name in order if "idle_tls" in PARTS else ():
                figures[("idle_tls", name)] = idle_memory(tls_ports[name], servers[name][1],
                                                          IDLE, tls=True)
    except Exception:
        print("postern log (last lines):\n" + "\n".join(inst.log().splitlines()[-15:]))
        raise
    finally:
        set_subreaper(was_subreaper)
        inst.cleanup()
    report(figures, why, limit)


def report(f, why, limit):
    names = ["postern"] + (["dovecot"] if why is None else [])

    def line(label, key, fmt, lower_is_better=False):
        p = f[key("postern")]
        out = f"imap {label:28s} postern {fmt.format(p)}"
        if why is None:
            d = f[key("dovecot")]
            out += f"  dovecot {fmt.format(d)}  ratio postern/dovecot {ratio(p, d)}"
        print(out + ("   (lower is better)" if lower_is_better else ""))

    for c in CLIENT_COUNTS if "logins" in PARTS else ():
        line(f"logins/s, {c:2d} client{'s' if c > 1 else ' '}",
             lambda n, c=c: ("logins", c, n), "{:8.1f}")
    for c in CLIENT_COUNTS if "mixed" in PARTS else ():
        line(f"mixed sessions/s, {c:2d} client{'s' if c > 1 else ' '}",
             lambda n, c=c: ("mixed", c, n), "{:8.1f}")
    for kind in ("big cold", "big warm") if "big" in PARTS else ():
        for i, what in enumerate(("SELECT", "FETCH 1:* FLAGS")):
            key = (lambda n, kind=kind: (kind, n))
            p = f[key("postern")][i]
            out = f"imap {f'{what}, {BIG} msgs, {kind[4:]}':28s} postern {p * 1000:8.1f} ms"
            if why is None:
                d = f[key("dovecot")][i]
                out += f"  dovecot {d * 1000:8.1f} ms  ratio postern/dovecot {ratio(p, d)}"
            print(out + "   (lower is better)")
    for kind, label in (("idle", "IDLE"), ("idle_tls", "IDLE TLS")):
        for name in names if kind in PARTS else ():
            held, pss0, rss0, pss, rss, nproc, stopped = f[(kind, name)]
            per = (pss - pss0) / held if held else 0
            print(f"imap {label} x{held:<6d} {name:8s} PSS {mib(pss):8.1f} MiB (idle server "
                  f"{mib(pss0):6.1f}), RSS {mib(rss):8.1f} MiB, {nproc} processes, "
                  f"{per / 1024:6.1f} KiB PSS a connection")
            if stopped:
                print(f"     {name}: stopped at {held} of {IDLE} connections "
                      f"(file limit {limit}): {stopped}")
        if why is None and kind in PARTS:
            hp, hd = f[(kind, "postern")][0], f[(kind, "dovecot")][0]
            if hp and hd:
                pp = (f[(kind, "postern")][3] - f[(kind, "postern")][1]) / hp
                pd = (f[(kind, "dovecot")][3] - f[(kind, "dovecot")][1]) / hd
                print(f"imap {label} PSS a connection, ratio postern/dovecot "
                      f"{ratio(pp, pd)}   (lower is better)")
    if why is not None:
        print(f"dovecot: not measured ({why})")


if __name__ == "__main__":
    main()

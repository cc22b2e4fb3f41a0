#!/usr/bin/python3
"""make bench: what the POP3 and IMAP sections share to run Postern and a private
Dovecot side by side on the same users, password hashes and Maildirs: the Maildir
copies (hard links, same names and bytes), client threads and processes whose any
failure fails the figure, starting and stopping each server as a session of its own
(every process of it stopped before a run returns), and Dovecot's configuration.

The Dovecot instance lives in a fresh directory under /tmp, removed at the end; it
listens on loopback only, logs to its own file, verifies the same crypt(3) hashes
through libcrypt (scheme CRYPT) and serves the same Maildirs.  Needs root and
Debian's dovecot packages; installs nothing."""

import contextlib
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
from instance import POSTERN, reserve_port, wait_for  # noqa: E402
from bench_postfix import session_members, reap  # noqa: E402

DOVECOT = "/usr/sbin/dovecot"
DOVECOT_LIB = "/usr/lib/dovecot"
TIMEOUT = 60               # seconds, every socket operation of a client


# ---- the mail ----

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


def mail_owner():
    """(uid, gid) of the virtual mailboxes: vmail as root, else ourselves."""
    vm = pwd.getpwnam("vmail") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    return vm.pw_uid, vm.pw_gid


# ---- load ----

def run_threads(clients, work, what="client"):
    """Runs work(n) in clients threads; returns (seconds, sum of results).  Any
    failure of a client fails the measurement."""
    results = [0] * clients
    errors = []

    def body(n):
        try:
            results[n] = work(n)
        except Exception as e:  # reported below
            errors.append(f"{what} {n}: {e}")

    threads = [threading.Thread(target=body, args=(n,), daemon=True) for n in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
        if t.is_alive():
            raise TimeoutError(f"a {what} did not finish within 900 s")
    elapsed = time.monotonic() - t0
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return elapsed, sum(results)


def run_procs(clients, work, what="client"):
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
            sys.stderr.write(f"{what} {n}: {e}\n")
            barrier.abort()
            raise
    procs = [ctx.Process(target=body, args=(n,), daemon=True) for n in range(clients)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(timeout=900)
        if pr.is_alive():
            pr.kill()
            raise TimeoutError(f"a {what} did not finish within 900 s")
    if any(pr.exitcode != 0 for pr in procs):
        raise RuntimeError(f"a {what} failed")
    return time.monotonic() - t_go.value, sum(results)


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
    deadline = time.monotonic() + 30
    while True:
        live = []
        for pid, state in session_members(leader.pid).items():
            if reap(pid) is None and state != "Z":
                live.append(pid)
        if not live:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} processes would not stop: {live[:20]}")
        sig = signal.SIGKILL if time.monotonic() > deadline - 20 else signal.SIGTERM
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def answers(port, greeting):
    """The server on port greets with greeting (b"+OK", b"* OK")."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(5)
            return s.recv(512).startswith(greeting)
    except OSError:
        return False


@contextlib.contextmanager
def postern_server(inst, service, greeting):
    """Runs the instance's master in the foreground as our child, in a session of its
    own; yields (port of service, leader process)."""
    log = open(os.path.join(inst.dir, "stderr.log"), "w")
    master = subprocess.Popen([POSTERN, "-c", inst.conf_dir, "start", "-f"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                              start_new_session=True)
    try:
        wait_for(lambda: answers(inst.port(service), greeting) or master.poll() is not None,
                 timeout=30, what=f"postern {service} to answer")
        if master.poll() is not None:
            raise RuntimeError(f"postern master exited ({master.returncode})")
        yield inst.port(service), master
    finally:
        try:
            stop_session(master, "postern")
        finally:
            log.close()


def dovecot_available(protocol):
    """None when a private Dovecot for protocol ("pop3", "imap") can run, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if not (os.path.exists(DOVECOT) and os.path.exists(os.path.join(DOVECOT_LIB, protocol))):
        return f"needs Debian's dovecot-{protocol}d package"
    for u in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(u)
        except KeyError:
            return f"user {u} missing"
    return None


def dovecot_conf(top, uid, gid, protocol, services, settings=""):
    """The whole configuration: protocol's services (text) and extra settings; the
    other protocol's listeners off."""
    other = "imap" if protocol == "pop3" else "pop3"
    other_ports = ("imap", "imaps") if other == "imap" else ("pop3", "pop3s")
    return f"""# Private Dovecot for make bench: loopback only, nothing outside {top}.
instance_name = postern-bench-{os.getpid()}
base_dir = {top}/run
state_dir = {top}/state
listen = 127.0.0.1
protocols = {protocol}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {top}/dovecot.log
info_log_path = {top}/dovecot.log
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~
{settings}
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {top}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={top}/mail/%d/%n
}}
{services}
service {other}-login {{
  inet_listener {other_ports[0]} {{
    port = 0
  }}
  inet_listener {other_ports[1]} {{
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
def dovecot_server(inst, addresses, protocol, services, settings="", greeting=b"+OK"):
    """A private Dovecot with the instance's users (the same hashes, read from its
    passwd map) and linked copies of the Maildirs of addresses.  services is a
    function of the port giving the protocol's service blocks.  Yields (port, leader)."""
    uid, gid = mail_owner()
    top = tempfile.mkdtemp(prefix="bench-dovecot-", dir="/tmp")
    conf = os.path.join(top, "dovecot.conf")
    master = None
    ready = False
    try:
        os.chmod(top, 0o755)
        for d in ("run", "state", "mail"):
            os.mkdir(os.path.join(top, d), 0o755)
        with open(inst.map_path("passwd")) as f, open(os.path.join(top, "passwd"), "w") as out:
            for line in f:
                fields = line.split()
                if len(fields) == 2 and not line.startswith("#"):
                    out.write(f"{fields[0]}:{{CRYPT}}{fields[1]}\n")
        for a in addresses:
            local, domain = a.split("@")
            link_tree(inst.maildir(a), os.path.join(top, "mail", domain, local), uid, gid)
        chown_tree(os.path.join(top, "mail"), uid, gid)
        port = reserve_port()
        with open(conf, "w") as f:
            f.write(dovecot_conf(top, uid, gid, protocol, services(port), settings))
        with open(os.path.join(top, "stderr.log"), "w") as errlog:
            master = subprocess.Popen([DOVECOT, "-F", "-c", conf], stdin=subprocess.DEVNULL,
                                      stdout=errlog, stderr=errlog, start_new_session=True)
        wait_for(lambda: answers(port, greeting) or master.poll() is not None, timeout=30,
                 what=f"dovecot {protocol} to answer")
        if master.poll() is not None:
            with open(os.path.join(top, "stderr.log")) as f:
                raise RuntimeError(f"dovecot exited ({master.returncode}): {f.read()[-500:]}")
        ready = True
        yield port, master
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


# ---- memory ----

def session_memory(leader):
    """(PSS, RSS) in bytes summed over every process of leader's session (from
    /proc/PID/smaps_rollup), and the number of processes."""
    pss = rss = n = 0
    for pid in set(session_members(leader.pid)) | {leader.pid}:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
            n += 1
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return pss, rss, n

"""A live Postern instance for tests: made with `postern init` in a fresh directory on
free loopback ports, started, and stopped again.  Every wait is bounded."""

import mailbox
import os
import random
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("POSTERN_BUILD", os.path.join(REPO, "build"))
POSTERN = os.path.join(BUILD, "sbin", "postern")
LIBEXEC = os.path.join(BUILD, "libexec", "postern")

# Offsets of the standard ports from a port base (DESIGN.md).
PORT_OFFSETS = {"smtp": 25, "pop3": 110, "imap": 143, "smtps": 465,
                "submission": 587, "imaps": 993, "pop3s": 995}


def is_root():
    return os.geteuid() == 0


def port_free(port):
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port_base():
    for _ in range(200):
        base = random.randrange(20000, 60000, 1000)
        if all(port_free(base + off) for off in PORT_OFFSETS.values()):
            return base
    raise RuntimeError("no free port base found")


def wait_for(pred, timeout=15.0, interval=0.05, what="condition"):
    """Polls pred() until it returns something true; bounded by timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Instance:
    def __init__(self, domains=("example.test",), hostname="mx.example.test", config=None):
        # World-traversable so that the postern and vmail users can reach it as root.
        self.dir = tempfile.mkdtemp(prefix="postern-test-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.conf_dir = os.path.join(self.dir, "inst")
        self.base = free_port_base()
        self.hostname = hostname
        args = ["init", self.conf_dir, "--port-base", str(self.base), "--hostname", hostname]
        for d in domains:
            args += ["--domain", d]
        self.run(*args, with_config=False)
        self.logfile = os.path.join(self.conf_dir, "maillog")
        settings = {"maillog_file": self.logfile, "queue_run_delay": "2s",
                    "minimal_backoff_time": "2s", "maximal_backoff_time": "4s"}
        settings.update(config or {})
        self.config(**settings)
        self.started = False

    # ---- the admin command ----
    def run(self, *args, input=None, check=True, with_config=True, timeout=60):
        cmd = [POSTERN] + (["-c", self.conf_dir] if with_config else []) + list(args)
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr}{p.stdout}")
        return p

    def config(self, **kv):
        if kv:
            self.run("config", *[f"{k}={v}" for k, v in kv.items()])

    def add_user(self, address, password="secret"):
        self.run("user", "add", address, input=password + "\n")

    def map_path(self, name):
        return os.path.join(self.conf_dir, "maps", name)

    def write_map(self, name, text):
        path = self.map_path(name)
        with open(path, "w") as f:
            f.write(text)
        self.run("map", "build", path)

    # ---- life ----
    def start(self):
        self.run("start")
        self.started = True
        wait_for(self._smtp_ready, what="SMTP port to answer")

    def stop(self):
        if self.started:
            self.run("stop", check=False)
            self.started = False

    def _smtp_ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port("smtp")), timeout=2) as s:
                s.settimeout(5)
                return s.recv(100).startswith(b"220")
        except OSError:
            return False

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def master_pid(self):
        try:
            with open(os.path.join(self.queue_dir(), "pid", "master.pid")) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def daemon_pids(self, name):
        """Pids of this instance's processes running libexec/postern/NAME."""
        exe = os.path.realpath(os.path.join(LIBEXEC, name))
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{d}/exe") != exe:
                    continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if self.conf_dir.encode() in argv:
                pids.append(int(d))
        return pids

    def kill_all(self, sig=signal.SIGKILL):
        for name in os.listdir(LIBEXEC):
            for pid in self.daemon_pids(name):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    # ---- paths and clients ----
    def port(self, service):
        return self.base + PORT_OFFSETS[service]

    def queue_dir(self):
        return os.path.join(self.conf_dir, "queue")

    def maildir(self, address):
        local, domain = address.rsplit("@", 1)
        return os.path.join(self.conf_dir, "mail", domain, local.lower())

    def smtp(self, host="127.0.0.1", **kw):
        s = smtplib.SMTP(host, self.port("smtp"), timeout=30, **kw)
        return s

    def messages(self, address):
        """The messages in address's Maildir (new/ and cur/), oldest delivery first.
        Read through Python's mailbox.Maildir, a reader that is not ours."""
        path = self.maildir(address)
        if not all(os.path.isdir(os.path.join(path, d)) for d in ("new", "cur", "tmp")):
            return []                      # not there yet, or being created right now
        md = mailbox.Maildir(path, factory=None, create=False)

        def delivered(key):
            sub = md._lookup(key)          # "new/NAME" or "cur/NAME:2,..."
            return (os.stat(os.path.join(path, sub)).st_mtime_ns, key)
        try:
            return [md.get_bytes(k) for k in sorted(md.keys(), key=delivered)]
        except FileNotFoundError:          # a reader (pop3d) moved a file meanwhile
            return []

    def wait_messages(self, address, count, timeout=20):
        return wait_for(lambda: (lambda m: m if len(m) >= count else None)(self.messages(address)),
                        timeout=timeout, what=f"{count} message(s) for {address}")

    def queue_files(self, sub):
        d = os.path.join(self.queue_dir(), sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, needle, timeout=15):
        return wait_for(lambda: needle in self.log(), timeout=timeout, what=f"log line {needle!r}")

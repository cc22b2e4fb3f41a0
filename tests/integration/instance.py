"""A live Postern instance for tests: made with `postern init` in a fresh directory on
loopback ports reserved for it, started, and stopped again.  Every wait is bounded.

Ports: every instance, and this process's servers of the test (fake SMTP servers, the
DNS server, a Postfix peer), take their ports from a block of BLOCK ports at a base that
is reserved on this host with a lock file (see PortBlock), so two instances, or two test
runs at once, never share a port.

Log checks read only what was written since a mark (log_mark(), wait_log(since=)); mail
is found by its Message-ID (find_messages(), wait_message())."""

import contextlib
import email.parser
import email.policy
import fcntl
import mailbox
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("POSTERN_BUILD", os.path.join(REPO, "build"))
POSTERN = os.path.join(BUILD, "sbin", "postern")
LIBEXEC = os.path.join(BUILD, "libexec", "postern")

# Offsets of the standard ports from a port base (DESIGN.md).
PORT_OFFSETS = {"smtp": 25, "pop3": 110, "imap": 143, "smtps": 465,
                "submission": 587, "imaps": 993, "pop3s": 995}

# Lock files shared by every test run on this host (sticky and writable by all, like
# /tmp, so that runs as root and as other users can share it).
LOCK_DIR = "/tmp/postern-test-locks"
BLOCK = 1000                        # ports per base: base .. base + 999


def is_root():
    return os.geteuid() == 0


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


# ---- ports ----

def port_free(port, udp=False):
    """Nobody listens on TCP port on 127.0.0.1 or ::1 (nor, with udp, on UDP 127.0.0.1).
    SO_REUSEADDR as the daemons bind: connections in TIME_WAIT do not count."""
    tries = [(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
             (socket.AF_INET6, socket.SOCK_STREAM, "::1")]
    if udp:
        tries.append((socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"))
    for family, kind, host in tries:
        s = socket.socket(family, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def ephemeral_range():
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def port_bases():
    """The bases of test ports: multiples of 1000 from 20000 whose whole block lies
    outside the ephemeral range (so no outgoing connection ever holds one of them)."""
    lo, hi = ephemeral_range()
    return [b for b in range(20000, 65536 - BLOCK, BLOCK) if b + BLOCK <= lo or b > hi]


def _lock_dir():
    try:
        os.mkdir(LOCK_DIR, 0o1777)
        os.chmod(LOCK_DIR, 0o1777)      # past the umask
    except FileExistsError:
        pass
    st = os.lstat(LOCK_DIR)
    # Sticky (or ours): nobody can swap a lock file someone else holds for a new one.
    if not stat.S_ISDIR(st.st_mode) or not (st.st_mode & stat.S_ISVTX
                                             or st.st_uid == os.geteuid()):
        raise RuntimeError(f"{LOCK_DIR} is not a sticky directory")
    return LOCK_DIR


def _open_lock(name):
    """A descriptor of lock file name in LOCK_DIR, made if missing; None if it cannot be
    opened (another user's file where the kernel forbids that).  Read-only: flock() needs
    no more, and a file planted by someone else is never written."""
    path = os.path.join(_lock_dir(), name)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_CREAT, 0o644)
    except PermissionError:
        try:
            return os.open(path, flags)
        except OSError:
            return None


class PortBlock:
    """A block of BLOCK ports at a base reserved for this process: the lock file
    LOCK_DIR/port-BASE.lock is held with flock() until release(), or until the process
    ends (the kernel drops the lock of a process that dies).  flock() locks belong to
    an open file, so two blocks of one process exclude each other as well.  A base is
    taken only once its lock is held and the ports in `check` (offsets) are free: a
    stray server on one of them makes the base unusable, not the test fail.  If every
    base is taken, waits (bounded) for one to be released."""

    def __init__(self, check=(), timeout=180):
        bases = port_bases()
        random.shuffle(bases)           # two runs starting at once try different bases
        deadline = time.monotonic() + timeout
        while True:
            for base in bases:
                fd = _open_lock(f"port-{base}.lock")
                if fd is None:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                if all(port_free(base + off) for off in check):
                    self.base, self._fd = base, fd
                    return
                os.close(fd)
            if time.monotonic() > deadline:
                raise RuntimeError(f"no port base free within {timeout}s "
                                   f"(locks in {LOCK_DIR})")
            time.sleep(0.2)

    def release(self):
        if self._fd is not None:
            os.close(self._fd)          # closing the only descriptor drops the lock
            self._fd = None


_test_server_ports = {"block": None, "next": 0}
_test_server_lock = threading.Lock()


def reserve_port():
    """A loopback port (TCP and UDP) for a server of the test: from a block reserved for
    this process until it ends, which no instance binds; handed out in turn, each once
    (until all BLOCK have been), and free when handed out.  Also a port nobody listens
    on, when not bound."""
    with _test_server_lock:
        if _test_server_ports["block"] is None:
            _test_server_ports["block"] = PortBlock()
        base = _test_server_ports["block"].base
        for _ in range(BLOCK):
            port = base + _test_server_ports["next"]
            _test_server_ports["next"] = (_test_server_ports["next"] + 1) % BLOCK
            if port_free(port, udp=True):
                return port
    raise RuntimeError(f"no free port left in the block at {base}")


@contextlib.contextmanager
def accounts_lock():
    """Serialises changes to the system's users and groups (useradd, userdel, and the
    postern and vmail accounts `postern init` makes) between test runs on one host."""
    fd = _open_lock("accounts.lock")
    if fd is None:
        raise RuntimeError(f"cannot open {LOCK_DIR}/accounts.lock")
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError("accounts lock held for more than 120s")
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


# ---- messages ----

def message_id_of(data):
    """The Message-ID of a message (bytes), as "<...>", or None."""
    head = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    v = head["Message-ID"]
    return v.strip() if v else None


def maildir_messages(path):
    """The messages in the Maildir at path (new/ and cur/), oldest delivery first.
    Read through Python's mailbox.Maildir, a reader that is not ours."""
    if not all(os.path.isdir(os.path.join(path, d)) for d in ("new", "cur", "tmp")):
        return []                       # not there yet, or being created right now
    md = mailbox.Maildir(path, factory=None, create=False)

    def delivered(key):
        sub = md._lookup(key)           # "new/NAME" or "cur/NAME:2,..."
        return (os.stat(os.path.join(path, sub)).st_mtime_ns, key)
    try:
        return [md.get_bytes(k) for k in sorted(md.keys(), key=delivered)]
    except FileNotFoundError:           # a reader (pop3d) moved a file meanwhile
        return []


def maildir_find(path, message_id=None, about=None):
    """Messages in the Maildir at path with this Message-ID; or (about=) notices about
    the message with that Message-ID: messages with another Message-ID (or none) whose
    text quotes it (bounces, delay warnings, success notices)."""
    out = []
    for m in maildir_messages(path):
        own = message_id_of(m)
        if message_id is not None and own == message_id:
            out.append(m)
        elif about is not None and own != about and about.encode() in m:
            out.append(m)
    return out


def wait_maildir_message(path, message_id=None, about=None, timeout=20, what=None):
    """The first message maildir_find() finds, waiting for it (bounded)."""
    found = wait_for(lambda: maildir_find(path, message_id, about), timeout=timeout,
                     what=what or (f"message {message_id} in {path}" if message_id
                                   else f"a notice about {about} in {path}"))
    return found[0]


class Instance:
    def __init__(self, domains=("example.test",), hostname="mx.example.test", config=None):
        self.ports = PortBlock(check=PORT_OFFSETS.values())
        self.base = self.ports.base
        self.started = False
        try:
            # World-traversable so that the postern and vmail users can reach it as root.
            self.dir = tempfile.mkdtemp(prefix="postern-test-", dir="/tmp")
            os.chmod(self.dir, 0o755)
            self.conf_dir = os.path.join(self.dir, "inst")
            self.hostname = hostname
            self.logfile = os.path.join(self.conf_dir, "maillog")
            args = ["init", self.conf_dir, "--port-base", str(self.base), "--hostname", hostname]
            for d in domains:
                args += ["--domain", d]
            if is_root() and not _accounts_exist():
                with accounts_lock():   # the first init on a host makes the accounts
                    self.run(*args, with_config=False)
            else:
                self.run(*args, with_config=False)
            # Test clients greet as "localhost" (smtplib) and the host has no DNS: the
            # HELO name and sender domain checks are off unless a test turns them on.
            settings = {"maillog_file": self.logfile, "queue_run_delay": "2s",
                        "minimal_backoff_time": "2s", "maximal_backoff_time": "4s",
                        "smtpd_reject_non_fqdn_helo_hostname": "no",
                        "smtpd_reject_unknown_sender_domain": "no",
                        # the test clients are strangers on port 25: no greeting pause
                        # unless a test asks for one (test_caps: the default's own test)
                        "smtpd_greet_wait": "0s"}
            settings.update(config or {})
            self.config(**settings)
        except BaseException:
            self.ports.release()
            raise

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

    def reload(self, daemons=("qmgr", "smtp"), timeout=20):
        """`postern reload`, then waits until it has taken effect: master has logged the
        reload, every process of `daemons` from before it has exited (what starts now
        reads the new configuration), and a qmgr runs again.  Processes of other daemons
        may still finish sessions begun before the reload."""
        before = {p for name in daemons for p in self._processes(name)}
        mark = self.log_mark()
        self.run("reload")
        self.wait_log("reload -- configuration", since=mark, timeout=timeout)
        wait_for(lambda: not before & {p for name in daemons for p in self._processes(name)}
                 and self.daemon_pids("qmgr"),
                 timeout=timeout, what=f"the processes of {', '.join(daemons)} from before "
                                       "the reload to exit")

    def _smtp_ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port("smtp")), timeout=2) as s:
                s.settimeout(5)
                return s.recv(100).startswith(b"220")
        except OSError:
            return False

    def cleanup(self):
        try:
            self.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            self.ports.release()

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

    def _processes(self, name):
        """(pid, start time) of each process of daemon name: a pid used again later is
        another process."""
        out = set()
        for pid in self.daemon_pids(name):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    out.add((pid, f.read().rsplit(")", 1)[1].split()[19]))
            except (OSError, IndexError):
                pass
        return out

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

    # ---- mail ----
    def messages(self, address):
        """Every message in address's Maildir (new/ and cur/), oldest delivery first."""
        return maildir_messages(self.maildir(address))

    def find_messages(self, address, message_id=None, about=None):
        """address's messages with this Message-ID, or notices about it (maildir_find)."""
        return maildir_find(self.maildir(address), message_id, about)

    def wait_message(self, address, message_id=None, about=None, timeout=20):
        """The message with this Message-ID in address's Maildir, or the first notice
        about it, once it is there (bounded)."""
        return wait_maildir_message(self.maildir(address), message_id, about, timeout,
                                    what=f"message {message_id} for {address}" if message_id
                                    else f"a notice about {about} for {address}")

    # ---- the queue ----
    def queue_files(self, sub):
        d = os.path.join(self.queue_dir(), sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def queue_empty(self):
        return not any(self.queue_files(q) for q in ("incoming", "active", "deferred"))

    def wait_queue_empty(self, timeout=30):
        """Waits until no message is in the queue: everything accepted so far has been
        delivered, bounced or dropped, and nothing more will come of it."""
        wait_for(self.queue_empty, timeout=timeout, what="an empty queue")

    def settled(self, since):
        """Has every message smtpd took since the mark, and every notice qmgr wrote
        since then, left the queue?  Its last log line, QUEUEID: removed, is there (a
        notice is logged before the message it is about is removed)."""
        def ids(pattern):
            return {m.group(1) for m in map(pattern.search,
                                            self.log_lines(pattern, since=since))}
        return ids(_SMTPD_QUEUED) | ids(_NOTICE) <= ids(_REMOVED)

    def wait_settled(self, since, timeout=30):
        """Waits until settled(since): nothing more comes of what was sent.  The signal
        to wait for before checking that something did not happen."""
        wait_for(lambda: self.settled(since), timeout=timeout,
                 what="the messages sent to leave the queue")

    # ---- the log ----
    def log(self):
        """The whole log (for printing, and for what must never be logged at all)."""
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_mark(self):
        """A mark for log_since() and wait_log(): the log's size now."""
        try:
            return os.path.getsize(self.logfile)
        except OSError:
            return 0

    def log_since(self, mark):
        """The complete lines written to the log since mark."""
        try:
            with open(self.logfile, "rb") as f:
                f.seek(mark)
                data = f.read()
        except OSError:
            return ""
        return data[:data.rfind(b"\n") + 1].decode(errors="replace")

    def log_lines(self, *patterns, since):
        """Lines written since the mark that hold every pattern (a string it contains,
        or a compiled regular expression it matches)."""
        return [line for line in self.log_since(since).splitlines()
                if all(p.search(line) if isinstance(p, re.Pattern) else p in line
                       for p in patterns)]

    def wait_log(self, *patterns, since, timeout=15):
        """The first line written since the mark that holds every pattern (log_lines),
        once there is one (bounded)."""
        return wait_for(lambda: (self.log_lines(*patterns, since=since) or [None])[0],
                        timeout=timeout, what=f"a log line with {patterns!r}")

    # ---- sending ----
    def submit(self, sender, rcpts, data, mail_options=(), rcpt_options=(), host="127.0.0.1"):
        """Sends one message over SMTP as smtplib's sendmail() does (every recipient must
        be taken); returns the queue id from the reply to DATA, for the log lines about
        this message (QUEUEID: removed is the last of them)."""
        with self.smtp(host=host) as s:
            s.ehlo()
            code, text = s.mail(sender, list(mail_options))
            assert code == 250, (code, text)
            for r in rcpts:
                code, text = s.rcpt(r, list(rcpt_options))
                assert code == 250, (r, code, text)
            code, text = s.data(data)
            assert code == 250, (code, text)
        return re.search(rb"queued as ([0-9A-Za-z]+)", text).group(1).decode()


_SMTPD_QUEUED = re.compile(r"/smtpd\[\d+\]: ([0-9A-Za-z]+): from=<.*\(queue active\)$")
_NOTICE = re.compile(r": \w+: (?:sender \w+|postmaster non-delivery) notification: (\w+)$")
_REMOVED = re.compile(r": ([0-9A-Za-z]+): removed$")


def _accounts_exist():
    import pwd
    try:
        pwd.getpwnam("postern")
        pwd.getpwnam("vmail")
        return True
    except KeyError:
        return False

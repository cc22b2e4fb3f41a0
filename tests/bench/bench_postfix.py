"""The peer for make bench: a private Postfix instance on loopback, started and stopped here,
that receives the same SMTP load and delivers into a Maildir with Postfix's own durability
(cleanup fsyncs the queue file before 250, virtual(8) fsyncs the Maildir file).

It never touches the system's Postfix configuration or queue: everything lives in a fresh
directory under /tmp that is removed at the end, and every process of the instance is
stopped before run() returns. Needs root and Debian's postfix package; installs nothing.

CPU per message is the user+system time of the whole Postfix process tree, start to stop,
as for Postern: master runs in the foreground as our child and makes itself a session
leader; while it runs we are a child subreaper, so the daemons it leaves behind when it
exits on SIGTERM become ours, and wait4() of master and of each of them gives their CPU
with that of everything they reaped. (Summing /proc/PID/stat instead undercounts by up to
a clock tick per field and process, about 10 ms for each of the ~60 processes.)

Logging goes to syslog like the Postern run; BENCH_POSTFIX_LOG=1 writes DIR/maillog instead
(the directory is then kept for reading)."""

import ctypes
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from instance import reserve_port  # noqa: E402  (tests/integration is on the path: bench.py)

POSTFIX = "/usr/sbin/postfix"
MASTER = "/usr/lib/postfix/sbin/master"
SYSTEM_MASTER_CF = "/etc/postfix/master.cf"


def available():
    return os.geteuid() == 0 and os.path.exists(POSTFIX) and os.path.exists(MASTER) \
        and os.path.exists(SYSTEM_MASTER_CF)


def master_cf(port):
    """Debian's service table with smtp on 127.0.0.1:port and no chroot (the queue
    directory has none of the files a chroot needs)."""
    out = []
    with open(SYSTEM_MASTER_CF) as f:
        for line in f:
            fields = line.split()
            if line[:1].isspace() or not fields or fields[0].startswith("#") or len(fields) < 8:
                out.append(line)
                continue
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"127.0.0.1:{port}"
            fields[4] = "n"
            out.append(" ".join(fields) + "\n")
    return "".join(out)


def main_cf(top, domain, local, uid, gid, log):
    conf = {
        "compatibility_level": "3.6",
        "queue_directory": f"{top}/queue",
        "data_directory": f"{top}/data",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "myhostname": "postfix.bench.invalid",
        "mydomain": "bench.invalid",
        "myorigin": "$myhostname",
        "mydestination": "",
        "mynetworks": "127.0.0.0/8",
        "relay_domains": "",
        "relayhost": "",
        "virtual_mailbox_domains": domain,
        "virtual_mailbox_base": f"{top}/mail",
        "virtual_mailbox_maps": f"static:{domain}/{local}/",
        "virtual_uid_maps": f"static:{uid}",
        "virtual_gid_maps": f"static:{gid}",
        "virtual_minimum_uid": "1",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "smtpd_recipient_restrictions": "permit_mynetworks, reject",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "biff": "no",
        "append_dot_mydomain": "no",
        "readme_directory": "no",
        "smtp_dns_support_level": "disabled",
        "syslog_name": "postfix-bench",
    }
    if log:
        conf["maillog_file"] = f"{top}/maillog"
        conf["maillog_file_prefixes"] = top
    return "".join(f"{k} = {v}\n" for k, v in conf.items())


def proc_stat(pid):
    """(session id, state letter) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[3]), rest[0]  # fields 6 and 3 of proc(5)


def session_members(sid):
    """{pid: state} of every process whose session id is sid."""
    members = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[0] == sid:
                members[int(name)] = st[1]
    return members


def set_subreaper(on):
    """Makes orphaned descendants ours to reap (Linux PR_SET_CHILD_SUBREAPER); returns
    the previous setting."""
    libc = ctypes.CDLL(None, use_errno=True)
    old = ctypes.c_int(0)
    libc.prctl(37, ctypes.byref(old), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
    if libc.prctl(36, int(on), 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    return bool(old.value)


def wait_until(cond, timeout, interval, what, master):
    deadline = time.monotonic() + timeout
    while not cond():
        if master.poll() is not None:
            raise RuntimeError(f"postfix master exited ({master.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"postfix: timed out waiting for {what}")
        time.sleep(interval)


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            ready = s.recv(512).startswith(b"220")
            s.sendall(b"QUIT\r\n")
            return ready
    except OSError:
        return False


def reap(pid):
    """CPU seconds of pid and the descendants it reaped if it has exited and was ours to
    reap; None if it is still running or not our child."""
    try:
        got, _, ru = os.wait4(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return ru.ru_utime + ru.ru_stime if got == pid else None


def stop(master):
    """SIGTERM to master (it passes it on to its process group), SIGKILL after a grace
    period, then the same for any member of its session still running. As subreaper we
    inherit and reap the processes master leaves behind. Returns the CPU seconds of all
    the processes reaped here (with everything they reaped)."""
    cpu = 0.0
    if master.returncode is None:
        master.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (t := reap(master.pid)) is None:
            if time.monotonic() > deadline:
                master.kill()
                deadline = float("inf")
            time.sleep(0.02)
        master.returncode = -signal.SIGTERM
        cpu += t
    deadline = time.monotonic() + 10
    while True:
        live = []
        for pid, state in session_members(master.pid).items():
            t = reap(pid)
            if t is not None:
                cpu += t
            elif state != "Z":
                live.append(pid)
        if not live:
            return cpu
        if time.monotonic() > deadline:
            raise RuntimeError(f"postfix processes would not stop: {live}")
        sig = signal.SIGKILL if time.monotonic() > deadline - 8 else signal.SIGTERM
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def run(load, count_new, clients, messages, rcpt):
    local, _, domain = rcpt.rpartition("@")
    log = os.environ.get("BENCH_POSTFIX_LOG", "") not in ("", "0")
    owner = pwd.getpwnam("postfix")
    nobody = pwd.getpwnam("nobody")
    grp.getgrnam("postdrop")  # Postfix's setgid group must exist

    top = tempfile.mkdtemp(prefix="bench-postfix-", dir="/tmp")
    etc = os.path.join(top, "etc")
    maildir = os.path.join(top, "mail", domain, local)
    env = dict(os.environ, MAIL_CONFIG=etc)
    master = None
    was_subreaper = set_subreaper(True)
    try:
        os.chmod(top, 0o755)
        for d in ("etc", "queue", "data", "mail"):
            os.mkdir(os.path.join(top, d), 0o755)
        os.chown(os.path.join(top, "data"), owner.pw_uid, owner.pw_gid)
        os.chown(os.path.join(top, "mail"), nobody.pw_uid, nobody.pw_gid)
        port = reserve_port()
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write(main_cf(top, domain, local, nobody.pw_uid, nobody.pw_gid, log))
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.write(master_cf(port))

        # Creates the queue's subdirectories with Postfix's owners and modes.
        chk = subprocess.run([POSTFIX, "-c", etc, "check"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if chk.returncode != 0:
            raise RuntimeError("postfix check failed: " + chk.stdout.decode(errors="replace"))

        # Without -w master stays in the foreground; it makes itself a session leader.
        with open(os.path.join(top, "master.stderr"), "w") as errlog:
            master = subprocess.Popen([MASTER, "-c", etc], env=env, stdin=subprocess.DEVNULL,
                                      stdout=errlog, stderr=errlog)
        wait_until(lambda: answers(port), 30, 0.05, "smtpd to answer", master)

        t0, t_acc, ok = load(port, messages, clients)
        wait_until(lambda: count_new(maildir) >= ok, 600, 0.01, "delivery of all messages",
                   master)
        t_del = time.monotonic()
    finally:
        try:
            cpu = stop(master) if master is not None else 0.0
        finally:
            set_subreaper(was_subreaper)
            if log:
                print(f"postfix log kept in {top}")
            else:
                shutil.rmtree(top, ignore_errors=True)
    return dict(accepted=ok / (t_acc - t0), delivered=ok / (t_del - t0),
                cpu_ms=1000 * cpu / max(ok, 1), n=ok)

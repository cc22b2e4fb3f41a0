#!/usr/bin/python3
"""make bench: end-to-end throughput of a live Postern instance (SMTP in, Maildir out),
with the disk's fsync floor and CPU per message measured in the same run, and the same
load against a private Postfix instance when Debian's postfix is installed (root only).
The same load is also run with a header_checks table of 100 patterns, and with one
milter (rspamd's proxy worker, when rspamd is installed) in the path, each reported
beside the plain run, so that the cost of each is visible (bench_filters.py).

Figures are reported as rates and as ratios to the peer measured in the same run: these
machines are noisy, so absolute numbers mean little across runs."""

import os
import resource
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
from instance import Instance, POSTERN, wait_for  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "2000"))
SIZE = 2048
RCPT = "bench@bench.test"


def fsync_floor(directory, n=200):
    """fsyncs per second of 2 KiB files on the disk under directory."""
    path = os.path.join(directory, "fsync-probe")
    data = b"x" * SIZE
    t0 = time.monotonic()
    for _ in range(n):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    os.unlink(path)
    return n / (time.monotonic() - t0)


def message(i):
    head = (f"From: load@client.test\r\nTo: {RCPT}\r\nSubject: bench {i}\r\n"
            f"Message-ID: <bench-{i}@client.test>\r\n\r\n").encode()
    body = (b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n"
            * ((SIZE - len(head)) // 70 + 1))
    return head + body[:SIZE - len(head) - 2] + b"\r\n"


def recv_reply(sock, buf):
    """Reads one complete SMTP reply; returns (code, rest of buffer)."""
    while True:
        lines = buf.split(b"\r\n")
        for idx, line in enumerate(lines[:-1]):
            if len(line) >= 4 and line[3:4] == b" ":
                return int(line[:3]), b"\r\n".join(lines[idx + 1:])
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk


def load(port, total, clients):
    """clients connections each send their share with PIPELINING; returns the time of the
    last 250 and the number of 250s."""
    per = total // clients
    done = [0] * clients

    def client(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        buf = b""
        code, buf = recv_reply(s, buf)
        s.sendall(b"EHLO bench.client\r\n")
        code, buf = recv_reply(s, buf)
        for i in range(per):
            s.sendall(b"MAIL FROM:<load@client.test>\r\nRCPT TO:<" + RCPT.encode() +
                      b">\r\nDATA\r\n")
            for _ in range(3):
                code, buf = recv_reply(s, buf)
            if code != 354:
                raise RuntimeError(f"DATA refused: {code}")
            s.sendall(message(n * per + i) + b".\r\n")
            code, buf = recv_reply(s, buf)
            if code == 250:
                done[n] += 1
        s.sendall(b"QUIT\r\n")
        s.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return t0, time.monotonic(), sum(done)


def count_new(maildir):
    d = os.path.join(maildir, "new")
    try:
        return len(os.listdir(d))
    except FileNotFoundError:
        return 0


def run_postern(config=None, setup=None):
    """One run; config: extra postern.conf settings; setup(inst) -> more settings,
    called before the start (to write a table, for example)."""
    inst = Instance(domains=("bench.test",), config={"maillog_file": ""})
    inst.add_user(RCPT)
    inst.config(**(config or {}))
    if setup is not None:
        inst.config(**setup(inst))
    # Foreground master as our child: at stop, wait4 gives the CPU of the whole tree.
    log = open(os.path.join(inst.dir, "stderr.log"), "w")
    master = subprocess.Popen([POSTERN, "-c", inst.conf_dir, "start", "-f"],
                              stdout=log, stderr=log)
    try:
        wait_for(inst._smtp_ready, what="postern to listen")
        maildir = inst.maildir(RCPT)
        t0, t_acc, ok = load(inst.port("smtp"), MESSAGES, CLIENTS)
        wait_for(lambda: count_new(maildir) >= ok, timeout=600, interval=0.01,
                 what="delivery of all messages")
        t_del = time.monotonic()
    finally:
        master.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(master.pid, 0)
        log.close()
    cpu = ru.ru_utime + ru.ru_stime
    result = dict(accepted=ok / (t_acc - t0), delivered=ok / (t_del - t0),
                  cpu_ms=1000 * cpu / max(ok, 1), n=ok)
    floor = fsync_floor(inst.dir)
    inst.cleanup()
    return result, floor


def main():
    print(f"bench: {CLIENTS} clients, {MESSAGES} messages of {SIZE} bytes, SMTP in, Maildir out")
    pt, floor = run_postern()
    print(f"fsync floor (2 KiB file + fsync): {floor:8.0f} /s")
    print(f"postern  accepted {pt['accepted']:8.0f} msg/s   delivered end-to-end "
          f"{pt['delivered']:8.0f} msg/s   CPU {pt['cpu_ms']:.2f} ms/msg")
    try:
        import bench_postfix
    except ImportError:
        bench_postfix = None
    pf = None
    if bench_postfix and bench_postfix.available():
        pf = bench_postfix.run(load, count_new, CLIENTS, MESSAGES, RCPT)
        print(f"postfix  accepted {pf['accepted']:8.0f} msg/s   delivered end-to-end "
              f"{pf['delivered']:8.0f} msg/s   CPU {pf['cpu_ms']:.2f} ms/msg")
        print(f"ratio postern/postfix: delivered {pt['delivered'] / pf['delivered']:.2f}x, "
              f"CPU per message {pt['cpu_ms'] / pf['cpu_ms']:.2f}x")
    else:
        print("postfix: not measured (needs Debian's postfix package and root)")
    import bench_filters
    bench_filters.main(run_postern, pt, pf)
    import bench_pop3
    bench_pop3.main()
    import bench_imap
    bench_imap.main()


if __name__ == "__main__":
    main()

"""Durability: kill -9 of smtpd, qmgr, local and master at random moments while 1,000
messages stream in; after a restart, every message that got a 250 is in a Maildir."""

import email
import os
import random
import signal
import smtplib
import threading
import time

import pytest

from conftest import start_instance
from instance import wait_for

TOTAL = 1000
SENDERS = 4
RCPT = "alice@example.test"


@pytest.fixture(scope="module")
def crash_mta():
    inst = start_instance(users=(RCPT,), domains=("example.test",),
                          config={"queue_run_delay": "1s", "minimal_backoff_time": "1s",
                                  "maximal_backoff_time": "2s"})
    yield inst
    inst.cleanup()


def message_ids_in(inst):
    ids = set()
    for raw in inst.messages(RCPT):
        m = email.message_from_bytes(raw)
        if m["Message-ID"]:
            ids.add(m["Message-ID"].strip())
    return ids


def test_no_acknowledged_message_is_lost(crash_mta):
    inst = crash_mta
    accepted = set()
    lock = threading.Lock()
    stop_killing = threading.Event()
    deadline = time.monotonic() + 300
    kills = []
    killer_errors = []

    def sender(n0, count):
        pending = [f"<crash-{n0 + i}@remote.test>" for i in range(count)]
        s = None
        attempts = 0
        while (pending and time.monotonic() < deadline and attempts < count * 50
               and not killer_errors):
            attempts += 1
            mid = pending[0]
            body = (f"From: a@remote.test\r\nMessage-ID: {mid}\r\nSubject: crash\r\n\r\n"
                    f"{mid} " + "x" * 1500 + "\r\n").encode()
            try:
                if s is None:
                    s = smtplib.SMTP("127.0.0.1", inst.port("smtp"), timeout=20)
                s.sendmail("a@remote.test", [RCPT], body)
            except (OSError, smtplib.SMTPException):
                try:
                    if s is not None:
                        s.close()
                except OSError:
                    pass
                s = None
                time.sleep(0.05)
                continue
            with lock:
                accepted.add(mid)
            pending.pop(0)
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass

    def killer():
        try:
            kill_rounds()
        except Exception as e:      # reported by the test, not lost with the thread
            killer_errors.append(e)
            raise

    def kill_rounds():
        # Rounds over every daemon in a random order, at random moments.
        rnd = random.Random(os.getpid())
        order = []
        misses = 0
        while not stop_killing.is_set() and len(kills) < 60:
            time.sleep(rnd.uniform(0.05, 0.25))
            if not order:
                order = ["smtpd", "qmgr", "local", "master"]
                rnd.shuffle(order)
            victim = order[-1]
            pids = inst.daemon_pids(victim)
            if victim == "master":
                # master itself, not a child it has forked and not yet turned into a daemon
                pids = [p for p in pids if p == inst.master_pid()]
            if not pids:
                # a daemon started on demand (local) may be between deliveries: wait
                # for it a little (every daemon must be hit), then go on to the next
                misses += 1
                if misses >= 40:
                    order.pop()
                    misses = 0
                continue
            order.pop()
            misses = 0
            pid = rnd.choice(pids)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            kills.append(victim)
            if victim == "master":
                # As an admin would: start it again once it has gone (its lock on the
                # pid file released; a process in the kernel dies only on its way out)
                # and so have its children (each notices within its poll slice).
                wait_for(lambda: inst.run("status", check=False).returncode != 0
                         and not inst.daemon_pids("smtpd") and not inst.daemon_pids("qmgr"),
                         timeout=30, what="master and its orphaned daemons to exit")
                inst.run("start")

    per = TOTAL // SENDERS
    threads = [threading.Thread(target=sender, args=(i * per, per)) for i in range(SENDERS)]
    k = threading.Thread(target=killer)
    for t in threads:
        t.start()
    k.start()
    for t in threads:
        t.join(timeout=330)
    stop_killing.set()
    k.join(timeout=60)
    assert not k.is_alive(), "the killer did not stop"
    assert not killer_errors, killer_errors
    assert len(accepted) == TOTAL, f"only {len(accepted)} accepted"
    assert {"smtpd", "qmgr", "local", "master"} <= set(kills), kills

    # Make sure the system runs (the last kill may have been master's) and drains.
    if inst.run("status", check=False).returncode != 0:
        inst.run("start")
    inst.started = True
    wait_for(lambda: accepted <= message_ids_in(inst), timeout=120, interval=0.5,
             what="every acknowledged message in the Maildir")
    missing = accepted - message_ids_in(inst)
    assert not missing, sorted(missing)[:10]
    print(f"kills: {len(kills)} ({', '.join(sorted(set(kills)))}); "
          f"delivered {len(inst.messages(RCPT))} for {TOTAL} acknowledged")

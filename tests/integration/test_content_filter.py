"""After-queue content filter (content_filter = smtp:[127.0.0.1]:PORT): mail from smtpd
and pickup goes once through an SMTP filter, written here, that adds a header and
reinjects into a listener whose -o content_filter= skips the filter; the message
arrives once, with the header."""

import os
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import start_instance
from instance import BUILD, reserve_port, wait_for

SENDER = "sender@remote.test"


class SmtpFilter:
    """A minimal SMTP server on 127.0.0.1:port: each message received is sent on to
    127.0.0.1:reinject with an X-Filtered header first, and only then answered 250
    (as amavisd-new does); what it received is counted by Message-ID."""

    def __init__(self, port, reinject):
        self.port, self.reinject = port, reinject
        self.received = []
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        conn.settimeout(30)
        f = conn.makefile("rb")

        def say(line):
            conn.sendall(line.encode() + b"\r\n")
        try:
            say("220 filter.test ESMTP")
            sender, rcpts = None, []
            while True:
                line = f.readline(10000)
                if not line:
                    return
                cmd = line.decode(errors="replace").strip()
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250-filter.test\r\n250 8BITMIME" if verb == "EHLO" else "250 filter.test")
                elif verb == "MAIL":
                    sender, rcpts = cmd[cmd.index("<") + 1:cmd.rindex(">")], []
                    say("250 2.1.0 ok")
                elif verb == "RCPT":
                    rcpts.append(cmd[cmd.index("<") + 1:cmd.rindex(">")])
                    say("250 2.1.5 ok")
                elif verb == "DATA":
                    say("354 go on")
                    lines = []
                    for _ in range(100000):
                        l = f.readline(100000)
                        if not l or l in (b".\r\n", b".\n"):
                            break
                        lines.append(l[1:] if l.startswith(b"..") else l)
                    data = b"".join(lines)
                    self.received.append(data)
                    try:
                        with smtplib.SMTP("127.0.0.1", self.reinject, timeout=30) as s:
                            s.sendmail(sender, rcpts, b"X-Filtered: by the test filter\r\n" + data)
                        say("250 2.0.0 reinjected")
                    except (smtplib.SMTPException, OSError) as e:
                        say(f"451 4.3.0 reinjection failed: {e}")
                elif verb == "RSET":
                    say("250 ok")
                elif verb == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 ok")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def filtered():
    fport, rport = reserve_port(), reserve_port()
    inst = start_instance(users=("alice@example.test",), start=False,
                          config={"content_filter": f"smtp:[127.0.0.1]:{fport}"})
    with open(os.path.join(inst.conf_dir, "master.conf"), "a") as f:
        f.write(f"reinject     inet    127.0.0.1:{rport}   -   y   10   smtpd"
                " -o content_filter= -o mynetworks=127.0.0.0/8\n")
    flt = SmtpFilter(fport, rport)
    inst.start()
    yield inst, flt
    inst.cleanup()
    flt.stop()


def message(subject):
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@remote.test>"
    return mid, (f"From: {SENDER}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n\r\n"
                 f"body of {subject}\r\n").encode()


def copies(inst, addr, mid):
    return [m for m in inst.messages(addr) if mid.encode() in m]


def test_smtp_mail_goes_through_the_filter_once(filtered):
    inst, flt = filtered
    mark = inst.log_mark()
    mid, data = message("filtered smtp")
    inst.submit(SENDER, ["alice@example.test"], data)
    got = inst.wait_message("alice@example.test", mid, timeout=30)
    assert b"X-Filtered: by the test filter" in got
    inst.wait_settled(mark, timeout=30)
    assert len(copies(inst, "alice@example.test", mid)) == 1
    assert sum(mid.encode() in d for d in flt.received) == 1
    # The first queue file went to the filter, the reinjected one to local.
    assert inst.log_lines("relay=", f"127.0.0.1]:{flt.port}", "status=sent", since=mark)


def test_pickup_mail_goes_through_the_filter(filtered):
    inst, flt = filtered
    mid, data = message("filtered pickup")
    p = subprocess.run([os.path.join(BUILD, "bin", "sendmail"), "-C", inst.conf_dir,
                        "-f", SENDER, "alice@example.test"], input=data, timeout=30,
                       capture_output=True)
    assert p.returncode == 0, p.stderr
    got = inst.wait_message("alice@example.test", mid, timeout=30)
    assert b"X-Filtered: by the test filter" in got
    assert sum(mid.encode() in d for d in flt.received) == 1


def test_filter_down_defers_and_nothing_is_lost():
    fport = reserve_port()      # nobody listens there
    inst = start_instance(users=("bob@example.test",),
                          config={"content_filter": f"smtp:[127.0.0.1]:{fport}"})
    try:
        mark = inst.log_mark()
        mid, data = message("filter down")
        qid = inst.submit(SENDER, ["bob@example.test"], data)
        inst.wait_log(qid, "status=deferred", since=mark, timeout=30)
        assert not copies(inst, "bob@example.test", mid)
        # kept in the queue (deferred, or active again for its retry), never removed
        wait_for(lambda: qid in inst.queue_files("deferred"), timeout=30,
                 what=f"{qid} in deferred/")
        assert f"{qid}: removed" not in inst.log_since(mark)
    finally:
        inst.cleanup()


def test_header_checks_filter_action():
    """A header_checks FILTER sends that one message through the filter; the others
    go straight to delivery.  The reinjection listener turns the checks off."""
    fport, rport = reserve_port(), reserve_port()
    inst = start_instance(users=("carol@example.test",), start=False)
    table = inst.map_path("filter.pcre")
    with open(table, "w") as f:
        f.write(f"/^Subject: please filter/ FILTER smtp:[127.0.0.1]:{fport}\n")
    inst.config(header_checks=f"pcre:{table}")
    with open(os.path.join(inst.conf_dir, "master.conf"), "a") as f:
        f.write(f"reinject     inet    127.0.0.1:{rport}   -   y   10   smtpd"
                " -o header_checks= -o mynetworks=127.0.0.0/8\n")
    flt = SmtpFilter(fport, rport)
    try:
        inst.start()
        mark = inst.log_mark()
        mid, data = message("please filter")
        qid = inst.submit(SENDER, ["carol@example.test"], data)
        got = inst.wait_message("carol@example.test", mid, timeout=30)
        assert b"X-Filtered: by the test filter" in got
        inst.wait_log(qid, "filter: header Subject: please filter", since=mark)
        mid2, data2 = message("plain")
        inst.submit(SENDER, ["carol@example.test"], data2)
        got = inst.wait_message("carol@example.test", mid2, timeout=30)
        assert b"X-Filtered" not in got
        inst.wait_settled(mark, timeout=30)
        assert sum(mid.encode() in d for d in flt.received) == 1
        assert not any(mid2.encode() in d for d in flt.received)
    finally:
        inst.cleanup()
        flt.stop()

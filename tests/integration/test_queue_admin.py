"""The queue says why: each deferred recipient's last reason and next attempt are kept
in the message's defer record and shown by `postern queue list` (Postfix's mailq
layout, the reason in parentheses), `queue list --json` and `queue show`; hold,
release, delete, requeue and flush take several ids, ALL or ids on standard input,
log what they did, refuse anything that is not a queue id, and leave alone a message
that qmgr is delivering."""

import json
import os
import re
import socket
import threading

import pytest

from conftest import start_instance
from instance import reserve_port, wait_for

USER = "alice@example.test"


class Staller:
    """A TCP server that accepts connections and never says a word while `hold` is
    set (a delivery to it stays in progress), then closes them."""

    def __init__(self):
        self.port = reserve_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.conns = []
        self.release = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture(scope="module")
def inst():
    dead = reserve_port()           # nobody listens there: every attempt is refused
    i = start_instance(users=(USER,), config={
        "relayhost": f"[127.0.0.1]:{dead}", "minimal_backoff_time": "1h",
        "maximal_backoff_time": "2h", "mynetworks": "127.0.0.0/8"})
    i.dead_port = dead
    yield i
    i.cleanup()


def deferred(inst, rcpts, subject):
    mark = inst.log_mark()
    qid = inst.submit(USER, rcpts, f"Subject: {subject}\r\n\r\nbody\r\n")
    inst.wait_log(f"{qid}: ", "status=deferred", since=mark)
    wait_for(lambda: qid in inst.queue_files("deferred")
             and qid in inst.queue_files("defer"), what=f"{qid} deferred with its record")
    return qid


def listing(inst):
    return inst.run("queue", "list").stdout


def json_listing(inst):
    out = inst.run("queue", "list", "--json").stdout
    return {o["queue_id"]: o for o in map(json.loads, out.splitlines())}


def test_list_and_show_say_why(inst):
    inst.run("queue", "delete", "ALL", check=False)
    a = deferred(inst, ["x@remote.test", "y@remote.test"], "first")
    b = deferred(inst, ["z@remote.test"], "second")
    out = listing(inst)
    lines = out.splitlines()
    assert lines[0].split() == ["-Queue", "ID------------", "--Size--", "----Arrival",
                                "Time----", "-Sender/Recipient-------"]
    i = next(k for k, ln in enumerate(lines) if ln.startswith(a + " "))
    assert lines[i].endswith(USER)
    # the reason in parentheses, once for the recipients that share it, then each
    # recipient indented
    assert re.fullmatch(r"\(4\.\d\.\d .*127\.0\.0\.1.*\)", lines[i + 1]), lines[i + 1]
    assert lines[i + 2].strip() == "x@remote.test" and lines[i + 2].startswith(" " * 40)
    assert lines[i + 3].strip() == "y@remote.test"
    assert lines[i + 4] == ""
    assert lines[-1] == "-- 1 Kbytes in 2 Requests." or re.fullmatch(
        r"-- \d+ Kbytes in 2 Requests\.", lines[-1])

    js = json_listing(inst)
    assert set(js) == {a, b}
    ra = js[a]
    assert ra["queue_name"] == "deferred" and ra["sender"] == USER
    assert [r["address"] for r in ra["recipients"]] == ["x@remote.test", "y@remote.test"]
    r0 = ra["recipients"][0]
    assert r0["delay_reason"].startswith("4.") and "127.0.0.1" in r0["delay_reason"]
    assert r0["next_attempt"] >= r0["last_attempt"] + 3000       # minimal_backoff_time

    show = inst.run("queue", "show", b).stdout
    assert "recipient: <z@remote.test>\n  reason: 4." in show
    assert "  next attempt: " in show and "Subject: second" in show


def test_hold_release_delete_several_and_logged(inst):
    inst.run("queue", "delete", "ALL", check=False)
    a = deferred(inst, ["h1@remote.test"], "h1")
    b = deferred(inst, ["h2@remote.test"], "h2")
    mark = inst.log_mark()
    p = inst.run("queue", "hold", a, b)
    assert p.stdout == f"{a}: placed on hold\n{b}: placed on hold\n"
    assert set(inst.queue_files("hold")) >= {a, b}
    out = listing(inst)
    assert f"{a}!" in out and f"{b}!" in out
    # the reason stays with a held message
    assert json_listing(inst)[a]["recipients"][0]["delay_reason"].startswith("4.")
    inst.wait_log(f"{a}: placed on hold", since=mark)

    p = inst.run("queue", "release", "ALL")
    assert sorted(p.stdout.splitlines()) == sorted([f"{a}: released from hold",
                                                    f"{b}: released from hold"])
    inst.wait_log(f"{b}: released from hold", since=mark)
    # released, tried again at once, deferred again
    wait_for(lambda: {a, b} <= set(inst.queue_files("deferred")), what="deferred again")

    p = inst.run("queue", "delete", "-", input=f"{a}\n\n  {b}  \n")
    assert p.stdout == f"{a}: removed by admin\n{b}: removed by admin\n"
    inst.wait_log(f"{a}: removed by admin", since=mark)
    assert a not in inst.queue_files("deferred") and a not in inst.queue_files("defer")
    assert "Mail queue is empty" in listing(inst)


def test_flush_one_and_requeue(inst):
    inst.run("queue", "delete", "ALL", check=False)
    a = deferred(inst, ["f1@remote.test"], "f1")
    b = deferred(inst, ["f2@remote.test"], "f2")
    first = json_listing(inst)[a]["recipients"][0]["last_attempt"]
    mark = inst.log_mark()
    p = inst.run("queue", "flush", a)
    assert p.stdout == f"{a}: scheduled for delivery now\n"
    # only a is tried again
    inst.wait_log(f"{a}: to=<f1@remote.test>", "status=deferred", since=mark)
    wait_for(lambda: a in inst.queue_files("deferred")
             and json_listing(inst).get(a, {}).get("recipients", [{}])[0]
             .get("last_attempt", 0) >= first, what="a's new attempt")
    assert not inst.log_lines(f"{b}: to=", since=mark)

    mark = inst.log_mark()
    p = inst.run("queue", "requeue", "ALL")
    assert f"{a}: requeued" in p.stdout and f"{b}: requeued" in p.stdout
    inst.wait_log(f"{b}: to=<f2@remote.test>", "status=deferred", since=mark)
    inst.run("queue", "delete", "ALL")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "deferred/0123", "/etc/passwd", "",
                                 "0" * 21 + "/", ".", "ALL2", "12345678901234567890z"])
def test_refuses_what_is_not_a_queue_id(inst, bad):
    for cmd in ("hold", "release", "delete", "requeue", "flush"):
        p = inst.run("queue", cmd, bad, check=False)
        assert p.returncode == 1, (cmd, bad)
        assert f"{bad}: not a queue id" in p.stderr, (cmd, p.stderr)
    p = inst.run("queue", "delete", "-", input=f"{bad}\n", check=False)
    assert p.returncode == 1 and "not a queue id" in p.stderr or bad == ""
    assert os.path.exists("/etc/passwd")


def test_missing_ids_are_reported_and_others_still_done(inst):
    inst.run("queue", "delete", "ALL", check=False)
    a = deferred(inst, ["m1@remote.test"], "m1")
    ghost = "0" * 21
    p = inst.run("queue", "hold", ghost, a, check=False)
    assert p.returncode == 1
    assert f"{ghost}: no such message" in p.stderr
    assert p.stdout == f"{a}: placed on hold\n"
    inst.run("queue", "delete", a)


def test_a_message_being_delivered_is_left_alone(inst):
    inst.run("queue", "delete", "ALL", check=False)
    st = Staller()
    try:
        inst.config(relayhost=f"[127.0.0.1]:{st.port}")
        inst.reload()
        qid = inst.submit(USER, ["slow@remote.test"], "Subject: slow\r\n\r\nbody\r\n")
        wait_for(lambda: st.conns and qid in inst.queue_files("active"),
                 what="the delivery to be in progress")
        for cmd in ("hold", "delete", "requeue"):
            p = inst.run("queue", cmd, qid, check=False)
            assert p.returncode == 1 and "being delivered now" in p.stderr, (cmd, p.stderr)
        p = inst.run("queue", "hold", "ALL")
        assert qid not in p.stdout
        assert qid in inst.queue_files("active")
        st.close()                  # the attempt fails: deferred, and then it can be held
        wait_for(lambda: qid in inst.queue_files("deferred"), what="the deferral")
        assert inst.run("queue", "hold", qid).stdout == f"{qid}: placed on hold\n"
        inst.run("queue", "delete", qid)
    finally:
        st.close()
        inst.config(relayhost=f"[127.0.0.1]:{inst.dead_port}")
        inst.reload()

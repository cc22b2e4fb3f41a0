"""The admin command as an operator meets it: `postern init` writes the postmaster and
root aliases, postmaster@ every local and virtual domain is accepted (RFC 5321 4.5.1),
`postern status` (and --json) shows each service's state, the queue's counts and the
age of the oldest deferred message."""

import json
import os
import subprocess

import pytest

from conftest import start_instance
from instance import POSTERN, wait_for

USER = "alice@example.test"


@pytest.fixture(scope="module")
def inst():
    i = start_instance(users=(USER,), domains=("example.test", "other.test"),
                       config={"mynetworks": "127.0.0.0/8"})
    yield i
    i.cleanup()


def test_init_writes_postmaster_and_root_aliases(inst):
    entries = {}
    with open(inst.map_path("aliases")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                k, v = line.split(None, 1)
                entries[k] = v.strip()
    # postmaster goes to root, root to the first user added
    assert entries == {"postmaster": "root", "root": USER}


def test_init_with_postmaster_option(tmp_path):
    d = tmp_path / "i"
    p = subprocess.run([POSTERN, "init", str(d), "--domain", "example.test",
                        "--postmaster", "admin@example.net"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    text = (d / "maps" / "aliases").read_text()
    assert "\npostmaster root\n" in text and "\nroot admin@example.net\n" in text
    # a later first user does not take root's mail away from the chosen address
    p = subprocess.run([POSTERN, "-c", str(d), "user", "add", "bob@example.test"],
                       input="pw\n", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "\nroot admin@example.net\n" in (d / "maps" / "aliases").read_text()
    assert "root" not in p.stdout
    for bad in ("a b@example.net", "x@y, z@w", "|/bin/sh", ""):
        p = subprocess.run([POSTERN, "init", str(tmp_path / "j"), "--postmaster", bad],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "--postmaster" in p.stderr, bad
        assert not (tmp_path / "j" / "postern.conf").exists()


@pytest.mark.parametrize("rcpt", ["postmaster@example.test", "PostMaster@other.test",
                                  "postmaster@mx.example.test", "postmaster"])
def test_postmaster_reaches_the_first_user(inst, rcpt):
    mid = f"<pm-{rcpt.replace('@', '.')}@test>"
    inst.submit("someone@remote.test", [rcpt],
                f"Message-ID: {mid}\r\nSubject: hello postmaster\r\n\r\nhi\r\n")
    inst.wait_message(USER, mid)


def test_postmaster_accepted_without_any_alias(inst):
    saved = open(inst.map_path("aliases")).read()
    try:
        inst.write_map("aliases", "")
        with inst.smtp() as s:
            s.ehlo()
            assert s.mail("someone@remote.test")[0] == 250
            assert s.rcpt("postmaster@other.test")[0] == 250
            assert s.rcpt("nobody-at-all@other.test")[0] == 550
            s.rset()
    finally:
        inst.write_map("aliases", saved)


def test_status_text_and_json(inst):
    p = inst.run("status")
    assert p.stdout.startswith(f"postern is running (pid {inst.master_pid()})\n")
    lines = p.stdout.splitlines()
    services = lines[lines.index("services:") + 1:lines.index("queue:")]
    names = {ln.split()[0]: ln.split()[1] for ln in services}
    assert names["smtp"] == "running" and names["qmgr"] == "running"
    assert "deferred" in p.stdout and "hold" in p.stdout

    p = inst.run("status", "--json")
    assert p.stdout.count("\n") == 1
    st = json.loads(p.stdout)
    assert st["running"] is True and st["pid"] == inst.master_pid()
    assert {s["name"]: s["state"] for s in st["services"]}["qmgr"] == "running"
    assert set(st["queue"]) == {"maildrop", "incoming", "active", "deferred", "hold",
                                "corrupt"}
    assert all(isinstance(v, int) for v in st["queue"].values())


def test_status_counts_and_oldest_deferred(inst):
    # a message for an unreachable relay host stays deferred
    inst.config(relayhost="[127.0.0.1]:9")
    inst.reload()
    try:
        mark = inst.log_mark()
        qid = inst.submit("alice@example.test", ["far@remote.test"],
                          "Subject: stuck\r\n\r\nbody\r\n")
        inst.wait_log(f"{qid}: ", "status=deferred", since=mark)
        wait_for(lambda: qid in inst.queue_files("deferred"), what="the deferred file")
        st = json.loads(inst.run("status", "--json").stdout)
        assert st["queue"]["deferred"] >= 1
        assert st["oldest_deferred_age"] is not None and 0 <= st["oldest_deferred_age"] < 600
        text = inst.run("status").stdout
        assert [ln for ln in text.splitlines() if ln.split()[:1] == ["deferred"]
                and "(oldest " in ln]
    finally:
        inst.run("queue", "delete", qid, check=False)
        inst.config(relayhost="")
        inst.reload()


def test_status_shows_a_throttled_service(tmp_path):
    i = start_instance(start=False)
    try:
        # a service whose daemon cannot start: its processes fail, master throttles it
        with open(os.path.join(i.conf_dir, "master.conf"), "a") as f:
            f.write("broken       daemon  private/broken    -        n       1      qmgr -Z\n")
        i.start()

        def throttled():
            st = json.loads(i.run("status", "--json").stdout)
            return [s for s in st["services"] if s["name"] == "broken"
                    and s["state"] == "throttled" and s["failures"] >= 1]
        svc = wait_for(throttled, what="the broken service to be throttled")[0]
        assert svc["last_failure"] == "exit status 1"
        text = i.run("status").stdout
        assert [ln for ln in text.splitlines()
                if ln.split()[:2] == ["broken", "throttled"] and "failed process" in ln]
    finally:
        i.cleanup()


def test_status_when_stopped(inst, tmp_path):
    d = tmp_path / "stopped"
    subprocess.run([POSTERN, "init", str(d)], check=True, capture_output=True, timeout=60)
    p = subprocess.run([POSTERN, "-c", str(d), "status", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1
    st = json.loads(p.stdout)
    assert st["running"] is False and st["services"] == []
    assert st["queue"]["deferred"] == 0 and st["oldest_deferred_age"] is None

"""Junk folder delivery: a message whose header says it is spam (junk_headers) goes to
the recipient's .Junk Maildir++ folder, made when missing, never through a link."""

import os
import time

import pytest

from conftest import start_instance
from instance import maildir_messages, wait_for

SENDER = "sender@remote.test"


@pytest.fixture(scope="module")
def mta():
    inst = start_instance(users=("alice@example.test", "bob@example.test",
                                 "carol@example.test"))
    yield inst
    inst.cleanup()


def message(subject, extra=""):
    mid = f"<{subject.replace(' ', '.')}.{time.time()}@remote.test>"
    return mid, (f"From: {SENDER}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n{extra}\r\n"
                 f"body of {subject}\r\n").encode()


def junk_dir(inst, addr):
    return os.path.join(inst.maildir(addr), ".Junk")


def wait_in(path, mid, timeout=20):
    def found():
        for m in maildir_messages(path):
            if mid.encode() in m:
                return m
        return None
    return wait_for(found, timeout=timeout, what=f"{mid} in {path}")


def test_spamassassin_flag_goes_to_junk(mta):
    mid, data = message("sa spam", "X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=1000\r\n")
    mta.submit(SENDER, ["alice@example.test"], data)
    got = wait_in(junk_dir(mta, "alice@example.test"), mid)
    assert b"Delivered-To: alice@example.test\n" in got
    folder = junk_dir(mta, "alice@example.test")
    for sub in ("tmp", "new", "cur"):
        assert os.path.isdir(os.path.join(folder, sub))
    assert os.path.isfile(os.path.join(folder, "maildirfolder"))
    inbox = os.stat(mta.maildir("alice@example.test"))
    assert os.stat(folder).st_uid == inbox.st_uid
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert not any(mid.encode() in m for m in mta.messages("alice@example.test"))


def test_rspamd_header_case_ignored(mta):
    mid, data = message("rspamd spam", "X-Spam: yes\r\n")
    mta.submit(SENDER, ["alice@example.test"], data)
    wait_in(junk_dir(mta, "alice@example.test"), mid)


def test_ham_and_other_values_stay_in_inbox(mta):
    mark = mta.log_mark()
    mid, data = message("ham", "X-Spam-Flag: NO\r\nX-Spam: Nope\r\n")
    mid2, data2 = message("ham in body")
    data2 += b"X-Spam-Flag: YES\r\n"
    mta.submit(SENDER, ["bob@example.test"], data)
    mta.submit(SENDER, ["bob@example.test"], data2)
    mta.wait_message("bob@example.test", mid)
    mta.wait_message("bob@example.test", mid2)
    mta.wait_settled(mark)
    assert not os.path.exists(junk_dir(mta, "bob@example.test"))


def test_linked_junk_folder_is_refused(mta, tmp_path):
    # carol's Maildir exists (a first message); .Junk is a link elsewhere.
    mid, data = message("carol first")
    mta.submit(SENDER, ["carol@example.test"], data)
    mta.wait_message("carol@example.test", mid)
    elsewhere = tmp_path / "elsewhere"
    for sub in ("tmp", "new", "cur"):
        (elsewhere / sub).mkdir(parents=True)
    os.chown(elsewhere, *owner(mta, "carol@example.test"))
    for sub in ("tmp", "new", "cur"):
        os.chown(elsewhere / sub, *owner(mta, "carol@example.test"))
    os.symlink(elsewhere, junk_dir(mta, "carol@example.test"))
    mark = mta.log_mark()
    mid, data = message("carol spam", "X-Spam-Flag: YES\r\n")
    qid = mta.submit(SENDER, ["carol@example.test"], data)
    mta.wait_log(qid, "status=deferred", since=mark)
    assert not any(os.listdir(elsewhere / sub) for sub in ("tmp", "new", "cur"))
    # Once the link is gone, the retry makes the folder and delivers.
    os.unlink(junk_dir(mta, "carol@example.test"))
    wait_in(junk_dir(mta, "carol@example.test"), mid, timeout=30)


def owner(inst, addr):
    st = os.stat(inst.maildir(addr))
    return st.st_uid, st.st_gid


def test_configured_header_and_folder():
    inst = start_instance(users=("dave@example.test",),
                          config={"junk_headers": "X-Junk-Test: 1",
                                  "junk_folder": "Spam"})
    try:
        mid, data = message("custom", "X-Junk-Test: 1\r\n")
        mid2, data2 = message("default header ignored", "X-Spam-Flag: YES\r\n")
        inst.submit(SENDER, ["dave@example.test"], data)
        inst.submit(SENDER, ["dave@example.test"], data2)
        wait_in(os.path.join(inst.maildir("dave@example.test"), ".Spam"), mid)
        inst.wait_message("dave@example.test", mid2)
    finally:
        inst.cleanup()


def test_empty_junk_folder_keeps_spam_in_inbox():
    inst = start_instance(users=("erin@example.test",), config={"junk_folder": ""})
    try:
        mid, data = message("spam to inbox", "X-Spam-Flag: YES\r\n")
        inst.submit(SENDER, ["erin@example.test"], data)
        inst.wait_message("erin@example.test", mid)
        assert not os.path.exists(junk_dir(inst, "erin@example.test"))
    finally:
        inst.cleanup()


GOOD = {"junk_folder": "Junk", "junk_headers": "X-Spam-Flag: YES", "content_filter": ""}


def test_bad_settings_are_refused():
    inst = start_instance(start=False)
    try:
        for key, value in (("junk_folder", "../x"), ("junk_folder", "a/b"),
                           ("junk_headers", "X-Spam-Flag YES"),
                           ("content_filter", "smtp"), ("content_filter", "Bad Name:x")):
            inst.config(**{key: value})
            p = inst.run("check", check=False)
            assert p.returncode != 0, (key, value, p.stdout)
            assert key in p.stderr + p.stdout
            inst.config(**{key: GOOD[key]})
        assert inst.run("check", check=False).returncode == 0
    finally:
        inst.cleanup()

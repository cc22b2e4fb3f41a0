"""Real IMAP clients from Debian against imapd: mbsync (isync) syncing a local Maildir
both ways and then once more with nothing left to do, curl's imap:// and imaps://
URLs, and fetchmail over IMAP (with STARTTLS)."""

import imaplib
import mailbox
import os
import re
import shutil
import subprocess

import pytest

from conftest import start_instance
from instance import wait_for
from imap_instance import greets as _greets

USER = "alice@example.test"
PASSWORD = "secret"


@pytest.fixture(scope="module")
def imap(request):
    inst = start_instance(users=(USER, "bob@example.test", "carol@example.test"),
                          domains=("example.test",),
                          config={"mynetworks": "192.0.2.0/24"})
    wait_for(lambda: _greets(inst), what="IMAP port to answer")
    yield inst
    inst.cleanup()


def deliver(inst, rcpt, n, tag):
    for i in range(n):
        inst.submit("sender@example.org", [rcpt],
                    f"From: sender@example.org\r\nTo: {rcpt}\r\nSubject: {tag} {i}\r\n"
                    f"Message-ID: <{tag}-{i}@example.org>\r\n\r\nbody {i}\r\n".encode())
    for i in range(n):
        inst.wait_message(rcpt, f"<{tag}-{i}@example.org>")


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
def test_mbsync_both_ways(imap, tmp_path):
    deliver(imap, USER, 3, "mb")
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount remote
Host 127.0.0.1
Port {imap.port("imaps")}
User {USER}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {os.path.join(imap.conf_dir, "tls", "cert.pem")}
SystemCertificates no

IMAPStore remote
Account remote

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")

    def run():
        p = subprocess.run(["mbsync", "-c", str(rc), "-V", "sync"], capture_output=True,
                           text=True, timeout=120, env=dict(os.environ, HOME=str(tmp_path)))
        return p

    p = run()
    assert p.returncode == 0, p.stdout + p.stderr
    got = list((local / "INBOX" / "cur").iterdir()) + list((local / "INBOX" / "new").iterdir())
    assert len(got) == 3, p.stdout
    # near to far: a new local message and a local flag change
    md = mailbox.Maildir(str(local / "INBOX"), create=False)
    msg = mailbox.MaildirMessage(b"From: me@example.test\r\nSubject: from local\r\n"
                                 b"Message-ID: <local-1@example.test>\r\n\r\nhi\r\n")
    msg.set_subdir("cur")
    msg.set_flags("S")
    md.add(msg)
    key = next(k for k, m in md.items() if m["Subject"] == "mb 0")
    m0 = md[key]
    m0.add_flag("F")
    md[key] = m0
    p = run()
    assert p.returncode == 0, p.stdout + p.stderr
    c = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"),
                          ssl_context=__import__("ssl")._create_unverified_context())
    c.login(USER, PASSWORD)
    c.select("INBOX")
    typ, data = c.search(None, 'HEADER Message-ID "<local-1@example.test>"')
    assert data[0].strip(), "local message not uploaded"
    typ, data = c.search(None, "FLAGGED SUBJECT", '"mb 0"')
    assert data[0].strip(), "local flag not synced"
    c.logout()
    # a second run has nothing to do: the same files here, the same UIDs and flags there
    def local_state():
        return sorted(os.listdir(local / "INBOX" / "cur")) + \
            sorted(os.listdir(local / "INBOX" / "new"))

    def remote_state():
        c = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"),
                              ssl_context=__import__("ssl")._create_unverified_context())
        c.login(USER, PASSWORD)
        c.select("INBOX", readonly=True)
        typ, data = c.fetch("1:*", "(UID FLAGS)")
        c.logout()
        return sorted(re.sub(rb" ?\\Recent", b"", d) for d in data)

    before = (local_state(), remote_state())
    p = run()
    assert p.returncode == 0, p.stdout + p.stderr
    assert (local_state(), remote_state()) == before


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "60", *args], capture_output=True,
                          timeout=90)


def test_curl_imap_and_imaps(imap):
    deliver(imap, "bob@example.test", 2, "curl")
    # imap:// with STARTTLS required (LOGINDISABLED before it)
    base = f"imap://127.0.0.1:{imap.port('imap')}"
    bodies = []
    for uid in (1, 2):
        p = curl("--ssl-reqd", "-k", "-u", f"bob@example.test:{PASSWORD}",
                 f"{base}/INBOX;UID={uid}")
        assert p.returncode == 0, p.stderr
        bodies.append(p.stdout)
    ids = [re.search(rb"Message-ID: <(curl-\d)@", b).group(1) for b in bodies]
    assert sorted(ids) == [b"curl-0", b"curl-1"]
    p = curl("--ssl-reqd", "-k", "-u", f"bob@example.test:{PASSWORD}", f"{base}/")
    assert p.returncode == 0 and b"INBOX" in p.stdout, p.stderr
    p = curl("-k", "-u", f"bob@example.test:{PASSWORD}",
             f"imaps://127.0.0.1:{imap.port('imaps')}/INBOX?SUBJECT%20%22curl%201%22")
    assert p.returncode == 0, p.stderr
    assert b"* SEARCH %d" % (ids.index(b"curl-1") + 1) in p.stdout
    # without TLS, the login is refused
    p = curl("-u", f"bob@example.test:{PASSWORD}", f"{base}/INBOX;UID=1")
    assert p.returncode != 0


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
def test_fetchmail_imap(imap, tmp_path):
    deliver(imap, "carol@example.test", 3, "fm")
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 with proto IMAP port {imap.port("imap")} '
                  f'user "carol@example.test" there with password "{PASSWORD}" is "root" here '
                  f'no sslcertck\n')
    rc.chmod(0o600)
    out = tmp_path / "out.mbox"
    mda = tmp_path / "mda.sh"
    mda.write_text(f"#!/bin/sh\n{{ echo 'From fetchmail'; cat; echo; }} >> {out}\n")
    mda.chmod(0o755)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    p = subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "--sslproto", "tls1.2+",
                        "--mda", str(mda), "--pidfile", str(tmp_path / "pid"), "--nodetach"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    ids = sorted(m["Message-ID"] for m in mailbox.mbox(str(out), create=False))
    assert ids == [f"<fm-{i}@example.org>" for i in range(3)]
    # fetchmail marks them seen and (without keep) deletes them
    c = imaplib.IMAP4_SSL("127.0.0.1", imap.port("imaps"),
                          ssl_context=__import__("ssl")._create_unverified_context())
    c.login("carol@example.test", PASSWORD)
    typ, data = c.select("INBOX")
    assert data[0] == b"0"
    c.logout()

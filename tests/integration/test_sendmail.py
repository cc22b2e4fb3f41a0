"""sendmail(1), mailq, newaliases and pickup(8), used the way cron, scripts and mail
clients use them.

Run as root, the instance runs as root too (daemons as postern) and the untrusted
submitter is `nobody`, running a copy of sendmail installed setgid posterndrop, as
`make install` leaves it.  Run as an ordinary user, everything runs as that user and
trusted_users leaves that user out, so the same checks apply."""

import os
import pwd
import re
import shutil
import subprocess
import time

import pytest

from conftest import start_instance
from instance import BUILD, POSTERN, reserve_port, wait_for

SENDMAIL = os.path.join(BUILD, "bin", "sendmail")
ROOT = os.geteuid() == 0
HOST = "mx.example.test"            # the instance's myhostname, so also myorigin


def _setup_submitter(inst):
    """The argv prefix that runs sendmail as the untrusted user, and that user's name."""
    if not ROOT:
        return [SENDMAIL], pwd.getpwuid(os.getuid()).pw_name
    bindir = os.path.join(inst.dir, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    copy = os.path.join(bindir, "sendmail")
    shutil.copy(SENDMAIL, copy)
    shutil.chown(copy, "root", "posterndrop")
    os.chmod(copy, 0o2755)
    nobody = pwd.getpwnam("nobody")
    return (["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
             "--clear-groups", copy], "nobody")


@pytest.fixture(scope="module")
def sm():
    closed = reserve_port()          # nothing listens there: remote mail is deferred
    inst = start_instance(users=("alice@example.test", "bob@example.test"),
                          config={"trusted_users": "root",
                                  "relayhost": f"[127.0.0.1]:{closed}",
                                  "queue_run_delay": "300s",
                                  "minimal_backoff_time": "300s",
                                  "maximal_backoff_time": "300s"})
    inst.submitter, inst.user = _setup_submitter(inst)
    yield inst
    inst.cleanup()


def sendmail(inst, *args, input="", as_user=True, check=True, name=None):
    """Runs sendmail with -C for the instance; as the untrusted user unless as_user is
    False (then as the test process itself)."""
    prog = list(inst.submitter) if as_user else [SENDMAIL]
    if name is not None:
        link = os.path.join(os.path.dirname(prog[-1]), name)
        if not os.path.exists(link):
            os.symlink("sendmail", link)
        prog[-1] = link
    p = subprocess.run(prog + ["-C", inst.conf_dir] + list(args), input=input.encode(),
                       capture_output=True, timeout=60)
    if check:
        assert p.returncode == 0, (p.returncode, p.stderr)
    return p


def header(msg, name):
    m = re.search(rb"^" + name.encode() + rb":[ \t]*(.*)$", msg, re.M | re.I)
    return m.group(1).decode() if m else None


def test_cron_style_injection(sm):
    """echo ... | sendmail -t, as cron and scripts do: delivered, with the submitting
    user as the sender, and the missing Date and From added."""
    mark = sm.log_mark()
    sendmail(sm, "-t", input="To: alice@example.test\nSubject: nightly job\n"
                              "Message-ID: <cron-1@example.test>\n\njob output\n")
    msg = sm.wait_message("alice@example.test", "<cron-1@example.test>")
    own = f"{sm.user}@{HOST}"
    assert header(msg, "Return-Path") == f"<{own}>"
    assert own in header(msg, "From")
    assert header(msg, "Date")
    assert b"job output" in msg
    uid = pwd.getpwnam(sm.user).pw_uid
    assert re.search(rb"^Received: by mx\.example\.test \(Postern, from userid %d\)" % uid,
                     msg, re.M)
    sm.wait_log("/pickup[", f"uid={uid} from=<{own}>", since=mark)


def test_message_id_added(sm):
    """A message without Message-ID gets one; Subject is kept."""
    sendmail(sm, "alice@example.test", input="Subject: no id here\n\nbody\n")
    msg = wait_for(lambda: next((m for m in sm.messages("alice@example.test")
                                 if b"Subject: no id here" in m), None),
                   what="the message without Message-ID")
    assert re.search(rb"^Message-ID: <[0-9A-F]{21}@mx\.example\.test>$", msg, re.M)


def test_forged_sender_is_corrected(sm):
    """An untrusted user's -f is replaced by the user's own address, and logged."""
    mark = sm.log_mark()
    sendmail(sm, "-f", "ceo@bank.example", "alice@example.test",
             input="Subject: trust me\nMessage-ID: <forged-1@example.test>\n\nx\n")
    msg = sm.wait_message("alice@example.test", "<forged-1@example.test>")
    own = f"{sm.user}@{HOST}"
    assert header(msg, "Return-Path") == f"<{own}>"
    sm.wait_log("/pickup[", "sender <ceo@bank.example> replaced by", f"<{own}>", since=mark)


def test_trusted_sender_is_kept(sm):
    """A user in trusted_users keeps the -f sender (root here; an ordinary test user is
    added to trusted_users for this test)."""
    if not ROOT:
        sm.config(trusted_users=f"root, {sm.user}")
        sm.reload(daemons=("pickup",))
    try:
        mark = sm.log_mark()
        sendmail(sm, "-f", "robot@example.test", "-F", "The Robot", "alice@example.test",
                 as_user=False,
                 input="Subject: from a trusted user\nMessage-ID: <trusted-1@example.test>\n\nx\n")
        msg = sm.wait_message("alice@example.test", "<trusted-1@example.test>")
        assert header(msg, "Return-Path") == "<robot@example.test>"
        assert header(msg, "From") == "The Robot <robot@example.test>"
        sm.wait_log("/pickup[", "from=<robot@example.test>", since=mark)
        assert not sm.log_lines("replaced by", since=mark)
    finally:
        if not ROOT:
            sm.config(trusted_users="root")
            sm.reload(daemons=("pickup",))


def test_bcc_removed_and_recipients_from_header(sm):
    """-t takes To, Cc and Bcc (display names, comments and groups too); Bcc does not
    reach anybody's copy; the recipients given as arguments are added."""
    sendmail(sm, "-t", input=(
        'To: "Smith, Alice" <alice@example.test> (first)\n'
        "Cc: friends: bob@example.test;\n"
        "Bcc: alice@example.test\n"
        "Subject: t and bcc\nMessage-ID: <bcc-1@example.test>\n\nhello\n"))
    for rcpt in ("alice@example.test", "bob@example.test"):
        msg = sm.wait_message(rcpt, "<bcc-1@example.test>")
        assert header(msg, "Bcc") is None
        assert header(msg, "Cc") == "friends: bob@example.test;"


def test_lone_dot(sm):
    """Without -i a line holding only "." ends the message; with -i or -oi it is a
    line of the message."""
    sendmail(sm, "alice@example.test",
             input="Subject: dot\nMessage-ID: <dot-1@example.test>\n\nbefore\n.\nafter\n")
    msg = sm.wait_message("alice@example.test", "<dot-1@example.test>")
    assert b"before" in msg and b"after" not in msg
    for i, opt in enumerate(("-i", "-oi")):
        mid = f"<dot-{i + 2}@example.test>"
        sendmail(sm, opt, "alice@example.test",
                 input=f"Subject: dot\nMessage-ID: {mid}\n\nbefore\n.\nafter\n")
        msg = sm.wait_message("alice@example.test", mid)
        assert b"\nbefore\n.\nafter\n" in msg.replace(b"\r\n", b"\n")


def test_unknown_options_are_ignored(sm):
    """What cron, mutt and PHP pass: traditional options mean nothing here, draw a
    warning, and the mail still goes."""
    p = sendmail(sm, "-oem", "-odb", "-B8BITMIME", "-m", "-n", "-FCronDaemon", "-i", "--",
                 "alice@example.test",
                 input="Subject: options\nMessage-ID: <opts-1@example.test>\n\nx\n")
    err = p.stderr.decode()
    for opt in ("-oem", "-odb", "-B8BITMIME", "-m", "-n"):
        assert re.search(r"warning: .*" + re.escape(opt) + r"\b.*ignored", err), (opt, err)
    msg = sm.wait_message("alice@example.test", "<opts-1@example.test>")
    assert header(msg, "From").startswith("CronDaemon <")


def test_usage_errors(sm):
    """Exit codes of sysexits.h: no recipient is a usage error, a bad address a data
    error; nothing is left in maildrop/."""
    before = sm.queue_files("maildrop")
    p = sendmail(sm, input="x\n", check=False)
    assert p.returncode == 64, p
    p = sendmail(sm, "-t", input="Subject: nobody to send to\n\nx\n", check=False)
    assert p.returncode == 64, p
    p = sendmail(sm, "not an address@@", input="x\n", check=False)
    assert p.returncode == 65, p
    assert sm.queue_files("maildrop") == before


def smtp_session(proc):
    """Reads one SMTP reply (all its lines) from the -bs process."""
    lines = []
    while True:
        line = proc.stdout.readline().decode()
        assert line, "sendmail -bs closed the session"
        lines.append(line.rstrip("\r\n"))
        if len(line) < 4 or line[3] != "-":
            return lines


def test_bs_smtp_session(sm):
    """sendmail -bs speaks SMTP on its standard input and output; the message goes in
    through maildrop/ like any other (dot-stuffing undone)."""
    own = f"{sm.user}@{HOST}"
    proc = subprocess.Popen(list(sm.submitter) + ["-C", sm.conf_dir, "-bs"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        def cmd(line, code):
            proc.stdin.write(line.encode() + b"\r\n")
            proc.stdin.flush()
            reply = smtp_session(proc)
            assert reply[-1].startswith(str(code)), (line, reply)
            return reply

        assert smtp_session(proc)[0].startswith("220 mx.example.test ESMTP")
        assert "250-DSN" in cmd("EHLO client", 250)
        cmd(f"MAIL FROM:<{own}>", 250)
        cmd("RCPT TO:<alice@example.test>", 250)
        cmd("RCPT TO:<bad address>", 501)
        cmd("DATA", 354)
        proc.stdin.write(b"Subject: over bs\r\nMessage-ID: <bs-1@example.test>\r\n\r\n"
                         b"..starts with a dot\r\nend\r\n")
        reply = cmd(".", 250)
        assert re.match(r"250 2\.0\.0 Ok: queued as [0-9A-F]{21}$", reply[-1])
        cmd("QUIT", 221)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    msg = sm.wait_message("alice@example.test", "<bs-1@example.test>")
    assert header(msg, "Return-Path") == f"<{own}>"
    assert b"\n.starts with a dot\n" in msg.replace(b"\r\n", b"\n")


def wait_deferred(sm, line):
    """The queue id of a "status=deferred" log line, once the message is in deferred/
    (qmgr logs each recipient before it moves the message there)."""
    qid = re.search(r": ([0-9A-F]{21}): to=", line).group(1)
    wait_for(lambda: os.path.exists(os.path.join(sm.queue_dir(), "deferred", qid)),
             what=f"{qid} in deferred/")
    return qid


def deferred_message(sm, mid):
    """Sends to a remote address (relayhost refuses: deferred); returns its queue id
    once it is in deferred/."""
    mark = sm.log_mark()
    sendmail(sm, "far@remote.test", input=f"Subject: far\nMessage-ID: {mid}\n\nx\n")
    line = sm.wait_log("to=<far@remote.test>", "status=deferred", since=mark, timeout=30)
    return wait_deferred(sm, line)


def test_mailq_and_flush(sm):
    """mailq (sendmail -bp) lists the queue as `postern queue list` does; sendmail -q
    has the deferred mail tried again now (the retry time is minutes away)."""
    qid = deferred_message(sm, "<far-1@example.test>")
    p = sendmail(sm, as_user=False, name="mailq")
    out = p.stdout.decode()
    assert qid in out and "far@remote.test" in out, out
    listed = subprocess.run([POSTERN, "-c", sm.conf_dir, "queue", "list"],
                            capture_output=True, text=True, check=True).stdout
    assert qid in listed
    p2 = sendmail(sm, "-bp", as_user=False)
    assert qid in p2.stdout.decode()

    mark = sm.log_mark()
    sendmail(sm, "-q")
    sm.wait_log(f"{qid}: to=<far@remote.test>", "status=deferred", since=mark, timeout=30)


def test_newaliases(sm):
    """newaliases (sendmail -bi) compiles alias_maps again: an alias added to the text
    file works afterwards."""
    with open(sm.map_path("aliases"), "a") as f:
        f.write("team alice@example.test, bob@example.test\n")
    p = sendmail(sm, as_user=False, name="newaliases")
    assert p.stdout == b"", p.stdout
    # A daemon looks at a cdb file's identity at most once a second (postern-maps(5)):
    # a lookup made earlier in this second may still see the old table.
    built = int(time.time())
    wait_for(lambda: int(time.time()) > built, what="the next second")
    sendmail(sm, f"team@{HOST}", input="Subject: team\nMessage-ID: <alias-1@example.test>\n\nx\n")
    sm.wait_message("alice@example.test", "<alias-1@example.test>")
    sm.wait_message("bob@example.test", "<alias-1@example.test>")


def fake_id():
    t = time.time()
    return "%09X%05X%07X" % (int(t), int((t % 1) * 1e6), 0xABCDE0 + int(t * 1000) % 16)


def test_bad_maildrop_files_go_to_corrupt(sm):
    """Truncated, crafted or misnamed maildrop files, and a temporary file abandoned a
    day ago, go to corrupt/ with a log line; a temporary file being written is left
    alone; the same pickup process goes on taking good mail."""
    pickup = sm.daemon_pids("pickup")
    assert len(pickup) == 1
    me = os.getuid()
    other = me + 1 if me != 0 else 65534
    uid_rec = lambda u: f"U{len(str(u))}:{u}"
    good = f"V1:1\n{uid_rec(me)}\nL1:x\nT2:17\nR18:alice@example.test\nC7:Subject\nE0:\n"
    names = {}
    for text in (good[:-4].encode(),                          # truncated: no end record
                 b"garbage\x00\xff" * 100,                     # not the format at all
                 good.replace(uid_rec(me), uid_rec(other)).encode()):   # not the owner's uid
        names[fake_id()] = text
        time.sleep(0.002)
    names["evil"] = good.encode()                              # not a queue id
    stale, fresh = "t." + fake_id(), "t." + fake_id()          # being written: old, new
    maildrop = os.path.join(sm.queue_dir(), "maildrop")
    mark = sm.log_mark()
    before = set(sm.queue_files("corrupt"))
    for name, text in names.items():
        path = os.path.join(maildrop, name)
        with open(path, "wb") as f:
            f.write(text)
        os.chmod(path, 0o644)
    for name in (stale, fresh):
        with open(os.path.join(maildrop, name), "wb") as f:
            f.write(good[:20].encode())
    day_ago = time.time() - 25 * 3600
    os.utime(os.path.join(maildrop, stale), (day_ago, day_ago))
    # A good message after them: pickup scans on its wake-up.
    sendmail(sm, "alice@example.test",
             input="Subject: after the bad ones\nMessage-ID: <after-bad@example.test>\n\nx\n")
    sm.wait_message("alice@example.test", "<after-bad@example.test>")
    for name in names:
        sm.wait_log("/pickup[", f"maildrop/{name}:", "moved to corrupt/", since=mark)
    sm.wait_log("/pickup[", f"maildrop/{stale}:", "abandoned", "moved to corrupt/", since=mark)
    assert set(os.listdir(maildrop)) == {fresh}
    assert len(set(sm.queue_files("corrupt")) - before) == len(names) + 1
    os.unlink(os.path.join(maildrop, fresh))
    assert sm.daemon_pids("pickup") == pickup
    lines = sm.log_since(mark)
    assert f"uid {other} in the file, but owned by uid {me}" in lines
    assert "not a maildrop file name" in lines


def test_oversized_maildrop_file_goes_to_corrupt(sm):
    """A well-formed maildrop file whose content is one byte over message_size_limit
    (planted by hand: sendmail itself refuses it) goes to corrupt/ whole, with a log
    line; the same pickup process goes on taking good mail."""
    pickup = sm.daemon_pids("pickup")
    assert len(pickup) == 1
    limit = int(sm.run("config", "message_size_limit").stdout.split("=")[1])
    me = os.getuid()
    content = b"Subject: too big\n\n" + b"x" * (limit + 1 - len(b"Subject: too big\n\n"))
    env = f"V1:1\nU{len(str(me))}:{me}\nL1:x\nT2:17\nR18:alice@example.test\n".encode()
    chunks = [content[i:i + 65536] for i in range(0, len(content), 65536)]
    body = b"".join(b"C%d:%s\n" % (len(c), c) for c in chunks)
    name = fake_id()
    maildrop = os.path.join(sm.queue_dir(), "maildrop")
    mark = sm.log_mark()
    before = set(sm.queue_files("corrupt"))
    path = os.path.join(maildrop, name)
    with open(path, "wb") as f:
        f.write(env + body + b"E0:\n")
    size = os.path.getsize(path)
    os.chmod(path, 0o644)
    # A good message after it: pickup scans on its wake-up.
    sendmail(sm, "alice@example.test",
             input="Subject: after the big one\nMessage-ID: <after-big@example.test>\n\nx\n")
    sm.wait_message("alice@example.test", "<after-big@example.test>")
    line = sm.wait_log("/pickup[", f"maildrop/{name}:", f"uid={me}", "message too big",
                       "moved to corrupt/", since=mark)
    moved = re.search(r"moved to corrupt/([0-9A-F]{21})$", line).group(1)
    assert set(sm.queue_files("corrupt")) - before == {moved}
    assert os.path.getsize(os.path.join(sm.queue_dir(), "corrupt", moved)) == size
    assert name not in os.listdir(maildrop)
    assert sm.daemon_pids("pickup") == pickup
    assert not any(b"Subject: too big" in m[:200] for m in sm.messages("alice@example.test"))


def test_mail_sent_while_stopped_goes_at_start():
    """Mail submitted while the system is down waits in maildrop/ and goes when it
    starts; -v says that pickup was not reached and names the file left."""
    inst = start_instance(users=("alice@example.test",), start=False,
                          config={"trusted_users": "root"})
    try:
        inst.submitter, inst.user = _setup_submitter(inst)
        p = sendmail(inst, "-v", "alice@example.test",
                     input="Subject: while down\nMessage-ID: <down-1@example.test>\n\nx\n")
        m = re.fullmatch(r"sendmail: pickup not reached \(.+\): it will find the message "
                         r"on its next scan\nsendmail: message left in maildrop/ as "
                         r"([0-9A-F]{21})\n", p.stderr.decode())
        assert m, p.stderr
        assert inst.queue_files("maildrop") == [m.group(1)]
        inst.start()
        msg = inst.wait_message("alice@example.test", "<down-1@example.test>")
        assert header(msg, "Return-Path") == f"<{inst.user}@{HOST}>"
        wait_for(lambda: not inst.queue_files("maildrop"), what="an empty maildrop/")
    finally:
        inst.cleanup()


def test_silent_clients_do_not_block_wakeups(sm):
    """Clients that connect to public/pickup and say nothing lose their places: a
    sendmail run after them still wakes pickup (its own scan is a minute away)."""
    import socket
    path = os.path.join(sm.queue_dir(), "public", "pickup")
    idle = []
    try:
        for _ in range(40):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            idle.append(s)
        mark = sm.log_mark()
        sendmail(sm, "alice@example.test",
                 input="Subject: after idle\nMessage-ID: <idle-1@example.test>\n\nx\n")
        sm.wait_message("alice@example.test", "<idle-1@example.test>", timeout=15)
        sm.wait_log("/pickup[", "uid=", since=mark)
    finally:
        for s in idle:
            s.close()


def test_dsn_options_reach_the_queue_file(sm):
    """-N, -R and -V are kept in the queue file (postern-queue(5)): NOTIFY with each
    recipient, RET and ENVID as attributes."""
    mark = sm.log_mark()
    sendmail(sm, "-N", "delay,failure", "-R", "hdrs", "-V", "env id+1", "far@remote.test",
             input="Subject: dsn\nMessage-ID: <dsn-1@example.test>\n\nx\n")
    line = sm.wait_log("to=<far@remote.test>", "status=deferred", since=mark, timeout=30)
    qid = wait_deferred(sm, line)
    with open(os.path.join(sm.queue_dir(), "deferred", qid), "rb") as f:
        data = f.read()
    assert b"\nN13:DELAY,FAILURE\nR15:far@remote.test\n" in data, data[:400]
    assert b"\nA8:ret=HDRS\n" in data
    assert b"\nA18:envid=env+20id+2B1\n" in data
    p = sendmail(sm, "-N", "sometimes", "alice@example.test", input="x\n", check=False)
    assert p.returncode == 64


def test_message_size_limit(sm):
    """A message over message_size_limit is refused (exit 65; 552 over -bs) and leaves
    nothing in maildrop/.  (sendmail reads the limit at each run; pickup, which checks
    it again, keeps its larger one here.)"""
    sm.config(message_size_limit="20000")
    try:
        big = "Subject: big\n\n" + ("x" * 99 + "\n") * 300
        p = sendmail(sm, "alice@example.test", input=big, check=False)
        assert p.returncode == 65, p
        assert b"message_size_limit" in p.stderr
        p = subprocess.run(list(sm.submitter) + ["-C", sm.conf_dir, "-bs"], timeout=30,
                           input=("EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\n"
                                  "DATA\r\n" + big.replace("\n", "\r\n") + ".\r\nQUIT\r\n")
                           .encode(), capture_output=True)
        replies = p.stdout.decode().splitlines()
        assert "250-SIZE 20000" in replies
        assert replies[-2].startswith("552 5.3.4"), replies
        assert replies[-1].startswith("221"), replies
        assert sm.queue_files("maildrop") == []
    finally:
        sm.config(message_size_limit="10240000")


def mailq_entry(out, qid):
    """The lines of qid's entry in mailq's output: its id line to the blank line."""
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(qid))
    end = lines.index("", start)
    return lines[start:end]


def test_mailq_shows_why_deferred_and_held(sm):
    """mailq in Postfix's layout: a deferred message's reason (its DSN status, then what
    the log says) in parentheses on its own line above the recipients it applies to; a
    held message marked with '!' after its id, its reason kept (postern(8), The
    queue)."""
    mark = sm.log_mark()
    qid = deferred_message(sm, "<far-why@example.test>")
    line = sm.log_lines(f"{qid}: to=<far@remote.test>", "status=deferred", since=mark)[0]
    reason = re.search(r"status=deferred \((.*)\)$", line).group(1)
    own = re.escape(f"{sm.user}@{HOST}")
    when = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d"
    why = r"\(4\.\d\.\d " + re.escape(reason) + r"\)"
    try:
        for args, name, mark_char in (((), "mailq", " "), (("-bp",), None, " "),
                                      (("-bp",), None, "!")):
            if mark_char == "!":
                subprocess.run([POSTERN, "-c", sm.conf_dir, "queue", "hold", qid],
                               check=True, capture_output=True)
            out = sendmail(sm, *args, as_user=False, name=name).stdout.decode()
            entry = mailq_entry(out, qid)
            assert re.fullmatch(re.escape(qid + mark_char) + r" +\d+ " + when + " +" + own,
                                entry[0]), (mark_char, entry)
            assert re.fullmatch(why, entry[1]), (mark_char, entry)
            assert re.fullmatch(r" {40,}far@remote\.test", entry[2]), (mark_char, entry)
            assert len(entry) == 3, (mark_char, entry)
        assert os.path.exists(os.path.join(sm.queue_dir(), "hold", qid))
    finally:
        subprocess.run([POSTERN, "-c", sm.conf_dir, "queue", "delete", qid],
                       capture_output=True)


def alias_query(sm, key):
    p = sm.run("map", "query", "alias_maps", key, check=False)
    return p.stdout.split("\t")[0].strip() if p.returncode == 0 else None


def test_bi_rebuilds_aliases_and_v_says_so(sm):
    """sendmail -bi compiles alias_maps again, as newaliases does, silently; with -v it
    names each table built and its number of entries on standard error."""
    path = sm.map_path("aliases")
    with open(path, "a") as f:
        f.write("bi-list alice@example.test\n")
    assert alias_query(sm, "bi-list") is None
    p = sendmail(sm, "-bi", as_user=False)
    assert (p.stdout, p.stderr) == (b"", b"")
    assert alias_query(sm, "bi-list") == "alice@example.test"

    with open(path, "a") as f:
        f.write("bi-verbose bob@example.test\n")
    p = sendmail(sm, "-bi", "-v", as_user=False)
    assert p.stdout == b""
    m = re.fullmatch(r"sendmail: (.*)\.cdb: (\d+) entries\n", p.stderr.decode())
    assert m, p.stderr
    assert os.path.realpath(m.group(1)) == os.path.realpath(path)
    with open(path) as f:
        keys = [ln for ln in f if ln.strip() and not ln.startswith(("#", " ", "\t"))]
    assert int(m.group(2)) == len(keys)
    assert alias_query(sm, "bi-verbose") == "bob@example.test"


def test_v_names_the_maildrop_file_and_the_flush(sm):
    """-v says on standard error which maildrop file the message was left in (pickup
    logs the same name) and, with -q, that the flush was requested; without -v both
    are silent."""
    mark = sm.log_mark()
    p = sendmail(sm, "-v", "alice@example.test",
                 input="Subject: verbose\nMessage-ID: <verbose-1@example.test>\n\nx\n")
    assert p.stdout == b""
    m = re.fullmatch(r"sendmail: message left in maildrop/ as ([0-9A-F]{21})\n",
                     p.stderr.decode())
    assert m, p.stderr
    sm.wait_message("alice@example.test", "<verbose-1@example.test>")
    sm.wait_log("/pickup[", f"maildrop={m.group(1)}", since=mark)
    p = sendmail(sm, "alice@example.test",
                 input="Subject: quiet\nMessage-ID: <quiet-1@example.test>\n\nx\n")
    assert (p.stdout, p.stderr) == (b"", b"")

    p = sendmail(sm, "-q", "-v")
    assert p.stderr == b"sendmail: queue flush requested\n"
    p = sendmail(sm, "-q")
    assert (p.stdout, p.stderr) == (b"", b"")

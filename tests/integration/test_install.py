"""make install (tools/install.sh): an FHS tree under DESTDIR and nothing outside it;
man pages that do not collide with Postfix's; a systemd unit that systemd-analyze
accepts; an instance made with --queue-directory and --mail-directory in their FHS
places runs and delivers with the installed programs alone; make uninstall removes
what install put there and keeps configuration and mail."""

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

import pytest

from instance import BUILD, PORT_OFFSETS, REPO, PortBlock, maildir_find, wait_for

POSTFIX_PAGES = {"master.8", "qmgr.8", "smtpd.8", "smtp.8", "local.8", "sendmail.1",
                 "postconf.5", "master.5", "pickup.8", "postqueue.1"}


def install(dest, prefix="/usr", uninstall=False, unitdir=None):
    # What `make install DESTDIR=... PREFIX=...` runs after building (calling make here
    # could rebuild the tree under test with other flags).
    args = ["sh", "tools/install.sh"] + (["-u"] if uninstall else []) + \
        [str(dest), prefix, BUILD, "/etc/postern", "/var/spool/postern"]
    if unitdir:
        args.append(unitdir)
    p = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def files_under(top):
    out = set()
    for d, dirs, files in os.walk(top):
        for f in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            out.add(os.path.relpath(os.path.join(d, f), top))
    return out


def test_install_layout_and_uninstall(tmp_path):
    dest = tmp_path / "stage"
    install(dest)
    usr = dest / "usr"
    for prog in os.listdir(os.path.join(BUILD, "libexec", "postern")):
        assert os.access(usr / "lib/postern" / prog, os.X_OK), prog
    assert os.access(usr / "sbin/postern", os.X_OK)
    if os.access(os.path.join(BUILD, "bin", "sendmail"), os.X_OK):
        assert os.access(usr / "sbin/sendmail", os.X_OK)
        for link in ("mailq", "newaliases"):
            assert os.readlink(usr / "bin" / link) == "../sbin/sendmail"
    # man pages: ours under their names, those Postfix also has as postern-NAME
    man = usr / "share/man"
    assert (man / "man8/postern.8").is_file()
    assert (man / "man5/postern.conf.5").is_file()
    assert (man / "man8/postern-master.8").is_file()
    assert (man / "man8/postern-smtpd.8").is_file()
    installed = {f for d in man.iterdir() for f in os.listdir(d)}
    assert not installed & POSTFIX_PAGES, installed & POSTFIX_PAGES
    assert all(f.startswith("postern") for f in installed), installed
    assert (usr / "lib/systemd/system/postern.service").is_file()
    assert (dest / "etc/postern").is_dir() and (dest / "var/spool/postern").is_dir()
    assert {e.name for e in dest.iterdir()} <= {"usr", "etc", "var"}
    unit = (usr / "lib/systemd/system/postern.service").read_text()
    assert "ExecStart=/usr/sbin/postern -c /etc/postern start" in unit
    assert "ExecReload=/usr/sbin/postern -c /etc/postern reload" in unit
    assert "PIDFile=/var/spool/postern/pid/master.pid" in unit

    # an instance's files in etc/ survive uninstall; everything installed goes
    (dest / "etc/postern/postern.conf").write_text("# kept\n")
    install(dest, uninstall=True)
    left = files_under(dest)
    assert left == {"etc/postern/postern.conf"}, left


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package systemd)")
def test_systemd_unit_verifies(tmp_path):
    # installed with paths that exist here (no DESTDIR), so that verify can check the
    # programs the unit runs
    prefix = tmp_path / "usr"
    unitdir = str(tmp_path / "units")
    install("", prefix=str(prefix), unitdir=unitdir)
    unit = os.path.join(unitdir, "postern.service")
    p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, MANPATH=str(prefix / "share/man"),
                                             SYSTEMD_LOG_LEVEL="notice"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "postern.service" not in p.stderr, p.stderr
    text = open(unit).read()
    assert "Type=forking" in text and f"ExecStart={prefix}/sbin/postern" in text


def install_recipe():
    """The FHS recipe of INSTALL ("After make install"), its continued lines joined."""
    text = open(os.path.join(REPO, "INSTALL")).read()
    part = text.split("After make install\n", 1)[1].split("\nRunning on port 25", 1)[0]
    lines = []
    for raw in part.splitlines():
        line = raw.strip()
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + line
        elif raw.startswith("    postern "):
            lines.append(line)
    return [l.split("#")[0].split() for l in lines]


def test_install_recipe_is_what_this_test_runs():
    # the steps test_installed_tree_inits_starts_and_delivers runs are INSTALL's
    steps = install_recipe()
    init = next(s for s in steps if s[1] == "init")
    assert init[2] == "/etc/postern"
    opts = dict(zip(init[3::2], init[4::2]))
    assert opts["--queue-directory"] == "/var/spool/postern"
    assert opts["--mail-directory"] == "/var/mail/postern"
    assert ["postern", "-c", "/etc/postern", "user", "add"] == \
        next(s for s in steps if "user" in s)[:5]
    assert ["postern", "-c", "/etc/postern", "check"] in steps


def test_installed_tree_inits_starts_and_delivers():
    # every directory above the instance must be reachable by the postern and vmail
    # users the daemons run as (pytest's own temporary directories are not)
    top = tempfile.mkdtemp(prefix="postern-install-", dir="/tmp")
    os.chmod(top, 0o755)
    tmp_path = pathlib.Path(top)
    dest = tmp_path / "stage"
    install(dest)
    usr = dest / "usr"
    postern = str(usr / "sbin/postern")
    conf = dest / "etc/postern"
    queue = dest / "var/spool/postern"
    mail = dest / "var/mail/postern"
    ports = PortBlock(check=PORT_OFFSETS.values())
    base = ports.base
    try:
        p = subprocess.run([postern, "init", str(conf), "--port-base", str(base),
                            "--domain", "example.test", "--queue-directory", str(queue),
                            "--mail-directory", str(mail)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert not (conf / "queue").exists() and not (conf / "mail").exists()
        text = (conf / "postern.conf").read_text()
        assert f"queue_directory = {queue}\n" in text
        assert f"virtual_mailbox_base = {mail}\n" in text
        subprocess.run([postern, "-c", str(conf), "config", f"maillog_file={tmp_path}/log"],
                       check=True, capture_output=True, timeout=60)
        subprocess.run([postern, "-c", str(conf), "user", "add", "alice@example.test"],
                       input="pw\n", check=True, capture_output=True, text=True, timeout=60)
        p = subprocess.run([postern, "-c", str(conf), "check"], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        p = subprocess.run([postern, "-c", str(conf), "start"], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr

        def greets():
            try:
                with socket.create_connection(("127.0.0.1", base + 25), timeout=2) as s:
                    s.settimeout(5)
                    return s.recv(100).startswith(b"220")
            except OSError:
                return False
        wait_for(greets, what="the installed instance to answer")
        master = os.path.realpath(usr / "lib/postern/master")
        exes = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                exes.append(os.readlink(f"/proc/{pid}/exe"))
            except OSError:
                pass
        assert master in exes
        assert (queue / "pid/master.pid").is_file()

        import smtplib
        with smtplib.SMTP("127.0.0.1", base + 25, timeout=30) as s:
            s.sendmail("bob@remote.test", ["alice@example.test"],
                       b"Message-ID: <installed@test>\r\nSubject: hi\r\n\r\nhello\r\n")
        box = str(mail / "example.test" / "alice")
        wait_for(lambda: maildir_find(box, "<installed@test>"), timeout=30,
                 what="the message in the FHS mail store")
        # postmaster reaches the first user through the aliases init wrote
        with smtplib.SMTP("127.0.0.1", base + 25, timeout=30) as s:
            s.sendmail("bob@remote.test", ["postmaster@example.test"],
                       b"Message-ID: <pm-installed@test>\r\n\r\nhello\r\n")
        wait_for(lambda: maildir_find(box, "<pm-installed@test>"), timeout=30,
                 what="the postmaster's message")
        st = subprocess.run([postern, "-c", str(conf), "status"], capture_output=True,
                            text=True, timeout=60)
        assert st.returncode == 0 and "qmgr" in st.stdout
    finally:
        subprocess.run([postern, "-c", str(conf), "stop"], capture_output=True, timeout=60)
        ports.release()
        shutil.rmtree(top, ignore_errors=True)

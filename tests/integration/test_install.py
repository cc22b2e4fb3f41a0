"""make install (tools/install.sh): an FHS tree under DESTDIR and nothing outside it; the installed
command finds its daemons and runs an instance."""

import os
import socket
import subprocess

from instance import BUILD, PORT_OFFSETS, REPO, PortBlock, wait_for


def test_install_into_destdir_and_run(tmp_path):
    dest = tmp_path / "stage"
    # What `make install DESTDIR=... PREFIX=/usr` runs after building (calling make here
    # could rebuild the tree under test with other flags).
    p = subprocess.run(["sh", "tools/install.sh", str(dest), "/usr", BUILD, "/etc/postern",
                        "/var/spool/postern"], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    usr = dest / "usr"
    for prog in ("master", "smtpd", "qmgr", "resolve", "local", "smtp", "auth", "pop3d"):
        assert os.access(usr / "libexec/postern" / prog, os.X_OK), prog
    assert os.access(usr / "sbin/postern", os.X_OK)
    assert (usr / "share/man/man8/postern.8").is_file()
    assert (usr / "share/man/man5/postern.conf.5").is_file()
    assert (dest / "etc/postern").is_dir() and (dest / "var/spool/postern").is_dir()
    # Everything installed lies under DESTDIR.
    top = {e.name for e in dest.iterdir()}
    assert top <= {"usr", "etc", "var"}, top

    postern = str(usr / "sbin/postern")
    inst = tmp_path / "inst"
    os.chmod(tmp_path, 0o755)
    ports = PortBlock(check=PORT_OFFSETS.values())
    base = ports.base
    try:
        subprocess.run([postern, "init", str(inst), "--port-base", str(base),
                        "--domain", "example.test"], check=True, capture_output=True, timeout=60)
        subprocess.run([postern, "-c", str(inst), "start"], check=True, capture_output=True,
                       timeout=60)

        def greets():
            try:
                with socket.create_connection(("127.0.0.1", base + 25), timeout=2) as s:
                    s.settimeout(5)
                    return s.recv(100).startswith(b"220")
            except OSError:
                return False
        wait_for(greets, what="the installed instance to answer")
        master = os.path.realpath(usr / "libexec/postern/master")
        exes = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                exes.append(os.readlink(f"/proc/{pid}/exe"))
            except OSError:
                pass
        assert master in exes
    finally:
        subprocess.run([postern, "-c", str(inst), "stop"], capture_output=True, timeout=60)
        ports.release()

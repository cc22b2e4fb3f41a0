"""The cost of content filtering in the end-to-end SMTP bench: the same load as
bench.py's plain run, once with header_checks holding 100 pcre patterns that never
match (every header field is looked up in all of them, the worst case of a table
that lets mail through), once with one milter in the path (rspamd's proxy worker
scanning every message itself, when the rspamd package is installed).  Each is
reported as a rate and as ratios to the plain run and to Postfix, measured in the
same run of make bench."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from instance import reserve_port, wait_for  # noqa: E402

PATTERNS = 100

# rspamd's proxy worker scanning itself with its core (GTUBE and the message's
# parse) but none of the rule modules of common.conf: those ask DNS blocklists and
# Redis, which a bench machine without a network cannot reach, and would measure
# their timeouts.  The figure is the milter round trips plus rspamd's own scan.
RSPAMD_CONF = """options { pidfile = "$RUNDIR/rspamd.pid"; }
logging { type = "file"; filename = "$LOGDIR/rspamd.log"; level = "error"; }
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:%d";
  milter = yes;
  timeout = 120s;
  upstream "local" { default = yes; self_scan = yes; }
  count = 1;
}
"""


def header_checks(inst):
    """100 patterns of the kind admins write (subjects, senders, mailers), none of
    which the bench's messages match."""
    path = inst.map_path("bench_header_checks.pcre")
    with open(path, "w") as f:
        for i in range(PATTERNS):
            kind = ("Subject: .*(offer|winner|prize)%d" % i,
                    "From: .*@spam%d\\.example" % i,
                    "X-Mailer: (bulk|mass)mailer v%d" % i,
                    "Received: from [^ ]*\\.dyn%d\\.example" % i)[i % 4]
            f.write(f"/^{kind}/ REJECT pattern {i}\n")
    return {"header_checks": f"pcre:{path}"}


def start_rspamd():
    """(process, port, tmp) of an rspamd proxy worker in milter mode, or None."""
    if shutil.which("rspamd") is None:
        return None
    tmp = tempfile.mkdtemp(prefix="postern-bench-rspamd-")
    os.mkdir(os.path.join(tmp, "db"))
    port = reserve_port()
    conf = os.path.join(tmp, "rspamd.conf")
    with open(conf, "w") as f:
        f.write(RSPAMD_CONF % port)
    log = open(os.path.join(tmp, "out"), "ab")
    user = ["-u", "root", "-g", "root"] if os.geteuid() == 0 else []
    p = subprocess.Popen(["rspamd", "-f", "-i", *user, "-c", conf,
                          "--var", f"LOCAL_CONFDIR={tmp}", "--var", f"DBDIR={tmp}/db",
                          "--var", f"RUNDIR={tmp}", "--var", f"LOGDIR={tmp}"],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()

    def listening():
        import socket
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return p.poll() is not None
    wait_for(listening, timeout=240, what="rspamd to listen")
    if p.poll() is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    return p, port, tmp


def stop_rspamd(r):
    p, _, tmp = r
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
    shutil.rmtree(tmp, ignore_errors=True)


def report(name, r, plain, pf):
    line = (f"{name:<22} accepted {r['accepted']:8.0f} msg/s   delivered end-to-end "
            f"{r['delivered']:8.0f} msg/s   CPU {r['cpu_ms']:.2f} ms/msg   "
            f"vs plain: delivered {r['delivered'] / plain['delivered']:.2f}x, "
            f"CPU {r['cpu_ms'] / plain['cpu_ms']:.2f}x")
    if pf is not None:
        line += (f"   vs postfix: delivered {r['delivered'] / pf['delivered']:.2f}x, "
                 f"CPU {r['cpu_ms'] / pf['cpu_ms']:.2f}x")
    print(line)


def main(run_postern, plain, pf):
    """run_postern(config, setup) -> (result, fsync floor); plain and pf: the plain
    Postern run and the Postfix run (or None) of the same bench."""
    r, _ = run_postern(setup=header_checks)
    report(f"+ header_checks ({PATTERNS})", r, plain, pf)
    rs = start_rspamd()
    if rs is None:
        print("+ milter (rspamd): not measured (needs Debian's rspamd package)")
        return
    try:
        # the milter's CPU is its own process's, not in the ms/msg above
        r, _ = run_postern(config={"smtpd_milters": f"inet:127.0.0.1:{rs[1]}",
                                   "milter_content_timeout": "120s"})
        report("+ milter (rspamd)", r, plain, pf)
    finally:
        stop_rspamd(rs)

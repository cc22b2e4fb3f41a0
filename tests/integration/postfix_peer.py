"""A private Postfix instance for interoperability tests: Debian's postfix package run on a
free loopback port from a fresh directory under /tmp, with master as our child, and
stopped again (every process of it) by stop().  It never touches the system's Postfix
configuration or queue.  Needs root; installs nothing.

The instance delivers its virtual mailbox domains into Maildirs under DIR/mail (as the user
nobody), relays the domains given in `relay` to fixed next hops (transport_maps), offers
STARTTLS with a self-signed certificate, and logs to DIR/maillog.  Every wait is bounded.

The service table and process helpers come from tests/bench/bench_postfix.py."""

import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))
from bench_postfix import (MASTER, POSTFIX, answers, available,  # noqa: E402
                           master_cf, session_members)

from instance import (maildir_find, maildir_messages, reserve_port, wait_for,  # noqa: E402
                      wait_maildir_message)


def skip_reason():
    """Why a Postfix peer cannot run here, or None."""
    if os.geteuid() != 0:
        return "a private Postfix needs root"
    if not available():
        return f"Postfix is not installed ({POSTFIX}, {MASTER})"
    try:
        pwd.getpwnam("postfix")
        pwd.getpwnam("nobody")
        grp.getgrnam("postdrop")
    except KeyError as e:
        return f"Postfix's users or groups are missing: {e}"
    return None


class PostfixPeer:
    """virtual: {domain: [local parts]} delivered here; relay: {domain: "smtp:[host]:port"}."""

    def __init__(self, virtual=None, relay=None, hostname="postfix.pf.test", port=None,
                 config=None):
        self.dir = tempfile.mkdtemp(prefix="postfix-peer-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.port = port or reserve_port()
        self.hostname = hostname
        self.logfile = os.path.join(self.dir, "maillog")
        self.master = None
        self.env = dict(os.environ, MAIL_CONFIG=self.etc)
        owner = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        for d in ("etc", "queue", "data", "mail"):
            os.mkdir(os.path.join(self.dir, d), 0o755)
        os.chown(os.path.join(self.dir, "data"), owner.pw_uid, owner.pw_gid)
        os.chown(os.path.join(self.dir, "mail"), nobody.pw_uid, nobody.pw_gid)
        self._make_cert()
        virtual = virtual or {}
        relay = relay or {}
        mailboxes = ", ".join(f"{lp}@{d}={d}/{lp}/" for d, lps in virtual.items() for lp in lps)
        routes = ", ".join(f"{d}={nexthop}" for d, nexthop in relay.items())
        conf = {
            "compatibility_level": "3.6",
            "queue_directory": f"{self.dir}/queue",
            "data_directory": f"{self.dir}/data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": hostname,
            "mydomain": hostname.partition(".")[2] or hostname,
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": ", ".join(relay) if relay else "",
            "relayhost": "",
            "transport_maps": f"inline:{{ {routes} }}" if routes else "",
            "virtual_mailbox_domains": ", ".join(virtual),
            "virtual_mailbox_base": f"{self.dir}/mail",
            "virtual_mailbox_maps": f"inline:{{ {mailboxes} }}" if mailboxes else "",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            "virtual_minimum_uid": "1",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": f"{self.etc}/cert.pem",
            "smtpd_tls_key_file": f"{self.etc}/key.pem",
            "smtpd_tls_received_header": "yes",
            "smtp_tls_security_level": "may",
            "smtp_tls_loglevel": "1",
            "smtp_dns_support_level": "disabled",
            "biff": "no",
            "append_dot_mydomain": "no",
            "readme_directory": "no",
            "message_size_limit": "20000000",
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
            "queue_run_delay": "5s",
            "minimal_backoff_time": "5s",
            "maximal_backoff_time": "10s",
            "syslog_name": "postfix-peer",
            "maillog_file": self.logfile,
            "maillog_file_prefixes": self.dir,
        }
        conf.update(config or {})
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(master_cf(self.port))

    def _make_cert(self):
        key, cert = os.path.join(self.etc, "key.pem"), os.path.join(self.etc, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", f"/CN={self.hostname}"],
                       check=True, capture_output=True, timeout=60)
        os.chmod(key, 0o600)

    # ---- life ----
    def start(self):
        # Creates the queue's subdirectories with Postfix's owners and modes.
        chk = subprocess.run([POSTFIX, "-c", self.etc, "check"], env=self.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60)
        if chk.returncode != 0:
            raise RuntimeError("postfix check failed: " + chk.stdout.decode(errors="replace"))
        # Without -w master stays in the foreground; it makes itself a session leader.
        with open(os.path.join(self.dir, "master.stderr"), "w") as errlog:
            self.master = subprocess.Popen([MASTER, "-c", self.etc], env=self.env,
                                           stdin=subprocess.DEVNULL, stdout=errlog,
                                           stderr=errlog)
        deadline = time.monotonic() + 30
        while not answers(self.port):
            if self.master.poll() is not None:
                raise RuntimeError(f"postfix master exited ({self.master.returncode}): "
                                   + self.log())
            if time.monotonic() > deadline:
                raise TimeoutError("postfix smtpd did not answer within 30s")
            time.sleep(0.05)

    def stop(self):
        """SIGTERM to master (it passes it on to its process group), SIGKILL after a grace
        period, then the same for any process of its session still running (orphans are
        reaped by init).  Bounded: about 20 seconds at most."""
        if self.master is None:
            return
        sid = self.master.pid
        if self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            try:
                self.master.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.master.kill()
                self.master.wait(timeout=10)
        self.master = None
        deadline = time.monotonic() + 10
        while True:
            live = [pid for pid, state in session_members(sid).items() if state != "Z"]
            if not live:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix processes would not stop: {live}")
            sig = signal.SIGKILL if time.monotonic() > deadline - 8 else signal.SIGTERM
            for pid in live:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- mail and log ----
    def maildir(self, address):
        local, domain = address.rsplit("@", 1)
        return os.path.join(self.dir, "mail", domain, local)

    def messages(self, address):
        """Every message in address's Maildir (new/ and cur/), as bytes."""
        return maildir_messages(self.maildir(address))

    def find_messages(self, address, message_id=None, about=None):
        return maildir_find(self.maildir(address), message_id, about)

    def wait_message(self, address, message_id, timeout=30):
        return wait_maildir_message(self.maildir(address), message_id, timeout=timeout,
                                    what=f"message {message_id} for {address} at Postfix")

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_mark(self):
        try:
            return os.path.getsize(self.logfile)
        except OSError:
            return 0

    def log_lines(self, *needles, since):
        """Lines written to the log since the mark that contain every needle."""
        try:
            with open(self.logfile, "rb") as f:
                f.seek(since)
                data = f.read()
        except OSError:
            return []
        text = data[:data.rfind(b"\n") + 1].decode(errors="replace")
        return [ln for ln in text.splitlines() if all(n in ln for n in needles)]

    def wait_log(self, *needles, since, timeout=30):
        return wait_for(lambda: (self.log_lines(*needles, since=since) or [None])[0],
                        timeout=timeout, what=f"Postfix log line with {needles!r}")

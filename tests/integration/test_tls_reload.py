"""A new certificate takes effect on `postern reload`, for SMTP and POP3, without a
restart; connections made before the reload keep working."""

import hashlib
import os
import socket
import ssl
import subprocess

import pytest

from conftest import start_instance
from instance import wait_for


@pytest.fixture(scope="module")
def tlsmta():
    inst = start_instance(users=("alice@example.test",), domains=("example.test",))
    yield inst
    inst.cleanup()


def served_cert(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def file_cert(path):
    der = ssl.PEM_cert_to_DER_cert(open(path).read())
    return hashlib.sha256(der).hexdigest()


def test_reload_serves_new_certificate(tlsmta):
    tls_dir = os.path.join(tlsmta.conf_dir, "tls")
    first = served_cert(tlsmta.port("smtps"))
    assert first == file_cert(os.path.join(tls_dir, "cert.pem"))
    assert served_cert(tlsmta.port("pop3s")) == first

    # An idle session opened before the reload.
    before = tlsmta.smtp()
    before.ehlo()

    cert, key = os.path.join(tls_dir, "new-cert.pem"), os.path.join(tls_dir, "new-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=mx.example.test", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    tlsmta.config(smtpd_tls_cert_file=cert, smtpd_tls_key_file=key)
    tlsmta.run("reload")
    new = file_cert(cert)
    assert new != first
    wait_for(lambda: served_cert(tlsmta.port("smtps")) == new, timeout=20,
             what="smtpd to serve the new certificate")
    wait_for(lambda: served_cert(tlsmta.port("pop3s")) == new, timeout=20,
             what="pop3d to serve the new certificate")
    # The session from before the reload still finishes its work.
    assert before.noop()[0] == 250
    before.quit()

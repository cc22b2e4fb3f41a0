"""Every program has its man page, every config key is documented, and the pages render
without warnings."""

import os
import re
import shutil
import subprocess

import pytest

from instance import BUILD, LIBEXEC, REPO

MAN = os.path.join(REPO, "man")


def programs():
    return sorted(os.listdir(LIBEXEC)) + ["postern"]


@pytest.mark.parametrize("prog", programs())
def test_program_has_man_page(prog):
    assert os.path.isfile(os.path.join(MAN, prog + ".8")), f"man/{prog}.8 missing"


def test_every_config_key_is_documented():
    page = open(os.path.join(MAN, "postern.conf.5")).read()
    out = subprocess.run([os.path.join(BUILD, "sbin", "postern"), "-c", "/nonexistent-dir",
                          "config", "-d"], capture_output=True, text=True, check=True).stdout
    keys = [line.split(" = ")[0] for line in out.splitlines() if " = " in line]
    assert len(keys) > 30
    missing = [k for k in keys if not re.search(r"\b" + re.escape(k) + r"\b", page)]
    assert not missing, missing


@pytest.mark.skipif(shutil.which("man") is None, reason="man(1) not installed")
@pytest.mark.parametrize("page", sorted(p for p in os.listdir(MAN) if re.search(r"\.[1-8]$", p)))
def test_man_page_renders_cleanly(page):
    p = subprocess.run(["man", "--warnings", "-l", os.path.join(MAN, page)],
                       capture_output=True, text=True, env=dict(os.environ, MANWIDTH="80"))
    assert p.returncode == 0
    assert p.stderr.strip() == "", p.stderr
    assert len(p.stdout) > 500

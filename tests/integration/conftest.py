"""pytest fixtures: a started instance per test module, torn down afterwards; the
instance's log is printed when a test fails."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from instance import Instance  # noqa: E402


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def start_instance(users=(), start=True, **kw):
    """Makes an instance, adds users (before start, so no map reload is awaited), starts."""
    inst = Instance(**kw)
    try:
        for a in users:
            inst.add_user(a)
        if start:
            inst.start()
    except Exception:
        print(inst.log())
        inst.cleanup()
        raise
    return inst


@pytest.fixture(scope="module")
def mta(request):
    """A running instance: domains example.test (virtual) and virtual.test, users
    alice, bob @example.test and carol@virtual.test; loopback is NOT in mynetworks, so
    the test client is an untrusted stranger."""
    inst = start_instance(users=("alice@example.test", "bob@example.test", "carol@virtual.test"),
                          domains=("example.test", "virtual.test"),
                          config={"mynetworks": "192.0.2.0/24", "message_size_limit": "30000000"})
    yield inst
    inst.cleanup()


@pytest.fixture(autouse=True)
def _dump_log_on_failure(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for name in ("mta", "trusted_mta", "crash_mta"):
            if name in request.fixturenames:
                inst = request.getfixturevalue(name)
                print(f"---- maillog of {name} (last 60 lines) ----")
                print("\n".join(inst.log().splitlines()[-60:]))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """The number of skipped tests, said even when it is 0, after the reasons (-rs)."""
    yield
    skipped = len(terminalreporter.stats.get("skipped", []))
    who = "as root" if os.geteuid() == 0 else "not as root: tests that need root skip"
    terminalreporter.write_line(f"skipped: {skipped} (run {who})")

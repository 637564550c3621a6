import inspect
import multiprocessing
import os
import pty
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path

import dovecot
import pytest
import relay_support
import smtp_support

_DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


@pytest.fixture(autouse=True)
def spamd_not_known_down() -> None:
    """Each test starts without a spamd outage remembered by an earlier one in this process
    (``spam.scan`` remembers one for a minute, per address)."""
    from mailthreads import spam

    spam.forget_outages()


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The shared reference corpora (../shared/corpora, or $MAILTHREADS_CORPORA)."""
    path = Path(os.environ.get("MAILTHREADS_CORPORA") or _DEFAULT_CORPORA)
    if not path.is_dir():
        pytest.fail(f"corpora not found at {path}; set MAILTHREADS_CORPORA")
    return path


@pytest.fixture
def serve(tmp_path):
    """``serve(listener=..., limits=..., secret=...)`` starts a real ``mailthreads serve`` with
    those settings (tests/smtp_support.py), ended with the test."""
    from smtp_support import Serve, write_config

    started: list[Serve] = []

    def start(**settings) -> Serve:
        server = Serve(tmp_path / "mail.db", write_config(tmp_path, **settings))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.close()


# Programs the real-server tests run, and the Debian packages that provide them.
DEBIAN_PACKAGES = {"dovecot": "dovecot-imapd", "postfix": "postfix", "swaks": "swaks",
                   "openssl": "openssl", "spamd": "spamd", "spamassassin": "spamassassin"}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Install missing server packages from Debian when running as root (as CI does), so that
    the real-server tests run rather than fail for want of a program."""
    missing = sorted({package for program, package in DEBIAN_PACKAGES.items()
                      if not shutil.which(program) and not Path(f"/usr/sbin/{program}").exists()})
    if not missing or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["debconf-set-selections"], input=b"postfix postfix/main_mailer_type select "
                   b"No configuration\n", check=False)
    subprocess.run(["apt-get", "update"], check=True, env=environment)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                   check=True, env=environment)


# The fast loop: `pytest -m "not servers and not slow"`. Nobody marks a test `servers` or `slow`
# by hand for what it starts: a test is marked by the helpers that it, its fixtures, or the
# test-side functions and classes they use (followed through tests/) refer to.
# `servers`: a real Dovecot, Postfix, `mailthreads serve` or SMTP relay on a loopback port.
SERVER_HELPERS: frozenset[object] = frozenset({
    dovecot.start_dovecot, dovecot.DovecotServer,
    smtp_support.Serve, smtp_support.postfix, smtp_support.PostfixInstance,
    relay_support.Relay, relay_support.running_relay,
})
# `slow`: programs that run beside the test (a process it interrupts, kills or races, or one
# behind a pseudo-terminal) rather than one command run to its end.
PROCESS_HELPERS: frozenset[object] = frozenset({
    subprocess.Popen, os.fork, os.forkpty, pty.fork, pty.openpty, pty.spawn,
    multiprocessing.Process,
})
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cache: dict[object, frozenset[object]] = {}
    for item in items:
        for name in automatic_markers(_test_functions(item), cache):
            item.add_marker(name)


def automatic_markers(functions: Iterable[Callable],
                      cache: dict[object, frozenset[object]] | None = None) -> set[str]:
    """The markers earned by a test made of ``functions`` (its own and its fixtures')."""
    cache = {} if cache is None else cache
    used = set().union(*(_uses(function, cache) for function in functions))
    return ({"servers"} if used & SERVER_HELPERS else set()) | (
        {"slow"} if used & PROCESS_HELPERS else set())


def _test_functions(item: pytest.Item) -> Iterable[Callable]:
    """The test function and the functions of every fixture it requests."""
    if function := getattr(item, "function", None):
        yield function
    info = getattr(item, "_fixtureinfo", None)
    for definitions in (info.name2fixturedefs.values() if info else ()):
        for definition in definitions:
            yield definition.func


def _uses(thing: object, cache: dict[object, frozenset[object]]) -> frozenset[object]:
    """Everything ``thing`` refers to by name, following functions and classes of tests/."""
    thing = inspect.unwrap(thing) if callable(thing) else thing
    if thing in cache:
        return cache[thing]
    cache[thing] = frozenset()  # recursion guard
    found: set[object] = set()
    for code, namespace in _code_of(thing):
        for value in _names(code, namespace):
            found.add(value)
            if value not in SERVER_HELPERS and _in_tests(value):
                found |= _uses(value, cache)
    cache[thing] = frozenset(found)
    return cache[thing]


def _code_of(thing: object) -> Iterable[tuple[types.CodeType, dict]]:
    """The code objects of a function (or of a class's methods and properties), each with the
    namespace its global names are read from."""
    if isinstance(thing, types.FunctionType):
        yield thing.__code__, thing.__globals__
    elif isinstance(thing, type):
        for member in vars(thing).values():
            for function in (member, getattr(member, "__func__", None),
                             getattr(member, "fget", None)):
                if isinstance(function, types.FunctionType):
                    yield function.__code__, function.__globals__


def _names(code: types.CodeType, namespace: dict) -> Iterable[object]:
    """The callables the names in ``code`` (and in its nested functions) may stand for: globals,
    modules imported inside it, and the attributes of those modules it names."""
    names = set(code.co_names)
    modules = []
    for name in names:
        value = namespace.get(name, sys.modules.get(name))
        if value is None:
            continue
        if isinstance(value, types.ModuleType):
            modules.append(value)
        elif _hashable_callable(value):
            yield value
    for module in modules:
        for name in names:
            if _hashable_callable(value := getattr(module, name, None)):
                yield value
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names(constant, namespace)


def _hashable_callable(value: object) -> bool:
    try:
        return callable(value) and hash(value) is not None
    except TypeError:
        return False


def _in_tests(value: object) -> bool:
    """Whether ``value`` is a function or class written under tests/ (worth following)."""
    if not isinstance(value, types.FunctionType | type):
        return False
    module = sys.modules.get(getattr(value, "__module__", "") or "")
    filename = getattr(module, "__file__", None)
    return filename is not None and Path(filename).resolve().is_relative_to(_TESTS)

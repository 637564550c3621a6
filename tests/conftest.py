import os
import shutil
import subprocess
from pathlib import Path

import pytest

_DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


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

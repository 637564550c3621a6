"""The README's two commands, run as written with Debian's own Python.

Debian's and Ubuntu's system Python refuses ``pip install`` outside a virtual environment
(PEP 668), which is the first thing many users meet. These tests copy the checkout, take the two
commands out of the README's "Two commands on a fresh machine" section, and run them with
``/usr/bin/python3`` (``.ci/run`` installs ``python3-venv``), so the front door stays open.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_PYTHON = Path("/usr/bin/python3")
SERVE_PORT = 8025  # the embedded default the README promises

pytestmark = pytest.mark.slow


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def on_debian_python(command: str) -> list[str]:
    """The command's steps, with the leading ``python3`` pinned to Debian's interpreter."""
    steps = command.split(" && ")
    return [re.sub(r"^python3 ", f"{DEBIAN_PYTHON} ", step) for step in steps]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the project as a user would clone it (no virtual environment, no caches)."""
    if not (DEBIAN_PYTHON.exists() and list(Path("/usr/lib").glob("python3*/EXTERNALLY-MANAGED"))):
        pytest.fail("these tests need Debian's python3 with its PEP 668 marker "
                    "(apt-get install python3 python3-venv, as .ci/run does)")
    copy = tmp_path / "mailthreads"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache",
        ".hypothesis", "build", "dist"))
    return copy


def user_environment(home: Path) -> dict[str, str]:
    """A user with an empty home: no config, the database in the default data directory."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("MAILTHREADS_", "VIRTUAL_ENV", "PYTHON"))}
    environment["HOME"] = str(home)
    environment.pop("XDG_DATA_HOME", None)
    environment.pop("XDG_CONFIG_HOME", None)
    return environment


def run_steps(steps: list[str], cwd: Path, environment: dict[str, str]) -> None:
    for step in steps:
        result = subprocess.run(step, shell=True, cwd=cwd, env=environment,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{step}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def test_the_first_session_adds_the_post_before_the_reply() -> None:
    """What the serve test below does, in the README's order: a reply to a post not added is
    held for review, so the first session adds the post first."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A first session", 1)[1].split("\n## ", 1)[0]
    [commands] = re.findall(r"```sh\n(.+?)\n```", section, re.S)[:1]
    add = commands.index('mailthreads posts add why-i-blog --title "Why I blog"')
    assert add < commands.index("reply+why-i-blog@localhost")


def test_the_readme_has_the_two_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("mailthreads serve")
    assert "pytest" in commands[1]


def test_install_and_serve_as_written_on_debian_python(checkout: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", SERVE_PORT)) == 0:
            pytest.fail(f"port {SERVE_PORT} is taken; the README's serve command needs it")
    home = tmp_path / "home"
    home.mkdir()
    environment = user_environment(home)
    *install, serve = on_debian_python(readme_commands()[0])
    run_steps(install, checkout, environment)

    server = subprocess.Popen(shlex.split(serve), cwd=checkout, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(SERVE_PORT, server)
        # The README's "first session": add the post (a reply to an unknown post is held, not
        # filed), send the example reply, then read the discussion.
        subprocess.run([".venv/bin/mailthreads", "posts", "add", "why-i-blog", "--title",
                        "Why I blog"], cwd=checkout, env=environment, check=True,
                       capture_output=True)
        with smtplib.SMTP("127.0.0.1", SERVE_PORT) as client:
            client.sendmail("jane@example.com", ["reply+why-i-blog@localhost"],
                            (checkout / "examples" / "first-reply.eml").read_bytes())
        threads: list = []
        deadline = time.monotonic() + 30
        while not threads and time.monotonic() < deadline:
            listing = subprocess.run([".venv/bin/mailthreads", "threads", "--json"],
                                     cwd=checkout, env=environment, capture_output=True,
                                     text=True, check=True)
            threads = json.loads(listing.stdout)
            time.sleep(0.2)
        assert [thread["post"] for thread in threads] == ["why-i-blog"]
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors
    # The database went to the user's data directory, as the README says.
    assert (home / ".local" / "share" / "mailthreads" / "mailthreads.db").exists()


def test_test_command_as_written_on_debian_python(checkout: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    environment = user_environment(home)
    *install, run_tests = on_debian_python(readme_commands()[1])
    run_steps(install, checkout, environment)
    # The whole suite runs in CI through this very command; here (inside that run) collecting
    # it proves the environment can import every test module, and one quick module runs.
    collected = subprocess.run([*shlex.split(run_tests), "--collect-only", "-q"], cwd=checkout,
                               env=environment, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    count = re.search(r"(\d+) tests? collected", collected.stdout)
    assert count and int(count.group(1)) > 400, collected.stdout[-500:]
    quick = subprocess.run([*shlex.split(run_tests), "-q", "tests/test_config.py"],
                           cwd=checkout, env=environment, capture_output=True, text=True,
                           timeout=300)
    assert quick.returncode == 0, quick.stdout[-3000:]


def install_commands() -> dict[str, str]:
    """The README's "Installing" commands, keyed "user" and "system"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Installing", 1)[1].split("\n## ", 1)[0]
    user, system = re.findall(r"```sh\n\s*(.+?)\n\s*```", section)
    return {"user": user, "system": system}


def exec_start(unit: str) -> str:
    text = (ROOT / "config" / unit).read_text(encoding="utf-8")
    return re.search(r"^ExecStart=(\S+)", text, re.MULTILINE).group(1)


def test_per_user_install_puts_the_command_where_cron_and_the_user_units_run_it(
        checkout: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    environment = user_environment(home)
    steps = [step.replace("~", str(home)) for step in on_debian_python(install_commands()["user"])]
    run_steps(steps, checkout, environment)
    for unit in ("mailthreads-poll.service", "mailthreads-poll-once.service"):
        command = Path(exec_start(unit).replace("%h", str(home)))
        result = subprocess.run([str(command), "--help"], env=environment,
                                capture_output=True, text=True)
        assert result.returncode == 0 and "Usage" in result.stdout, (unit, result.stderr)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cron = re.search(r"\*/5 \* \* \* \* (\S+)", readme).group(1)
    assert Path(cron.replace("$HOME", str(home))).exists()


def test_the_system_unit_runs_what_the_system_install_puts_outside_home() -> None:
    command = exec_start("mailthreads-serve.service")
    assert not command.startswith(("/home", "%h", "~"))  # ProtectHome=yes hides those
    assert f"{command.rsplit('/bin/', 1)[0]}/bin/pip install ." in install_commands()["system"]

"""`mailthreads serve` as a command: its help, and its exit codes when it cannot start."""

from __future__ import annotations

import socket
import subprocess
import sys

from smtp_support import REPO, write_config


def serve(tmp_path, *args: str, config=None) -> subprocess.CompletedProcess[str]:
    config = config or write_config(tmp_path)
    return subprocess.run([sys.executable, "-m", "mailthreads", "-d", str(tmp_path / "mail.db"),
                           "-c", str(config), "serve", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_help_explains_the_command_and_its_exit_codes(tmp_path):
    result = serve(tmp_path, "--help")
    assert result.returncode == 0
    assert "mailthreads serve --host" in result.stdout
    assert "75" in result.stdout and "--port" in result.stdout


def test_a_port_in_use_is_a_temporary_failure(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--port", str(port))
    assert result.returncode == 75
    assert f"127.0.0.1:{port}" in one_line_error(result)


def test_an_address_that_is_not_ours_is_a_user_error(tmp_path):
    # 0.0.0.0/8 is "this network": no interface ever has 0.0.0.1, so nothing is bound.
    result = serve(tmp_path, "--host", "0.0.0.1", "--port", "0")
    assert result.returncode == 1
    assert "cannot listen on 0.0.0.1:0" in one_line_error(result)


def test_an_unusable_tls_certificate_is_a_user_error(tmp_path):
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.write_text("not a certificate\n")
    key.write_text("not a key\n")
    config = write_config(tmp_path, listener={"tls_certificate": str(certificate),
                                              "tls_key": str(key)})
    result = serve(tmp_path, "--port", "0", config=config)
    assert result.returncode == 1
    assert "TLS certificate" in one_line_error(result)


def test_an_invalid_listener_setting_is_a_user_error(tmp_path):
    result = serve(tmp_path, config=write_config(tmp_path, listener={"max_bad_commands": -1}))
    assert result.returncode == 1
    assert "listener.max_bad_commands" in one_line_error(result)

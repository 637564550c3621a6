"""The fast loop's markers are earned by what a test uses (tests/conftest.py), found through
its fixtures and the test-side helpers it calls, however they are imported.

The tests here name the sample helpers by string (``marks("...")``), so that they do not earn
the markers themselves and stay in the fast loop.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import conftest
import smtp_support


def _sends_through_a_listener(tmp_path):
    with smtp_support.Serve(tmp_path / "mail.db", smtp_support.write_config(tmp_path)):
        pass


def _files_a_reply(tmp_path):
    return _sends_through_a_listener(tmp_path)


def _logs_in_to_imap():
    from dovecot import start_dovecot

    return start_dovecot()


class _Interrupter:
    def start(self):
        return subprocess.Popen([sys.executable, "-c", "pass"])


def _interrupts_a_command():
    return _Interrupter().start()


def _runs_one_command():
    return subprocess.run([sys.executable, "-c", "pass"], check=True)


def marks(*names: str) -> set[str]:
    """The automatic markers of a test made of the functions named ``module:function``
    (a module of tests/) or ``function`` (here)."""
    functions = []
    for name in names:
        module, _, function = name.rpartition(":")
        functions.append(getattr(importlib.import_module(module or __name__), function))
    return conftest.automatic_markers(functions)


def test_servers_are_found_through_helpers_local_imports_and_fixtures():
    assert marks("_files_a_reply") == {"servers"}
    assert marks("_logs_in_to_imap") == {"servers"}
    assert marks("_runs_one_command", "conftest:serve") == {"servers"}


def test_a_program_running_beside_the_test_is_slow_one_run_to_its_end_is_not():
    assert marks("_interrupts_a_command") == {"slow"}
    assert marks("_runs_one_command") == set()
    assert marks("_files_a_reply", "_interrupts_a_command") == {"servers", "slow"}


def test_marked_tests_are_the_expected_ones():
    """The real suite: a few tests known to start servers or run programs beside them."""
    assert "servers" in marks("test_smtp_durability:test_a_filer_that_dies_is_started_again")
    interrupted = "test_ctrl_c_in_ingest_says_what_is_in_exits_130_and_a_rerun_continues"
    assert marks(f"test_interrupt:{interrupted}") == {"slow"}
    assert marks("test_thread_order:"
                 "test_threads_are_ordered_by_arrival_not_by_the_date_header") == set()

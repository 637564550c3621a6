"""The fast loop's markers are earned by what a test uses (tests/conftest.py), found through
its fixtures and the test-side helpers it calls, however they are imported."""

from __future__ import annotations

import subprocess
import sys

import smtp_support
from conftest import automatic_markers, serve


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


def test_servers_are_found_through_helpers_local_imports_and_fixtures():
    assert automatic_markers([_files_a_reply]) == {"servers"}
    assert automatic_markers([_logs_in_to_imap]) == {"servers"}
    assert automatic_markers([_runs_one_command, serve]) == {"servers"}


def test_a_program_running_beside_the_test_is_slow_one_run_to_its_end_is_not():
    assert automatic_markers([_interrupts_a_command]) == {"slow"}
    assert automatic_markers([_runs_one_command]) == set()
    assert automatic_markers([_files_a_reply, _interrupts_a_command]) == {"servers", "slow"}


def test_marked_tests_are_the_expected_ones():
    """The real suite: a few tests known to start servers or run programs beside them."""
    from test_interrupt import test_ctrl_c_in_ingest_says_what_is_in_exits_130_and_a_rerun_continues
    from test_smtp_durability import test_a_filer_that_dies_is_started_again
    from test_thread_order import test_threads_are_ordered_by_arrival_not_by_the_date_header

    assert "servers" in automatic_markers([test_a_filer_that_dies_is_started_again])
    assert automatic_markers(
        [test_ctrl_c_in_ingest_says_what_is_in_exits_130_and_a_rerun_continues]) == {"slow"}
    assert automatic_markers([test_threads_are_ordered_by_arrival_not_by_the_date_header]) == set()

"""The one vocabulary of failures and exit statuses (mailthreads.errors)."""

import sqlite3

import click
import pytest

from mailthreads.errors import EX_TEMPFAIL, Failure, exit_status, top_level
from mailthreads.lock import LockHeld


@pytest.mark.parametrize("temporary, status", [
    ([], 0),
    ([True], EX_TEMPFAIL),
    ([True, True], EX_TEMPFAIL),
    ([True, False], 1),
    ([False], 1),
])
def test_one_failure_that_needs_a_person_decides_the_status(temporary, status):
    assert exit_status(iter(temporary)) == status


@pytest.mark.parametrize("error, status", [
    (Failure("fix the setting"), 1),
    (Failure("the server is down", temporary=True), EX_TEMPFAIL),
    (LockHeld("another poll is already running"), EX_TEMPFAIL),
])
def test_failures_below_the_cli_keep_their_text_and_get_their_status(error, status):
    translated = top_level(error, None)
    assert isinstance(translated, click.ClickException)
    assert (translated.message, translated.exit_code) == (str(error), status)


def test_a_bug_keeps_its_traceback():
    assert top_level(ValueError("a bug"), None) is None
    assert top_level(sqlite3.OperationalError("no such table: x"), None) is None

"""Every command's error boundary as a user meets it: bad input -> one line, exit 2; a database that cannot
be used -> one line naming it, exit 1; never a traceback without -vv; never a password on screen."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.ui import BIN

UNREACHABLE = "postgresql://u:secret@127.0.0.1:1/db"


def _run(*args: str, database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "marketdata"), *args], env={"PATH": str(BIN), "DATABASE_URL": database_url},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "url", "code", "message"), [
    (("db", "upgrade"), "user:secret@localhost/db", 2, "is not a database URL"),
    (("db", "upgrade"), "mysql://u:secret@h/db", 2, "only PostgreSQL and SQLite are supported"),
    (("db", "upgrade"), UNREACHABLE, 1, "the database cannot be used"),
    (("gaps", "--symbols", "BTCUSDT"), UNREACHABLE, 1, "the database cannot be used"),
    (("gaps", "--symbols", "BTCUSDT"), "garbage://x", 2, "only PostgreSQL and SQLite are supported"),
])
def test_one_line_the_right_exit_code_and_no_password(args, url, code, message) -> None:
    done = _run(*args, database_url=url)
    assert done.returncode == code, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stdout + done.stderr
    assert len([line for line in done.stderr.splitlines() if line.startswith("Error:")]) == 1


def test_minus_vv_shows_the_traceback() -> None:
    done = _run("-vv", "db", "upgrade", database_url=UNREACHABLE)
    assert done.returncode == 1 and "Traceback" in done.stderr

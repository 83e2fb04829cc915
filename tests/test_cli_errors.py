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


@pytest.mark.parametrize(("args", "names"), [
    (("download", "--symbols", "", "--days", "1"), "--symbols"),
    (("download", "--symbols", "BTCUSDT", "--intervals", "", "--days", "1"), "--intervals"),
    (("gaps", "--symbols", ""), "--symbols"),
    (("download", "--symbols", "BTCUSDT", "--days", "999999999"), "--days 999999999"),
    (("backfill", "--symbols", "BTCUSDT", "--intervals", "1m", "--days", "1", "--timeout", "-1"), "--timeout"),
    (("export", "--table", "klines", "--symbols", "BTCUSDT", "--interval", "1m", "--start", "2024-01-01",
      "--end", "2024-01-02", "--out", ""), "--out"),
    (("replay", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-02", "--speed", "1e-300"),
     "speed '1e-300'"),
    (("stream", "--symbols", "BTCUSDT", "--health-port", "99999"), "--health-port"),
    (("db", "upgrade", "--revision", "bogus"), "--revision"),
    (("stream", "--symbols", "BTCUSDT", "--book-interval", "nan"), "--book-interval"),
    (("stream", "--symbols", "BTCUSDT", "--book-interval", "0"), "--book-interval"),
    (("stream", "--symbols", "BTCUSDT", "--log-level", "bogus"), "--log-level"),
])
def test_bad_input_once_accepted_or_a_traceback_is_exit_2_naming_it(args, names, tmp_path) -> None:
    """Inputs the fault campaign found accepted silently (an empty --symbols meant "all") or crashing."""
    done = _run(*args, database_url=f"sqlite:///{tmp_path / 'md.db'}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert names in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [
    ("gaps", "--symbols", "BTCUSDT"),
    ("export", "--table", "klines", "--symbols", "BTCUSDT", "--interval", "1m", "--start", "2024-01-01",
     "--end", "2024-01-02", "--out", "out"),
    ("replay", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-02"),
])
def test_reading_commands_refuse_a_mistyped_sqlite_path_instead_of_creating_it(args, tmp_path) -> None:
    missing = tmp_path / "typo" / "md.db"
    done = _run(*args, database_url=f"sqlite:///{missing}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"no SQLite database at {missing}" in done.stderr
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize(("value", "message"), [("abc", "DEFAULT_DEPTH='abc': expected a whole number"),
                                                ("-5", "DEFAULT_DEPTH=-5: expected 1..1000")])
def test_a_bad_default_depth_is_refused_before_anything_runs(value, message, tmp_path) -> None:
    done = subprocess.run([str(BIN / "marketdata"), "stream", "--symbols", "BTCUSDT"],
                          env={"PATH": str(BIN), "DATABASE_URL": f"sqlite:///{tmp_path / 'md.db'}",
                               "DEFAULT_DEPTH": value}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_database_host_that_accepts_and_never_answers_ends_in_one_line_not_a_hang() -> None:
    """A frozen or half-open PostgreSQL: the connect timeout (here 2 s from the URL) ends the command."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever speaks
        port = silent.getsockname()[1]
        done = _run("db", "upgrade", database_url=f"postgresql://u:secret@127.0.0.1:{port}/db?connect_timeout=2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the database cannot be used" in done.stderr and "secret" not in done.stderr


def test_marketdata_config_is_read_by_every_command_and_refuses_unknown_keys(tmp_path) -> None:
    """The README's variables in one TOML file: a CLI command reads DATABASE_URL from it (here a mistyped
    SQLite path, which `gaps` names), and a key nobody reads is refused with its name."""
    missing = tmp_path / "from_the_file.db"
    config = tmp_path / "marketdata.toml"
    config.write_text(f'DATABASE_URL = "sqlite:///{missing}"\nmarketdata_symbols = ["BTCUSDT"]\n')
    env = {"PATH": str(BIN), "MARKETDATA_CONFIG": str(config)}
    done = subprocess.run([str(BIN / "marketdata"), "gaps", "--symbols", "BTCUSDT"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and f"no SQLite database at {missing}" in done.stderr, done.stderr

    config.write_text('DATABASE_URL = "sqlite:///x.db"\ndatabse_url = "typo"\n')
    done = subprocess.run([str(BIN / "marketdata"), "gaps", "--symbols", "BTCUSDT"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unknown key(s) databse_url" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "env", "names"), [
    (("download", "--symbols", "BTCUSDT", "--days", "1"), {"DATABASE_URL": "sqlite:///{file}/md.db"},
     "DATABASE_URL: cannot create the SQLite folder"),
    (("stream", "--symbols", "BTCUSDT", "--spool-dir", "{file}/spool"), {}, "--spool-dir"),
    (("stream", "--symbols", "BTCUSDT", "--spool-max-mb", "nan"), {}, "--spool-max-mb"),
    (("stream", "--symbols", "BTCUSDT", "--max-buffered-rows", "0"), {}, "--max-buffered-rows"),
    (("stream", "--symbols", "BTCUSDT", "--db-timeout", "0"), {}, "--db-timeout"),
    (("export", "--table", "klines", "--symbols", "BTCUSDT", "--interval", "1m", "--start", "2024-01-01",
      "--end", "2024-01-02", "--out", "{file}/out"), {}, "--out"),
    (("download", "--symbols", "BTCUSDT", "--start", "2024-01-01", "--end", "9999-12-31"), {}, "--end 9999-12-31"),
    (("gaps", "--symbols", "BTCUSDT"), {"MARKETDATA_CONFIG": "{file}.missing"}, "MARKETDATA_CONFIG="),
    (("gaps", "--symbols", "BTCUSDT"), {"MARKETDATA_CONFIG": "{file}"}, "MARKETDATA_CONFIG="),
])
def test_paths_under_a_file_bad_bounds_and_bad_config_are_exit_2_naming_them(args, env, names, tmp_path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder, not TOML\n")
    database = tmp_path / "md.db"
    _run("db", "upgrade", database_url=f"sqlite:///{database}")
    done = subprocess.run([str(BIN / "marketdata"), *(a.format(file=a_file) for a in args)],
                          env={"PATH": str(BIN), "DATABASE_URL": f"sqlite:///{database}",
                               **{k: v.format(file=a_file) for k, v in env.items()}},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert names in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "env", "message"), [
    (("gaps", "--symbols", "BTCUSDT"), {"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/no_such_database"},
     'database "no_such_database" does not exist'),
    (("gaps", "--symbols", "BTCUSDT"), {"DATABASE_URL": "sqlite:///{file}"}, "file is not a database"),
    (("stream", "--symbols", "BTCUSDT"), {"BINANCE_FAPI_URL": "http://127.0.0.1:9"}, "cannot reach Binance"),
])
def test_an_environment_that_cannot_be_used_is_exit_1_naming_it(args, env, message, tmp_path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a database\n")
    done = subprocess.run([str(BIN / "marketdata"), *args],
                          env={"PATH": str(BIN), "DATABASE_URL": f"sqlite:///{tmp_path / 'md.db'}",
                               "MARKETDATA_STATE_DIR": str(tmp_path),
                               **{k: v.format(file=a_file) for k, v in env.items()}},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr

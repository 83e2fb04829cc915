"""Each sidecar has its own spool by default: two sidecars on one host (other database, other symbols) never
share one, and a restarted sidecar finds the one it left (issue 11, item 2)."""

from __future__ import annotations

from marketdata_assets.settings import Settings
from streaming.service import MarketDataService
from streaming.spool import SPOOL_ROOT_NAME, default_spool_dir


def _spool(database_url: str, symbols: list[str]) -> object:
    service = MarketDataService(Settings.from_env({"DATABASE_URL": database_url}), symbols=symbols,
                                check_symbols=False, migrate=False)
    try:
        return service.writer.spool.directory
    finally:
        service.engine.dispose()


def test_two_sidecars_get_two_spools_and_a_restart_gets_its_own_back(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    a = _spool(f"sqlite:///{tmp_path / 'a.db'}", ["BTCUSDT"])
    b = _spool(f"sqlite:///{tmp_path / 'b.db'}", ["BTCUSDT"])
    c = _spool(f"sqlite:///{tmp_path / 'a.db'}", ["ETHUSDT"])
    again = _spool(f"sqlite:///{tmp_path / 'a.db'}", ["btcusdt"])
    assert len({a, b, c}) == 3 and again == a
    assert a.parent == tmp_path / SPOOL_ROOT_NAME


def test_a_rotated_password_keeps_the_spool() -> None:
    one = default_spool_dir("postgresql://u:old@h/db", ["BTCUSDT"], ["trade"], "1m", root="/x")
    two = default_spool_dir("postgresql://u:new@h/db", ["BTCUSDT"], ["trade"], "1m", root="/x")
    other = default_spool_dir("postgresql://u:new@h/other", ["BTCUSDT"], ["trade"], "1m", root="/x")
    assert one == two != other

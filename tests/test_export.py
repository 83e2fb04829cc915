"""`marketdata export` against stored simulator data, on PostgreSQL and SQLite (the `repo` fixture).

Measured here: the dataset is partitioned symbol=/date=, Parquet is zstd with decimal128 prices, pandas and
polars read back identical values that equal the store exactly; CSV keeps the stored decimal text; bad input
is refused naming it, and a value that cannot be exported exactly is an error, not a rounding.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from marketdata_assets.binance.intervals import DAY_MS, InvalidInputError, day_start_ms
from marketdata_assets.binance.klines import DECIMAL_COLUMNS
from marketdata_assets.cli.main import cli
from marketdata_assets.export import ExportValueError, export_table
from marketdata_assets.storage.tables_stream import agg_trades
from tests.support.market_rows import load_agg_trades, load_klines

DAYS = [date(2024, 1, 1), date(2024, 1, 2)]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def stored(sim_session, repo):
    load_klines(sim_session, repo, SYMBOLS, "1m", DAYS)
    return repo


def pandas_frame(root) -> pd.DataFrame:
    frame = pd.read_parquet(root)
    frame["symbol"] = frame["symbol"].astype(str)
    frame["date"] = frame["date"].astype(str)
    frame["interval"] = frame["interval"].astype(str)
    return frame.sort_values(["symbol", "open_time"]).reset_index(drop=True)


def polars_frame(root) -> pl.DataFrame:
    frame = pl.read_parquet(f"{root}/**/*.parquet", hive_partitioning=True)
    return frame.with_columns(pl.col("date").cast(pl.String)).sort(["symbol", "open_time"])


def test_klines_parquet_read_back_by_pandas_and_polars_equals_the_store(stored, tmp_path):
    result = export_table(stored.engine, "klines", SYMBOLS, DAYS[0], DAYS[-1], tmp_path, interval="1m")
    root = tmp_path / "klines"
    assert result.rows == {"BTCUSDT": 2 * 1440, "ETHUSDT": 2 * 1440}
    assert sorted(p.relative_to(root).as_posix() for p in result.files) == [
        f"interval=1m/symbol={s}/date={d}/part-0.parquet" for s in SYMBOLS for d in ("2024-01-01", "2024-01-02")
    ]
    meta = pq.ParquetFile(result.files[0]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert str(pq.read_schema(result.files[0]).field("open").type) == "decimal128(38, 8)"

    pdf, plf = pandas_frame(root), polars_frame(root)
    assert len(pdf) == len(plf) == 4 * 1440
    assert list(pdf.columns) == plf.columns
    for name in pdf.columns:
        if name in ("open_time", "close_time"):
            assert list(pdf[name]) == [pd.Timestamp(t) for t in plf[name].to_list()], name
        else:
            assert list(pdf[name]) == plf[name].to_list(), name

    for symbol in SYMBOLS:
        truth = stored.get_klines(symbol, "1m", DAYS[0], day_start_ms(DAYS[-1]) + DAY_MS, exact=True)
        mine = pdf[pdf["symbol"] == symbol].reset_index(drop=True)
        assert list(mine["open_time"]) == list(truth["open_time"])
        assert list(mine["close_time"]) == list(truth["close_time"])
        assert list(mine["trades_count"]) == list(truth["trades_count"])
        for name in DECIMAL_COLUMNS:
            assert all(isinstance(v, Decimal) for v in mine[name]), name
            assert list(mine[name]) == list(truth[name]), name
        assert set(mine["source"]) == {"archive"}
        assert list(mine["date"].unique()) == ["2024-01-01", "2024-01-02"]
        assert set(mine["interval"]) == {"1m"}


def test_klines_csv_keeps_the_stored_decimal_text(stored, tmp_path):
    result = export_table(stored.engine, "klines", ["BTCUSDT"], DAYS[0], DAYS[0], tmp_path, fmt="csv",
                          interval="1m")
    assert [p.name for p in result.files] == ["part-0.csv"]
    text = pd.read_csv(result.files[0], dtype=str, keep_default_na=False)
    by_polars = pl.read_csv(result.files[0], infer_schema=False)
    assert list(text.columns) == by_polars.columns
    for name in text.columns:
        assert list(text[name]) == by_polars[name].to_list(), name
    truth = stored.get_klines("BTCUSDT", "1m", DAYS[0], DAYS[1], exact=True)
    for name in DECIMAL_COLUMNS:
        assert list(text[name]) == [str(v) for v in truth[name]], name
    assert list(pd.to_datetime(text["open_time"])) == list(truth["open_time"])


def test_agg_trades_round_trip_with_booleans_and_ids(sim_session, repo, tmp_path):
    start = day_start_ms(date(2024, 3, 1)) + 12 * 3_600_000
    trades = load_agg_trades(sim_session, repo.engine, "BTCUSDT", start, start + 600_000)
    assert trades
    result = export_table(repo.engine, "agg_trades", ["BTCUSDT"], date(2024, 3, 1), date(2024, 3, 1), tmp_path)
    assert result.total_rows == len(trades)
    root = tmp_path / "agg_trades"
    pdf = pd.read_parquet(root).sort_values("agg_id")
    plf = pl.read_parquet(f"{root}/**/*.parquet", hive_partitioning=True).sort("agg_id")
    assert list(pdf["agg_id"]) == plf["agg_id"].to_list() == [int(t["a"]) for t in trades]
    assert list(pdf["price"]) == plf["price"].to_list() == [Decimal(t["p"]) for t in trades]
    assert list(pdf["quantity"]) == [Decimal(t["q"]) for t in trades]
    assert list(pdf["is_buyer_maker"]) == plf["is_buyer_maker"].to_list() == [bool(t["m"]) for t in trades]
    assert [int(t.timestamp() * 1000) for t in pdf["trade_time"]] == [int(t["T"]) for t in trades]
    assert pdf["event_time"].isna().all() and plf["event_time"].null_count() == len(trades)


def test_a_value_with_more_than_8_decimals_is_an_error_not_a_rounding(repo, tmp_path):
    with repo.engine.begin() as conn:
        conn.execute(sa.insert(agg_trades), [{
            "symbol": "BTCUSDT", "agg_id": 1, "price": "1.123456789", "quantity": "1", "first_trade_id": 1,
            "last_trade_id": 1, "trade_time": datetime(2024, 1, 1, tzinfo=UTC), "is_buyer_maker": True,
            "event_time": None, "source": "rest", "ingested_at": datetime.now(UTC)}])
    with pytest.raises(ExportValueError, match="agg_trades.price"):
        export_table(repo.engine, "agg_trades", ["BTCUSDT"], DAYS[0], DAYS[0], tmp_path)
    csv = export_table(repo.engine, "agg_trades", ["BTCUSDT"], DAYS[0], DAYS[0], tmp_path, fmt="csv")
    assert pd.read_csv(csv.files[0], dtype=str)["price"].tolist() == ["1.123456789"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"table": "kline"}, "unknown table 'kline'"),
    ({"fmt": "xlsx"}, "unknown format 'xlsx'"),
    ({"symbols": ["btc-usdt"]}, "invalid symbol 'btc-usdt'"),
    ({"interval": "7m"}, "unknown interval '7m'"),
    ({"table": "agg_trades", "interval": "1m"}, "table 'agg_trades' has no interval"),
    ({"start": DAYS[1], "end": DAYS[0]}, "is before start"),
])
def test_bad_input_is_refused_naming_it(sqlite_engine, tmp_path, kwargs, message):
    args = {"table": "klines", "symbols": ["BTCUSDT"], "start": DAYS[0], "end": DAYS[1], "fmt": "parquet",
            "interval": "1m"} | kwargs
    with pytest.raises(InvalidInputError, match=message):
        export_table(sqlite_engine, args.pop("table"), args.pop("symbols"), args.pop("start"), args.pop("end"),
                     tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_cli_exports_and_exits_2_on_bad_input(sim_session, sqlite_engine, tmp_path, monkeypatch):
    from marketdata_assets.storage.migrate import upgrade
    from marketdata_assets.storage.repository import MarketDataRepository

    upgrade(sqlite_engine)
    load_klines(sim_session, MarketDataRepository(sqlite_engine), ["BTCUSDT"], "1h", DAYS[:1])
    monkeypatch.setenv("DATABASE_URL", str(sqlite_engine.url))
    out = tmp_path / "out"
    ok = CliRunner().invoke(cli, ["export", "--table", "klines", "--symbols", "BTCUSDT", "--interval", "1h",
                                  "--start", "2024-01-01", "--end", "2024-01-01", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "24 rows in 1 files" in ok.output
    assert len(pd.read_parquet(out / "klines")) == 24
    bad = CliRunner().invoke(cli, ["export", "--table", "trades", "--symbols", "BTCUSDT",
                                   "--start", "2024-01-01", "--end", "2024-01-01", "--out", str(out)])
    assert bad.exit_code == 2 and "unknown table 'trades'" in bad.output

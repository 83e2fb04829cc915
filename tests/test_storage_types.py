"""ExactDecimal and UtcTimestamp on both databases, through plain Core inserts and selects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from marketdata_assets.storage.types import ExactDecimal, UtcTimestamp, to_decimal, to_utc

probe = sa.Table(
    "type_probe", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", ExactDecimal()),
    sa.Column("at", UtcTimestamp()),
)


@pytest.fixture
def probe_engine(db_engine):
    probe.create(db_engine)
    return db_engine


def test_exact_decimal_and_utc_timestamp_round_trip(probe_engine):
    rows = [
        {"id": 1, "amount": "16537.50", "at": datetime(2023, 1, 1, tzinfo=UTC)},
        {"id": 2, "amount": Decimal("0.00000001"), "at": datetime(2023, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))},
        {"id": 3, "amount": 42, "at": 1_672_531_259_999},
        {"id": 4, "amount": None, "at": datetime(2023, 1, 1, 0, 0, 59)},  # naive: read as UTC
    ]
    with probe_engine.begin() as conn:
        conn.execute(probe.insert(), rows)
        got = conn.execute(sa.select(probe).order_by(probe.c.id)).all()
    assert [str(r.amount) for r in got] == ["16537.50", "1E-8", "42", "None"]
    assert got[1].amount == Decimal("0.00000001")
    assert [r.at for r in got] == [
        datetime(2023, 1, 1, tzinfo=UTC),
        datetime(2023, 1, 1, tzinfo=UTC),
        datetime(2023, 1, 1, 0, 0, 59, 999000, tzinfo=UTC),
        datetime(2023, 1, 1, 0, 0, 59, tzinfo=UTC),
    ]
    assert all(r.at.utcoffset() == timedelta(0) for r in got)


def test_floats_and_garbage_are_refused():
    with pytest.raises(TypeError, match="float"):
        to_decimal(0.1)
    with pytest.raises(ValueError, match="not a decimal"):
        to_decimal("12,5")
    with pytest.raises(ValueError, match="finite"):
        to_decimal("NaN")
    with pytest.raises(TypeError, match="datetime"):
        to_utc("2023-01-01")

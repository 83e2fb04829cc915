"""enumerated CHECK constraints as OR'd equalities

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

SQLite (3.40 here) evaluates `source IN ('archive', 'rest', 'stream')` in a CHECK by building an ephemeral
table for every row it writes: 2 us of a 4.6 us kline insert, about 1 s of a symbol-year of 1m bars
(storage/constraints.py). The same tests as `source = 'archive' OR ...` cost nothing measurable. Every
enumerated CHECK takes that form, on both databases so that both hold one schema. PostgreSQL re-checks
each table's rows once when the constraint is added again; SQLite copies each table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from marketdata_assets.storage.constraints import one_of

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_KLINE_SOURCES = ("archive", "rest", "stream")
# (table, constraint, column, allowed values, the IN list it replaces)
CHECKS = (
    *[(name, f"ck_{name}_source", "source", _KLINE_SOURCES, "source IN ('archive', 'rest', 'stream')")
      for name in ("kline_data", "mark_price_klines", "index_price_klines", "premium_index_klines")],
    ("partition_ledger", "ck_partition_ledger_status", "status", ("complete", "incomplete", "failed", "out_of_range"),
     "status IN ('complete', 'incomplete', 'failed', 'out_of_range')"),
    ("agg_trades", "ck_agg_trades_source", "source", ("stream", "rest", "archive"),
     "source IN ('stream', 'rest', 'archive')"),
    ("stream_gaps", "ck_stream_gaps_state", "state", ("open", "filled", "failed", "not_fillable"),
     "state IN ('open', 'filled', 'failed', 'not_fillable')"),
    ("funding_rates", "ck_funding_rates_source", "source", ("archive", "rest"), "source IN ('archive', 'rest')"),
    ("funding_rates", "ck_funding_rates_interval", "funding_interval_hours", (1, 2, 4, 8),
     "funding_interval_hours IN (1, 2, 4, 8)"),
    ("open_interest_metrics", "ck_open_interest_metrics_source", "source", ("archive",), "source IN ('archive')"),
    ("book_depth", "ck_book_depth_source", "source", ("archive",), "source IN ('archive')"),
)


def _replace(new_condition) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    tables: dict[str, list[tuple]] = {}
    for table, name, column, values, old in CHECKS:
        tables.setdefault(table, []).append((name, new_condition(column, values, old)))
    for table, checks in tables.items():
        if postgres:
            for name, condition in checks:
                op.drop_constraint(name, table, type_="check")
                op.create_check_constraint(name, table, condition)
            continue
        with op.batch_alter_table(table, recreate="always") as batch:
            for name, condition in checks:
                batch.drop_constraint(name, type_="check")
                batch.create_check_constraint(name, condition)


def upgrade() -> None:
    _replace(lambda column, values, _old: one_of(column, values))


def downgrade() -> None:
    _replace(lambda _column, _values, old: sa.text(old))

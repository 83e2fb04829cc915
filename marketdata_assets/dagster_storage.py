"""A PostgreSQL event-log storage for the Dagster instance that keeps its connections open.

Why: dagster-postgres opens a new database connection for every event-log statement outside the
webserver (NullPool), and a range run writes thousands of events (a symbol-year of klines is 365
materializations and 1,825 per-partition check results). On a small machine the connects cost more
than the inserts: profiled, a year's check step spent 44 of 97 s in `psycopg2.connect`. This subclass
changes the engine's pool (a small QueuePool, like the webserver's), remembers that tables exist, and
writes a range run's planned check rows with one serialization; what is stored is dagster-postgres's
own. Configure it in `dagster.yaml` as `event_log_storage` (deploy/dagster.postgres.yaml).

Kept outside `marketdata_assets.defs` on purpose: the webserver and the daemon import it when they load
the instance, and must not import the code location for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy.pool as db_pool
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._serdes import ConfigurableClassData, serialize_value
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

POOL_SIZE = 1
MAX_OVERFLOW = 4
POOL_RECYCLE_SECONDS = 600


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """`PostgresEventLogStorage` whose engine holds one connection open (plus overflow for threads)."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ) -> None:
        self._tables_present: set[str] = set()
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        self._engine.dispose()
        self._engine = create_pg_engine(
            postgres_url,
            token_provider,
            isolation_level="AUTOCOMMIT",
            poolclass=db_pool.QueuePool,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            pool_recycle=POOL_RECYCLE_SECONDS,  # as the webserver's engine (optimize_for_webserver)
        )

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before every check-result write whether the checks table exists (a catalog query
        each time); a table that exists keeps existing, so a yes is remembered."""
        if table_name in self._tables_present:
            return True
        present = super().has_table(table_name)
        if present:
            self._tables_present.add(table_name)
        return present

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """The planned row of each partition of a check, as Dagster writes them, with the event serialized
        once instead of once per row: in a range run the event carries all the run's partitions, so
        Dagster's version serialized 365 keys 365 times per check (seconds of a symbol-year's run start)."""
        planned = event.get_dagster_event().event_specific_data
        keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert().values([{**common, "partition": k} for k in keys]))

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresEventLogStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

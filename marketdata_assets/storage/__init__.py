"""The market-data store: SQLAlchemy Core tables, Alembic migrations, bulk upsert and queries.

No Dagster import here: the streaming sidecar uses this package too. Migrations (Alembic) are imported
only by `storage.migrate`, which keeps this import light.
"""

from marketdata_assets.storage.engine import describe_url, make_engine, normalise_url
from marketdata_assets.storage.ledger import LedgerRow
from marketdata_assets.storage.repository import MarketDataRepository, UpsertResult

__all__ = [
    "LedgerRow", "MarketDataRepository", "UpsertResult", "describe_url", "make_engine", "normalise_url",
]

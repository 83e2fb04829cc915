"""Alembic environment for the market-data store.

Run through `marketdata_assets.storage.migrate.upgrade` (or `marketdata db upgrade`), which passes an open
connection in `config.attributes["connection"]`; no alembic.ini is needed. SQLite gets batch mode because
it cannot ALTER most things in place.
"""

from __future__ import annotations

from alembic import context

from marketdata_assets.storage.engine import make_engine
from marketdata_assets.storage.migrate import load_all_tables

metadata = load_all_tables()  # every storage/tables*.py module, for autogenerate

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()

"""`marketdata db upgrade|current`: apply the store's migrations."""

from __future__ import annotations

import click

from marketdata_assets.binance.intervals import InvalidInputError
from marketdata_assets.cli.options import settings_from_flags

# storage (SQLAlchemy, Alembic) is imported inside the commands: `marketdata db --help` stays light


@click.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--database-url", envvar="DATABASE_URL", help="Database to migrate (default: SQLite under ./data).")
@click.option("--revision", default="head", show_default=True)
def upgrade_command(database_url: str | None, revision: str) -> None:
    """Create or migrate the market-data tables."""
    from marketdata_assets.storage.engine import describe_url
    from marketdata_assets.storage.migrate import head_revision, upgrade

    settings = settings_from_flags(database_url=database_url)
    from marketdata_assets.storage.migrate import known_revision

    try:  # the revision against the packaged scripts, before the database is touched
        known_revision(revision)
    except InvalidInputError as exc:
        raise click.UsageError(str(exc)) from None
    settings.ensure_sqlite_dir()
    applied = upgrade(settings.database_url, revision)
    click.echo(f"{describe_url(settings.database_url)} is at revision {applied} (head {head_revision()})")


@db_group.command("current")
@click.option("--database-url", envvar="DATABASE_URL")
def current_command(database_url: str | None) -> None:
    """Print the database's revision."""
    from marketdata_assets.storage.engine import make_engine
    from marketdata_assets.storage.migrate import current_revision

    settings = settings_from_flags(database_url=database_url)
    engine = make_engine(settings.database_url)
    try:
        click.echo(current_revision(engine) or "(empty)")
    finally:
        engine.dispose()

"""Settings from the environment (the seed's names plus base URLs), each also settable as a CLI flag.

The real Binance endpoints are the defaults; point the three URLs at `marketdata sim` for tests and demos.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from marketdata_assets.binance.intervals import InvalidInputError, validate_interval
from marketdata_assets.config_file import effective_env
from marketdata_assets.redact import mask_credentials

LIVE_FAPI_URL = "https://fapi.binance.com"
TESTNET_FAPI_URL = "https://demo-fapi.binance.com"
LIVE_WS_URL = "wss://fstream.binance.com"
TESTNET_WS_URL = "wss://fstream.binancefuture.com"
ARCHIVE_URL = "https://data.binance.vision"
ARCHIVE_LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
DEFAULT_DATABASE_URL = "sqlite:///data/marketdata.db"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def validate_url(url: str, name: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """A clear error naming the setting when a URL is malformed."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        raise InvalidInputError(f"{name}={url!r} is not a valid URL (expected {' or '.join(schemes)}://host)")
    return url.rstrip("/")


MAX_DEPTH = 1000  # the most levels GET /fapi/v1/depth returns (SPEC A.9)


def _int_env(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInputError(f"{name}={raw!r}: expected a whole number") from None


@dataclass(frozen=True)
class Settings:
    fapi_url: str = LIVE_FAPI_URL
    archive_url: str = ARCHIVE_URL
    archive_listing_url: str = ARCHIVE_LISTING_URL
    ws_url: str = LIVE_WS_URL
    database_url: str = DEFAULT_DATABASE_URL
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    testnet: bool = False
    default_interval: str = "1m"
    default_depth: int = 20
    store_to_db: bool = True
    publish_events: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = effective_env(env)  # MARKETDATA_CONFIG's file under the environment
        testnet = _flag(env.get("BINANCE_TESTNET"), False)
        settings = cls(
            fapi_url=env.get("BINANCE_FAPI_URL") or (TESTNET_FAPI_URL if testnet else LIVE_FAPI_URL),
            archive_url=env.get("BINANCE_ARCHIVE_URL") or ARCHIVE_URL,
            archive_listing_url=env.get("BINANCE_ARCHIVE_LISTING_URL") or ARCHIVE_LISTING_URL,
            ws_url=env.get("BINANCE_WS_URL") or (TESTNET_WS_URL if testnet else LIVE_WS_URL),
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            api_key=env.get("BINANCE_API_KEY") or None,
            api_secret=env.get("BINANCE_API_SECRET") or None,
            testnet=testnet,
            default_interval=env.get("DEFAULT_INTERVAL") or "1m",
            default_depth=_int_env(env, "DEFAULT_DEPTH", 20),
            store_to_db=_flag(env.get("STORE_TO_DB"), True),
            publish_events=_flag(env.get("PUBLISH_EVENTS"), False),
        )
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        return settings.validated()

    def validated(self) -> Settings:
        validate_url(self.fapi_url, "BINANCE_FAPI_URL")
        validate_url(self.archive_url, "BINANCE_ARCHIVE_URL")
        validate_url(self.archive_listing_url, "BINANCE_ARCHIVE_LISTING_URL")
        validate_url(self.ws_url, "BINANCE_WS_URL", ("ws", "wss"))
        validate_interval(self.default_interval)
        if not 1 <= self.default_depth <= MAX_DEPTH:
            raise InvalidInputError(f"DEFAULT_DEPTH={self.default_depth}: expected 1..{MAX_DEPTH} book levels")
        if "://" not in self.database_url:
            raise InvalidInputError(f"DATABASE_URL={mask_credentials(self.database_url)!r} is not a database URL "
                                    "(expected postgresql://... or sqlite:///...)")
        return replace(
            self,
            fapi_url=self.fapi_url.rstrip("/"),
            archive_url=self.archive_url.rstrip("/"),
            archive_listing_url=self.archive_listing_url.rstrip("/"),
            ws_url=self.ws_url.rstrip("/"),
        )

    def require_existing_store(self) -> None:
        """A command that only reads refuses a SQLite path that holds no database (a typo would otherwise
        create an empty one and report nothing to be found)."""
        if self.database_url.startswith("sqlite:///"):
            path = self.database_url.removeprefix("sqlite:///")
            if path and path != ":memory:" and not Path(path).is_file():
                raise InvalidInputError(f"DATABASE_URL={self.database_url!r}: no SQLite database at {path} "
                                        "(marketdata db upgrade or a download creates one)")

    def ensure_sqlite_dir(self) -> None:
        """Create the folder of a SQLite database file (the default lives under ./data)."""
        if self.database_url.startswith("sqlite:///"):
            path = self.database_url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                folder = Path(path).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise InvalidInputError(f"DATABASE_URL: cannot create the SQLite folder {folder}: "
                                            f"{exc.strerror or exc}") from None

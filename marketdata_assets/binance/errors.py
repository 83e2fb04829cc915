"""Typed Binance errors, chosen from the HTTP status and the Binance error code (SPEC A.1, A.2).

Why typed: callers react differently to "this symbol does not exist" (record and stop), "slow down"
(the client already waited) and "the exchange is down" (retry later), and must not parse messages.
Messages name the request (method, path, symbol) and never carry an API key or a signature.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

# Query parameters worth naming in a message; everything else (signatures, keys, ...) is left out.
_NAMED_PARAMS = ("symbol", "pair", "interval")
_BANNED_UNTIL_RE = re.compile(r"banned until (\d{10,16})")

INVALID_SYMBOL_CODES = frozenset({-1121, -1122})
INVALID_INTERVAL_CODES = frozenset({-1120})
INVALID_PARAMETER_CODES = frozenset(
    {-1023, -1100, -1101, -1102, -1103, -1104, -1105, -1106, -1111, -1112, -1114, -1115, -1116,
     -1117, -1127, -1128, -1130}
)


class PayloadFormatError(ValueError):
    """A file or response whose layout or content is not what Binance publishes; each dataset's parser
    raises its own subclass, naming the input. Callers that fail the day catch this one base."""


def describe_request(url: str | None) -> str:
    """'/fapi/v1/klines symbol=BTCUSDT interval=1m' from a URL: enough to find the call, nothing secret."""
    if not url:
        return "request"
    parts = urlsplit(url)
    named = [f"{k}={v}" for k, v in parse_qsl(parts.query) if k in _NAMED_PARAMS]
    return " ".join([parts.path or "/", *named])


class BinanceError(Exception):
    """Base of every error raised by the Binance clients."""


class BinanceAPIError(BinanceError):
    """An HTTP error answer from Binance: status, Binance code (None if the body had none) and message."""

    def __init__(self, status: int, code: int | None, msg: str, url: str | None = None) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        self.url = url
        self.request = describe_request(url)
        super().__init__(self._text())

    def _text(self) -> str:
        code = f" code {self.code}" if self.code is not None else ""
        return f"{self.request}: HTTP {self.status}{code}: {self.msg}"


class InvalidSymbolError(BinanceAPIError):
    """-1121: the exchange does not know the symbol (never listed, or delisted)."""


class InvalidIntervalError(BinanceAPIError):
    """-1120: the exchange does not serve this kline interval."""


class InvalidParameterError(BinanceAPIError):
    """-1100/-1102/-1103/-1130/-1023 ...: a parameter the exchange rejects; retrying cannot help."""


class RateLimitedError(BinanceAPIError):
    """429: over the request-weight limit; `retry_after` in seconds when the server said."""

    def __init__(self, status: int, code: int | None, msg: str, url: str | None = None,
                 retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(status, code, msg, url)


class IPBannedError(BinanceAPIError):
    """418: the IP is banned (for 2 minutes up to 3 days) until `banned_until_ms` (epoch ms) if known."""

    def __init__(self, status: int, code: int | None, msg: str, url: str | None = None,
                 banned_until_ms: int | None = None, retry_after: float | None = None) -> None:
        self.banned_until_ms = banned_until_ms
        self.retry_after = retry_after
        super().__init__(status, code, msg, url)


class RestrictedLocationError(BinanceAPIError):
    """451: Binance refuses service from this location; use another host or the simulator."""


class BinanceServerError(BinanceAPIError):
    """5xx (or 408) that persisted through every retry."""


class BinanceUnavailableError(BinanceError):
    """Timeouts or connection failures that persisted through every retry."""

    def __init__(self, message: str, url: str | None = None) -> None:
        self.url = url
        self.request = describe_request(url)
        super().__init__(f"{self.request}: {message}")


class ArchiveError(BinanceError):
    """A data.binance.vision file that cannot be used."""


class ChecksumMismatchError(ArchiveError):
    """The zip's sha256 differs from its .CHECKSUM: its data must not be used."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(f"{path}: sha256 mismatch: .CHECKSUM says {expected}, downloaded file has {actual}")


class CorruptArchiveError(ArchiveError):
    """A zip that cannot be read, or that does not hold exactly one CSV; or an unreadable .CHECKSUM."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (Binance sends seconds; an HTTP date is not expected)."""
    if not headers:
        return None
    value = _header(headers, "Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def parse_banned_until_ms(msg: str) -> int | None:
    """The ban end from '... IP(x) banned until 1615183669840. ...' (ms; a 10-digit value is seconds)."""
    match = _BANNED_UNTIL_RE.search(msg or "")
    if not match:
        return None
    value = int(match.group(1))
    digits = len(match.group(1))
    if digits <= 10:
        return value * 1000
    if digits >= 16:
        return value // 1000
    return value


def parse_error_body(body: bytes | str | Mapping | None) -> tuple[int | None, str]:
    """(code, msg) from a Binance error body; non-JSON bodies (WAF pages) give (None, first 200 chars)."""
    if body is None:
        return None, ""
    if isinstance(body, Mapping):
        data: object = body
    else:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            data = json.loads(text)
        except ValueError:
            return None, " ".join(text.split())[:200]
    if isinstance(data, Mapping):
        code = data.get("code")
        msg = data.get("msg", "")
        return (code if isinstance(code, int) else None), str(msg)
    return None, str(data)[:200]


def error_from_response(status: int, body: bytes | str | Mapping | None,
                        headers: Mapping[str, str] | None = None, url: str | None = None) -> BinanceAPIError:
    """The typed error for an HTTP error answer (status >= 400)."""
    code, msg = parse_error_body(body)
    if not msg:
        msg = f"HTTP {status} without a message"
    retry_after = parse_retry_after(headers)
    banned_until = parse_banned_until_ms(msg)
    if status == 418 or banned_until is not None:
        return IPBannedError(status, code, msg, url, banned_until_ms=banned_until, retry_after=retry_after)
    if status == 429:
        return RateLimitedError(status, code, msg, url, retry_after=retry_after)
    if status == 451:
        return RestrictedLocationError(status, code, msg, url)
    if status >= 500 or status == 408:
        return BinanceServerError(status, code, msg, url)
    if code in INVALID_SYMBOL_CODES:
        return InvalidSymbolError(status, code, msg, url)
    if code in INVALID_INTERVAL_CODES:
        return InvalidIntervalError(status, code, msg, url)
    if code in INVALID_PARAMETER_CODES:
        return InvalidParameterError(status, code, msg, url)
    return BinanceAPIError(status, code, msg, url)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value

"""Credentials out of anything shown: URLs with a password (with or without a scheme) get `***` for it.

Light on purpose (the standard library only): the CLI's error boundary uses it before anything heavy is
imported, and storage.engine.describe_url for what it cannot parse.
"""

from __future__ import annotations

import re

# user:password@ after a scheme (postgresql://u:p@h) or at the start of a word (u:p@h/db, a scheme-less URL)
_WITH_SCHEME = re.compile(r"(?P<lead>[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:)[^\s@'\"]+@", re.I)
_SCHEMELESS = re.compile(r"(?P<lead>(?<![\w/:@.+-])[^\s:/@'\"]+:)(?!//)[^\s@'\"/][^\s@'\"]*@")


def mask_credentials(text: str) -> str:
    """`text` with the password of every user:password@ it holds replaced by ***."""
    masked = _WITH_SCHEME.sub(lambda m: f"{m['lead']}***@", text)
    return _SCHEMELESS.sub(lambda m: f"{m['lead']}***@", masked)


def one_line(error: object, limit: int = 300) -> str:
    """An error as one line to show: its first line (a database error's later ones hold the statement and,
    on SQLite, row data), credentials masked, at most `limit` characters."""
    text = str(error).strip()
    return mask_credentials(" ".join(text.split("\n", 1)[0].split()))[:limit]

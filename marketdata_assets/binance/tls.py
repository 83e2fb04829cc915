"""One TLS context for every HTTP client of a process.

Why: each httpx.Client builds its own context by default, loading the CA bundle again (about 36 ms a client
here); the REST and archive clients of one command can share it. It is httpx's own default context, so
verification and SSL_CERT_FILE / SSL_CERT_DIR behave exactly as without it. A client of a plain-http
base (the local simulator) loads no CA bundle at all: nothing on its connections is encrypted.
"""

from __future__ import annotations

import ssl
from functools import lru_cache

import httpx


@lru_cache(maxsize=1)
def shared_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def tls_for(base_url: str) -> ssl.SSLContext | bool:
    """The `verify=` of an httpx.Client for `base_url`: the shared context for https, none for plain http
    (httpx would build and load one anyway: 40-60 ms of every start against the simulator)."""
    return shared_tls_context() if httpx.URL(base_url).scheme == "https" else False

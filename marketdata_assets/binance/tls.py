"""One TLS context for every HTTP client of a process.

Why: each httpx.Client builds its own context by default, loading the CA bundle again (about 36 ms a client
here); the REST and archive clients of one command can share it. It is httpx's own default context, so
verification and SSL_CERT_FILE / SSL_CERT_DIR behave exactly as without it.
"""

from __future__ import annotations

import ssl
from functools import lru_cache

import httpx


@lru_cache(maxsize=1)
def shared_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()

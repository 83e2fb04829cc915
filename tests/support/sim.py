"""Simulator fixtures and helpers (owner: marketdata_sim). Registered from conftest.py via `pytest_plugins`.

- `srv`: a fresh simulator with its clock at `WS_NOW`, for the WebSocket protocol and data tests.
- `clients`: a REST and an archive client on the session simulator, closed afterwards.
- `connect(url)`: a WebSocket client without read-side flow control.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websockets

WS_NOW = "2024-03-01T12:00:00Z"


def connect(url: str) -> websockets.asyncio.client.connect:
    """No read-side flow control: an unread backlog must not delay the close handshake (10 s timeout)."""
    return websockets.connect(url, max_queue=None)


@pytest.fixture
def srv() -> Iterator:
    from marketdata_sim.server import SimServer

    with SimServer(now=WS_NOW) as server:
        yield server


@pytest.fixture
def clients(sim_session):
    from marketdata_assets.binance.archive import ArchiveClient
    from marketdata_assets.binance.rest import BinanceRestClient

    rest = BinanceRestClient(sim_session.url)
    archive = ArchiveClient(sim_session.url)
    yield rest, archive
    rest.close()
    archive.close()

"""Where the real recorded Binance payloads live: `../shared/binance/samples` beside the checkout.

MARKETDATA_SAMPLES overrides it (e.g. when the checkout is not next to shared/).
"""

from __future__ import annotations

import os
from pathlib import Path

SAMPLES = Path(os.environ.get("MARKETDATA_SAMPLES") or Path(__file__).resolve().parents[3] / "shared/binance/samples")
if not SAMPLES.is_dir() and Path("/work/shared/binance/samples").is_dir():
    SAMPLES = Path("/work/shared/binance/samples")

"""The Dagster code location (thin): everything is built in `marketdata_assets.defs` from the environment."""

import dagster as dg

from marketdata_assets.defs import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()

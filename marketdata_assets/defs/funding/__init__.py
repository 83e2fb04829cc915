"""The `funding_rates` asset and its per-partition check."""

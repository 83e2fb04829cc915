"""The `agg_trades` asset and its per-partition id-continuity check."""

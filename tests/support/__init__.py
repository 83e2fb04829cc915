"""What the tests share: fixtures (registered in conftest.py) and helpers, one module per area.

db: database engines and schemas; defs: Dagster instances, resources, runs of sensor requests; datasets:
one dataset's partitions run in process, the repair flow; sim: the simulator's clients and WebSocket
helpers; streaming: databases a sidecar test may take away; market_rows, samples: data to load.
"""

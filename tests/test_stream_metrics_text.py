"""What /metrics prints for large counters: every digit (Prometheus computes rates from them)."""

from __future__ import annotations

from streaming.metrics import Metrics


def test_a_counter_past_a_million_is_printed_exactly():
    metrics = Metrics()
    metrics.rows_written.inc(2_520_012, "agg_trades")
    metrics.messages.inc(0.5, "trade")
    text = metrics.render()
    assert 'marketdata_stream_rows_written_total{table="agg_trades"} 2520012\n' in text
    assert 'marketdata_stream_messages_total{data_type="trade"} 0.5\n' in text

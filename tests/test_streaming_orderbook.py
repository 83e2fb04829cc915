"""Order book synchronisation (SPEC B.5) on the real recorded SUSHIUSDT sequence and its REST snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from streaming.messages import DepthUpdate, decode_frame
from streaming.orderbook import BookSync, LocalBook, Outcome, SyncState
from tests.support.samples import SAMPLES as SAMPLES_ROOT

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "binance" / "samples"
if not SAMPLES.exists():
    SAMPLES = SAMPLES_ROOT
SEQUENCE = SAMPLES / "ws" / "combined_depth_100ms_SUSHIUSDT_full_sequence_2021-07-22_cryptofeed.jsonl"
SNAPSHOT = SAMPLES / "rest" / "depth_SUSHIUSDT_limit1000_2021-07-22_cryptofeed.json"


@pytest.fixture(scope="module")
def events() -> list[DepthUpdate]:
    return [decode_frame(line).data for line in SEQUENCE.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def snapshot() -> dict:
    return json.loads(SNAPSHOT.read_bytes())


def _assert_uncrossed(sync: BookSync) -> None:
    bids, asks = sync.book.top(1)
    assert float(bids[0][0]) < float(asks[0][0]), (bids, asks)


def test_real_sequence_syncs_and_stays_uncrossed(events, snapshot):
    sync = BookSync("SUSHIUSDT")
    lid = snapshot["lastUpdateId"]
    # The stream is buffered from before the snapshot was taken (step 1); 5 events arrive first.
    for event in events[:5]:
        assert sync.feed(event) is Outcome.BUFFERED
    assert sync.apply_snapshot(lid, snapshot["bids"], snapshot["asks"]) is Outcome.APPLIED
    assert sync.state is SyncState.LIVE
    # events 0..2 end before lastUpdateId and are dropped; event 3 has U == lastUpdateId <= u.
    assert sync.applied == 2
    outcomes = [sync.feed(event) for event in events[5:]]
    assert set(outcomes) == {Outcome.APPLIED}
    assert sync.applied == len(events) - 3
    assert sync.last_update_id == events[-1].final_update_id
    assert sync.resyncs == 0
    _assert_uncrossed(sync)
    # Every level the last events set is in the book with its absolute quantity; zeros are gone.
    last = events[-1]
    for price, quantity in last.bids:
        if float(quantity) == 0:
            assert price not in sync.book.bids
        else:
            assert sync.book.bids[price] == quantity


def test_book_never_crosses_while_replaying(events, snapshot):
    sync = BookSync("SUSHIUSDT")
    for event in events[:4]:
        sync.feed(event)
    sync.apply_snapshot(snapshot["lastUpdateId"], snapshot["bids"], snapshot["asks"])
    for event in events[4:]:
        assert sync.feed(event) is Outcome.APPLIED
        _assert_uncrossed(sync)


def test_snapshot_newer_than_buffer_waits_for_bridging_event(events, snapshot):
    sync = BookSync("SUSHIUSDT")
    for event in events[:3]:  # all end before lastUpdateId
        sync.feed(event)
    assert sync.apply_snapshot(snapshot["lastUpdateId"], snapshot["bids"], snapshot["asks"]) is Outcome.APPLIED
    assert sync.state is SyncState.BRIDGING
    assert sync.feed(events[3]) is Outcome.APPLIED
    assert sync.state is SyncState.LIVE


def test_snapshot_older_than_buffer_asks_for_another(events, snapshot):
    sync = BookSync("SUSHIUSDT")
    for event in events[5:20]:
        sync.feed(event)
    # The real snapshot ends before events[5].U: the updates in between are unknown.
    outcome = sync.apply_snapshot(snapshot["lastUpdateId"], snapshot["bids"], snapshot["asks"])
    assert outcome is Outcome.NEED_SNAPSHOT
    assert sync.state is SyncState.WAITING
    assert len(sync.buffer) == 15  # nothing buffered was lost
    # A newer snapshot (taken at events[9].u, book contents irrelevant here) bridges.
    lid = events[9].final_update_id
    assert sync.apply_snapshot(lid, [["1", "1"]], [["2", "1"]]) is Outcome.APPLIED
    assert sync.state is SyncState.LIVE
    assert sync.last_update_id == events[19].final_update_id


def test_pu_break_drops_that_book_and_buffers(events, snapshot):
    sync = BookSync("SUSHIUSDT")
    other = BookSync("AKROUSDT")
    other.apply_snapshot(10, [["1", "1"]], [["2", "1"]])
    sync.feed(events[3])
    sync.apply_snapshot(snapshot["lastUpdateId"], snapshot["bids"], snapshot["asks"])
    for event in events[4:50]:
        sync.feed(event)
    # event 50 is lost: 51's pu points at it.
    assert sync.feed(events[51]) is Outcome.GAP
    assert sync.state is SyncState.WAITING and sync.resyncs == 1
    assert sync.book.bids == {} and list(sync.buffer) == [events[51]]
    assert other.state is SyncState.BRIDGING  # untouched
    # A duplicate of an applied event after resync goes to the buffer, then is dropped by the snapshot.
    for event in events[52:60]:
        assert sync.feed(event) is Outcome.BUFFERED
    assert sync.apply_snapshot(events[55].final_update_id, [["1", "1"]], [["2", "1"]]) is Outcome.APPLIED
    assert sync.live and sync.last_update_id == events[59].final_update_id


def test_duplicate_event_is_stale(events, snapshot):
    sync = BookSync("SUSHIUSDT")
    sync.feed(events[3])
    sync.apply_snapshot(snapshot["lastUpdateId"], snapshot["bids"], snapshot["asks"])
    sync.feed(events[4])
    before = dict(sync.book.bids)
    assert sync.feed(events[4]) is Outcome.STALE
    assert sync.book.bids == before


def test_zero_quantity_forms_remove_levels():
    book = LocalBook()
    book.load([["7.6110", "6"], ["7.6100", "2"]], [["7.6120", "3"]])
    book.apply([["7.6110", "0.000"], ["7.5000", "0"]], [["7.6120", "0E-8"]])
    assert book.bids == {"7.6100": "2"} and book.asks == {}


def test_top_is_sorted_numerically():
    book = LocalBook()
    book.load([["9.5", "1"], ["10.0", "2"], ["9.75", "3"]], [["10.5", "1"], ["11", "1"], ["10.25", "1"]])
    assert book.top(2) == ([("10.0", "2"), ("9.75", "3")], [("10.25", "1"), ("10.5", "1")])


def test_real_partial_and_diff_samples_decode():
    # The depth20 partial stream shares the diff shape (U/u/pu); both decode into DepthUpdate.
    for name in ("cryptomsgparser_l2_topk_linear_swap_L773.json", "cryptomsgparser_l2_event_linear_swap_L433.json"):
        frame = decode_frame((SAMPLES / "ws" / name).read_bytes())
        assert isinstance(frame.data, DepthUpdate)
        assert frame.data.prev_final_update_id < frame.data.first_update_id
        assert msgspec.json.encode(frame.data)  # round-trips

"""Aggregate-trade id continuity: every id of a symbol is stored exactly once, holes are fetched by id.

Why ids and not times: aggregate trade ids are consecutive per symbol (SPEC A.10), so a hole is exact
(ids last+1 .. next-1) and REST `fromId` fetches exactly those. A duplicate (reconnect or rotation
overlap, or a REST fill that got there first) is an id at or below the last one that is not in a hole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Seen(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    AFTER_HOLE = "after_hole"  # new, and ids before it are missing (see `TradeIds.holes`)
    FILLS_HOLE = "fills_hole"  # an id inside a known hole (arrived from REST)


@dataclass
class TradeIds:
    """Tracks the highest id seen and the holes below it, for one symbol."""

    symbol: str
    last_id: int | None = None
    holes: list[list[int]] = field(default_factory=list)  # [first, last] inclusive, ascending
    first_id: int | None = None  # the first id this run saw

    def see(self, agg_id: int) -> Seen:
        if self.last_id is None:
            self.last_id = self.first_id = agg_id
            return Seen.NEW
        if agg_id == self.last_id + 1:
            self.last_id = agg_id
            return Seen.NEW
        if agg_id > self.last_id + 1:
            self.holes.append([self.last_id + 1, agg_id - 1])
            self.last_id = agg_id
            return Seen.AFTER_HOLE
        return Seen.FILLS_HOLE if self._take_from_holes(agg_id) else Seen.DUPLICATE

    def resume_from(self, stored_last_id: int) -> None:
        """Continue after the last id a previous run stored: before any trade arrived, the next live one
        opens the hole; after some arrived (the store was away at start), the ids between are a hole now."""
        if self.last_id is None:
            self.last_id = stored_last_id
        elif self.first_id is not None and stored_last_id + 1 <= self.first_id - 1:
            self.holes.insert(0, [stored_last_id + 1, self.first_id - 1])

    def _take_from_holes(self, agg_id: int) -> bool:
        for index, (first, last) in enumerate(self.holes):
            if first <= agg_id <= last:
                pieces = [p for p in ([first, agg_id - 1], [agg_id + 1, last]) if p[0] <= p[1]]
                self.holes[index:index + 1] = pieces
                return True
        return False

    def missing(self) -> int:
        return sum(last - first + 1 for first, last in self.holes)

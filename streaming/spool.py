"""Append-only disk spool for batches the database could not take (it was down).

Why files and not memory: an outage of minutes at thousands of messages per second would outgrow any
sane memory bound, and a crash during the outage must not lose what was received. Each batch is one
JSON line appended to the newest segment (flushed, then fsync'd every `fsync_every` lines); replay reads
segments oldest first and deletes a segment only after every batch in it was committed. A torn last line
(a crash mid-write) is skipped. Writes are idempotent, so replaying a batch twice is harmless.

A full disk (ENOSPC, EDQUOT) or the spool's own size cap (`max_bytes`) refuses an append with `SpoolFull`,
after cutting the half-written line off again: the spool stays readable and the caller keeps the batch.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

Batch = dict[str, list[tuple[Any, ...]]]
SPOOL_ROOT_NAME = "marketdata-stream-spool"
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class SpoolFull(Exception):
    """The spool cannot take this batch: its disk is full or it reached its size cap."""


def default_spool_dir(database_url: str, symbols: Iterable[str], data_types: Iterable[str], interval: str,
                      root: str | Path | None = None) -> Path:
    """The spool of one sidecar identity (database, symbols, streams, interval) under $TMPDIR: two sidecars on
    one host never replay each other's batches into the wrong database, and a restarted sidecar finds its
    own. The password is left out of the identity (a rotated password keeps the spool)."""
    import hashlib
    import tempfile

    from marketdata_assets.redact import mask_credentials

    identity = "|".join([mask_credentials(database_url), ",".join(sorted(symbols)), ",".join(sorted(data_types)),
                         interval])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(root or tempfile.gettempdir()) / SPOOL_ROOT_NAME / digest


class Spool:
    def __init__(self, directory: str | Path, *, segment_bytes: int = 64 * 1024 * 1024,
                 fsync_every: int = 1, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.fsync_every = fsync_every
        self._handle: Any = None
        self._path: Path | None = None
        self._unsynced = 0

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("spool-*.jsonl"))

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments() if p.exists())

    def __bool__(self) -> bool:
        return any(p.stat().st_size for p in self.segments())

    def _next_path(self) -> Path:
        existing = self.segments()
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 1
        return self.directory / f"spool-{number:08d}.jsonl"

    def append(self, batch: Batch) -> None:
        """Append one batch durably, or raise SpoolFull with the spool as it was."""
        line = orjson.dumps({kind: rows for kind, rows in batch.items() if rows}) + b"\n"
        if self.max_bytes is not None and self.size_bytes() + len(line) > self.max_bytes:
            raise SpoolFull(f"spool {self.directory} reached its cap of {self.max_bytes} bytes")
        try:
            if self._handle is None or (self._path is not None
                                        and self._path.stat().st_size > self.segment_bytes):
                self._close_segment()
                self._path = self._next_path()
                self._handle = open(self._path, "ab")  # noqa: SIM115 - kept open across appends
            start = self._handle.tell()
        except OSError as exc:
            self._abandon_segment()
            raise self._full_or(exc) from exc
        try:
            self._handle.write(line)
            self._handle.flush()
            self._unsynced += 1
            if self._unsynced >= self.fsync_every:
                os.fsync(self._handle.fileno())
                self._unsynced = 0
        except OSError as exc:
            self._cut_back(start)
            raise self._full_or(exc) from exc

    def _full_or(self, exc: OSError) -> Exception:
        if exc.errno in DISK_FULL:
            return SpoolFull(f"spool {self.directory}: {os.strerror(exc.errno)}")
        return exc

    def _cut_back(self, size: int) -> None:
        """Drop a half-written line (buffered bytes included): the next append starts on a clean line."""
        handle, path = self._handle, self._path
        self._handle = None
        self._path = None
        self._unsynced = 0
        with contextlib.suppress(OSError):
            handle.close()  # may try to write the buffer again and fail: the truncate below undoes it
        if path is not None:
            with contextlib.suppress(OSError):
                os.truncate(path, size)
                if size == 0:
                    path.unlink()

    def _abandon_segment(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
        if self._path is not None and self._path.exists() and self._path.stat().st_size == 0:
            with contextlib.suppress(OSError):
                self._path.unlink()
        self._handle = None
        self._path = None

    def _close_segment(self) -> None:
        """Flush and close the segment being appended to (the next append opens a new one)."""
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        self._handle = None
        self._path = None
        self._unsynced = 0

    def close(self) -> None:
        self._close_segment()

    @staticmethod
    def _read(path: Path) -> Iterator[Batch]:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):
                    log.warning("spool %s line %d is torn (crash while writing): skipped", path.name, number)
                    continue
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("spool %s line %d is not JSON: skipped", path.name, number)
                    continue
                yield {kind: [tuple(row) for row in rows] for kind, rows in data.items()}

    def replay(self, write: Callable[[Batch], object]) -> int:
        """Hand every spooled batch to `write`, oldest first; returns batches replayed.

        Stops at the first exception from `write` (the database went down again) and re-raises it; the
        segment being replayed stays, so nothing is lost.
        """
        self._close_segment()  # new appends go to a fresh segment while we read the old ones
        replayed = 0
        for path in self.segments():
            for batch in self._read(path):
                write(batch)
                replayed += 1
            path.unlink()
        return replayed

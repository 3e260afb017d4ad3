"""The streaming loop of the extraction engine: items → tile chunks → model batches, in order.

An item (a slide) is first *planned* on the executor (where its tiles are), then read in
*chunks* of tiles, also on the executor. The functions that plan and read come from a
``TileReader`` that the data set provides; they must be picklable top-level functions, since
the executor may run them in other processes or on other hosts. The model never runs on the
executor: chunks are cut into batches here, per item from its first kept tile, so the
features do not depend on the executor, the number of workers, the chunk size or the devices.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from histobench.benchmark.devices import DeviceEmbedder, InProcessEmbedder, Pending
from histobench.plugins.specs import Item

Embedder = InProcessEmbedder | DeviceEmbedder
# A function to run on the executor and its (picklable) arguments.
WorkerCall = tuple[Callable[..., Any], tuple[Any, ...]]


@dataclass
class TilePlan:
    """Where an item's tiles are, as its reader's plan function returns it."""

    coords: np.ndarray  # (N, 2) positions, stored beside the features as ``coords``
    attrs: dict[str, Any] = field(default_factory=dict)  # recorded in the item's HDF5 file
    outcome: dict[str, Any] = field(default_factory=dict)  # reported per computed item
    context: Any = None  # what the reader's chunk function needs (e.g. a tile geometry)


@dataclass
class TileChunk:
    """Tiles read for a span of a plan, as its reader's chunk function returns them."""

    coords: np.ndarray  # (M, 2) of the tiles kept
    tiles: np.ndarray  # (M, H, W, 3) uint8, one buffer (one copy across processes)
    flagged: int = 0  # tiles with a problem the reader counts (kept or dropped by its policy)


@dataclass
class ItemJob:
    """One item to compute: where its file goes and what identifies its content."""

    pos: int  # index into the items given
    item: Item
    out_path: Path
    key: str  # a finished file with this key is reused instead of recomputed
    attrs: dict[str, Any]  # recorded in the file
    context: Any = None  # per-item settings the reader needs (e.g. a slide's tiling)


class TileReader(Protocol):
    """How the engine reads one kind of item. The data set that owns the items provides it."""

    # Exceptions meaning "this item is bad": it is recorded as failed and the run goes on.
    failures: tuple[type[BaseException], ...]
    # What ``TileChunk.flagged`` counts, as named in outcomes and files (e.g. "stain_failures").
    flagged_label: str

    def plan(self, job: ItemJob) -> WorkerCall:
        """The call that returns the item's ``TilePlan``."""
        ...

    def chunk(self, job: ItemJob, plan: TilePlan, start: int, stop: int) -> WorkerCall:
        """The call that returns the ``TileChunk`` of ``plan.coords[start:stop]``."""
        ...

    def no_tiles(self, job: ItemJob, plan: TilePlan) -> str:
        """Why an item whose plan holds no tiles failed (one line)."""
        ...

    def none_kept(self, job: ItemJob, flagged: int) -> str:
        """Why an item failed when its reader dropped every tile (one line)."""
        ...


@dataclass
class ItemState:
    """One item on its way through the loop; yielded once all its chunks are in."""

    job: ItemJob
    plan: TilePlan | None
    n_chunks: int
    started: float
    buffer: list[np.ndarray] = field(default_factory=list)  # HWC uint8 tiles not yet embedded
    features: list[Pending] = field(default_factory=list)  # per batch, in order
    coords: list[np.ndarray] = field(default_factory=list)
    flagged: int = 0
    chunks_done: int = 0
    failed: str | None = None

    @classmethod
    def failure(cls, job: ItemJob, reason: str) -> ItemState:
        return cls(job, None, 0, time.perf_counter(), failed=reason)


def spans(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _events(
    pool: Any, todo: Sequence[ItemJob], reader: TileReader, chunk_tiles: int, lookahead: int = 2
) -> Iterator[tuple[Any, ...]]:
    """("failed", job, reason) | ("plan", job, plan, n_chunks) | ("chunk", job, start, future).

    Plans are submitted ``lookahead`` items ahead, so an item's plan is ready when its turn
    comes; chunk reads are submitted as the consumer pulls them (see ``_Window``).
    """
    plans: dict[int, Any] = {}

    def submit_plan(j: int) -> None:
        if j < len(todo) and j not in plans:
            fn, args = reader.plan(todo[j])
            plans[j] = pool.submit(fn, *args)

    for j in range(min(lookahead, len(todo))):
        submit_plan(j)
    for j, job in enumerate(todo):
        submit_plan(j + lookahead)
        try:
            plan: TilePlan = plans.pop(j).result()
        except reader.failures as exc:
            yield ("failed", job, str(exc) or type(exc).__name__)
            continue
        if len(plan.coords) == 0:
            yield ("failed", job, reader.no_tiles(job, plan))
            continue
        chunk_spans = spans(len(plan.coords), chunk_tiles)
        yield ("plan", job, plan, len(chunk_spans))
        for start, stop in chunk_spans:
            fn, args = reader.chunk(job, plan, start, stop)
            yield ("chunk", job, start, pool.submit(fn, *args))


class _Window:
    """Pulls events ahead of the consumer so that ``size`` chunk reads are in flight,
    across item boundaries."""

    def __init__(self, events: Iterator[tuple[Any, ...]], size: int) -> None:
        self.events = events
        self.size = size
        self.queue: deque[tuple[Any, ...]] = deque()
        self.in_flight = 0
        self.exhausted = False

    def pop(self) -> tuple[Any, ...] | None:
        while not self.exhausted and self.in_flight < self.size:
            try:
                event = next(self.events)
            except StopIteration:
                self.exhausted = True
                break
            self.queue.append(event)
            self.in_flight += event[0] == "chunk"
        if not self.queue:
            return None
        event = self.queue.popleft()
        self.in_flight -= event[0] == "chunk"
        return event


def _drain(embedder: Embedder, state: ItemState, final: bool) -> None:
    """Embed the item's buffered tiles in full batches (and the remainder if final)."""
    while len(state.buffer) >= embedder.batch_size or (final and state.buffer):
        take = min(embedder.batch_size, len(state.buffer))
        batch, state.buffer = state.buffer[:take], state.buffer[take:]
        state.features.append(embedder.submit(batch))


def _take_chunk(state: ItemState, future: Any, reader: TileReader, embedder: Embedder) -> None:
    """Add one chunk's tiles to the item (a failed read fails the item, the rest is drained)."""
    state.chunks_done += 1
    try:
        chunk: TileChunk = future.result()
    except reader.failures as exc:
        if state.failed is None:
            state.failed = str(exc) or type(exc).__name__
        return
    if state.failed is not None:
        return
    state.flagged += chunk.flagged
    state.buffer.extend(chunk.tiles)
    state.coords.append(chunk.coords)
    _drain(embedder, state, final=False)


def _close_item(state: ItemState, reader: TileReader, embedder: Embedder) -> None:
    if state.failed is None:
        _drain(embedder, state, final=True)
        if not state.features:
            state.failed = reader.none_kept(state.job, state.flagged)
    state.buffer = []


def stream_items(
    pool: Any,
    todo: Sequence[ItemJob],
    reader: TileReader,
    embedder: Embedder,
    chunk_tiles: int,
) -> Iterator[ItemState]:
    """Yield each item's final state, in order, while keeping the executor's workers busy."""
    window = _Window(
        _events(pool, todo, reader, chunk_tiles),
        size=max(2, 2 * int(getattr(pool, "workers", 1) or 1) + 1),
    )
    state: ItemState | None = None
    while (event := window.pop()) is not None:
        kind, job = event[0], event[1]
        if kind == "failed":
            yield ItemState.failure(job, event[2])
        elif kind == "plan":
            state = ItemState(job, event[2], event[3], time.perf_counter())
        else:
            assert state is not None and state.job is job
            _take_chunk(state, event[3], reader, embedder)
            if state.chunks_done == state.n_chunks:
                _close_item(state, reader, embedder)
                yield state
                state = None

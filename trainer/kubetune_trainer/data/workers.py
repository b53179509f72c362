"""Encoding on every core `prepare` is given.

Rendering and masking are Python; tokenizing is Rust. Conversations for a fast tokenizer
(`Encoder`, `tokenize.plain_backend`) are encoded in one thread per core, each with a twin of
the encoder (`Encoder.for_thread`): the tokenizer's `encode_batch` lets go of the GIL, so one
thread tokenizes while another renders, with no process to fork and no results to copy back.
Other encoders (preference pairs and prompts, which tokenize a text or two at a time, or a slow
tokenizer) send batches to one worker process per core (forked: each starts with the parent's
encoder, its tokenizer and its caches). Either way the batches come back in order, and the
statistics each worker counts are added to the parent encoder's, so the report is the same as
from one worker.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

from kubetune_trainer.data.tokenize import Encoder, Stats, plain_backend


class BatchEncoder(Protocol):
    stats: Stats

    def encode_batch(self, batch: list[Any]) -> list[Any]: ...


_encoder: BatchEncoder | None = None  # the forked workers' encoder
BATCH = 512  # the most conversations in one batch
# Threads take a batch in pieces of at most this many: one renders while another tokenizes.
PIECE = 128
T = TypeVar("T")


def cores() -> int:
    """The cores this process may use: its CPU set, capped by the container's CPU limit (the
    cgroup's quota), so a prepare container limited to 4 CPUs on a 128-core node starts 4
    workers, not 128 (each holds a tokenizer)."""
    count = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_limit()
    return max(1, min(count, math.ceil(quota))) if quota else count


def _cgroup_cpu_limit() -> float | None:
    """CPUs the cgroup may use (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), None when unlimited."""
    v2, v1 = Path("/sys/fs/cgroup/cpu.max"), Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if v1.exists():
            quota_us = int(v1.read_text())
            period_us = int((v1.parent / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


def split(items: list[T], workers: int, most: int = BATCH, least: int = 64) -> list[list[T]]:
    """`items` in order, in batches of at most `most`, as many as a multiple of `workers` and
    of even sizes, so every worker gets work: a dataset of 300 on 2 cores is 2 batches of 150,
    not one of 300 on one core and an idle one. Batches keep at least `least` items where there
    are that many (a worker process is not worth starting for a handful)."""
    if not items:
        return []
    count = math.ceil(math.ceil(len(items) / most) / workers) * workers
    count = max(1, min(count, len(items) // least))
    size = math.ceil(len(items) / count)
    return [items[start : start + size] for start in range(0, len(items), size)]


def add_stats(total: Stats, part: Stats) -> None:
    for field in fields(Stats):
        if field.name == "roles":
            for role, count in part.roles.items():
                total.roles[role] = total.roles.get(role, 0) + count
        else:
            setattr(total, field.name, getattr(total, field.name) + getattr(part, field.name))


def _start_worker() -> None:
    # one process per core: the tokenizer's own threads would only contend with the others
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _encode(batch: list[Any]) -> tuple[list[Any], Stats]:
    assert _encoder is not None
    _encoder.stats = Stats()
    return _encoder.encode_batch(batch), _encoder.stats


def encode_batches(
    encoder: BatchEncoder, batches: Iterable[list[Any]], workers: int
) -> Iterator[list[Any]]:
    """`encoder.encode_batch` of each batch, in order, on `workers` threads or processes (in
    this thread when 1); the statistics are counted in `encoder.stats` either way."""
    if workers <= 1:
        yield from (encoder.encode_batch(batch) for batch in batches)
        return
    if isinstance(encoder, Encoder) and plain_backend(encoder.tokenizer) is not None:
        yield from _in_threads(encoder, batches, workers)
        return
    import multiprocessing

    global _encoder
    _encoder = encoder
    with multiprocessing.get_context("fork").Pool(workers, initializer=_start_worker) as pool:
        for results, stats in pool.imap(_encode, batches):
            add_stats(encoder.stats, stats)
            yield results


def _in_threads(
    encoder: Encoder, batches: Iterable[list[Any]], workers: int
) -> Iterator[list[Any]]:
    """`encode_batches` on `workers` threads, up to `workers` batches ahead of the one yielded."""
    from concurrent.futures import Future, ThreadPoolExecutor

    def run(twin: Encoder, piece: list[Any]) -> tuple[list[Any], Stats]:
        return twin.encode_batch(piece), twin.stats

    def collect(pieces: list[Future[tuple[list[Any], Stats]]]) -> list[Any]:
        results = []
        for future in pieces:
            part, stats = future.result()
            add_stats(encoder.stats, stats)
            results.extend(part)
        return results

    parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one Rust thread per worker thread
    try:
        with ThreadPoolExecutor(workers) as pool:
            pending: deque[list[Future[tuple[list[Any], Stats]]]] = deque()
            for batch in batches:
                pieces = [batch[i : i + PIECE] for i in range(0, len(batch), PIECE)]
                # twins made here, in order: the first finds the markers the others share
                pending.append([pool.submit(run, encoder.for_thread(), p) for p in pieces])
                if len(pending) > workers:
                    yield collect(pending.popleft())
            while pending:
                yield collect(pending.popleft())
    finally:
        if parallelism is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = parallelism

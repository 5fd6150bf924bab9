"""Where chunks run: in this process, or on a Dask cluster (an address, or a ``LocalCluster``
of two single-threaded worker processes).

On Dask the bars are scattered to every worker once; each task runs one chunk in its worker
(:func:`simulator.research.chunk.run_chunk`) and sends back only its metrics frame. Chunks come
back in completion order; the runner puts rows back in combination order, so a distributed
sweep equals the in-process one exactly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import pandas as pd

from simulator.research.chunk import Chunk, Job, run_chunk
from tradetower.domain.bars import MarketData
from tradetower.errors import ConfigError

SCHEDULER_ENV = "TRADETOWER_DASK_SCHEDULER"
LOCAL = "local"
"""``scheduler=LOCAL`` starts a ``LocalCluster`` for the sweep and closes it afterwards."""
LOCAL_WORKERS = 2
CONNECT_TIMEOUT = "10s"


class Executor(Protocol):
    parallelism: int
    """How many chunks it runs at once (batched Optuna splits each batch into this many)."""

    def run(self, job: Job, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, pd.DataFrame]]:
        """Each chunk with its result frame, in completion order."""
        ...


class InProcess:
    """Chunks one after the other here; each chunk's ``prange`` uses every core."""

    parallelism = 1

    def __init__(self, market: MarketData) -> None:
        self.market = market

    def run(self, job: Job, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, pd.DataFrame]]:
        for chunk in chunks:
            yield chunk, run_chunk(job, chunk, self.market)


class OnDask:
    """Chunks as Dask tasks; the bars scattered to every worker once."""

    def __init__(self, client: Any, market: MarketData) -> None:
        self.client = client
        self.bars = client.scatter(market, broadcast=True, hash=False)
        workers = client.scheduler_info().get("workers", {})
        self.parallelism = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def run(self, job: Job, chunks: Sequence[Chunk]) -> Iterator[tuple[Chunk, pd.DataFrame]]:
        from distributed import as_completed

        futures = {
            self.client.submit(run_chunk, job, chunk, self.bars, pure=False): chunk
            for chunk in chunks
        }
        try:
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.release()


def resolve_scheduler(scheduler: str | None) -> str | None:
    """The scheduler to use: ``scheduler``, else ``$TRADETOWER_DASK_SCHEDULER``; ``None`` (in
    this process) when that is empty (``scheduler=""`` forces this process)."""
    chosen = scheduler if scheduler is not None else os.environ.get(SCHEDULER_ENV, "")
    return chosen.strip() or None


@contextmanager
def executor(market: MarketData, scheduler: str | None) -> Iterator[Executor]:
    """An executor for ``scheduler`` (see :func:`resolve_scheduler`), closed on exit."""
    address = resolve_scheduler(scheduler)
    if address is None:
        yield InProcess(market)
        return
    from distributed import Client, LocalCluster

    if address == LOCAL:
        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=LOCAL_WORKERS,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # no dashboard; its HTTP endpoints on a free loopback port, never :8787
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0", "dashboard": False},
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            yield OnDask(client, market)
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            "scheduler", f"cannot reach the Dask scheduler at {address}: {exc}"
        ) from None
    with client:
        yield OnDask(client, market)

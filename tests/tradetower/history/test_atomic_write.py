"""A writer killed with SIGKILL mid-write leaves the old file or the new one, never a torn one,
and the catalog still reads."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from memory_source import DAY, T0, MemorySource, synthetic_bars

from tradetower.history.cache import HistoryCache
from tradetower.history.files import decode
from tradetower.history.layout import SeriesKey
from tradetower.history.store import LocalStore

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
SERIES = SeriesKey("memex", "crypto", "BTC-USD", "1m")
JAN_FILE = SERIES.file_path("2024-01")

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def start(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == word, f"writer said {line!r} (exit {proc.poll()})"


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


# A writer that fetches twice; in the second fetch it freezes inside the write of the file
# named by argv[2] (after the temporary file is written and fsynced, before the rename), so
# the kill lands exactly mid-write.
FREEZING_WRITER = """
    import os, sys, time
    from memory_source import DAY, T0, MemorySource, synthetic_bars
    from tradetower.history.cache import HistoryCache
    from tradetower.history.store import LocalStore

    root, freeze_in = sys.argv[1], sys.argv[2]
    bars = synthetic_bars(T0, T0 + 20 * DAY)
    cache = HistoryCache(LocalStore(root))
    cache.fetch(MemorySource(bars), "BTC-USD", "1m", T0, T0 + 10 * DAY, progress=False)
    real_fsync = os.fsync

    def freezing_fsync(fd):
        real_fsync(fd)
        if freeze_in in os.readlink(f"/proc/self/fd/{fd}"):
            print("FROZEN", flush=True)
            time.sleep(60)

    os.fsync = freezing_fsync
    print("READY", flush=True)
    cache.fetch(MemorySource(bars), "BTC-USD", "1m", T0, T0 + 20 * DAY, progress=False)
"""


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to spot the file")
@pytest.mark.parametrize("freeze_in", ["2024-01.parquet.", "_catalog.json."])
def test_a_writer_killed_mid_write_leaves_the_old_file_and_a_readable_catalog(
    tmp_path: Path, freeze_in: str
) -> None:
    bars = synthetic_bars(T0, T0 + 20 * DAY)
    proc = start(FREEZING_WRITER, str(tmp_path), freeze_in)
    try:
        wait_for(proc, "READY")
        store = LocalStore(tmp_path)
        before = store.get(JAN_FILE)
        assert before is not None
        wait_for(proc, "FROZEN")
    finally:
        kill(proc)

    leftovers = [p.name for p in (tmp_path / SERIES.folder).iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1  # the half-done write, invisible to readers
    assert store.list(SERIES.folder) == [JAN_FILE, SERIES.catalog_path]
    after = store.get(JAN_FILE)
    assert after is not None
    if freeze_in.startswith("2024-01"):
        assert after == before  # the rename never happened: the old complete file
    pd.testing.assert_frame_equal(
        decode(after.data, JAN_FILE).iloc[: 10 * 1440], bars.iloc[: 10 * 1440]
    )
    cache = HistoryCache(LocalStore(tmp_path))
    entry = cache.catalog(SERIES)
    assert entry is not None and entry.ranges[0] == (T0, T0 + 10 * DAY)

    source = MemorySource(bars)  # the next run completes the fetch
    cache.fetch(source, "BTC-USD", "1m", T0, T0 + 20 * DAY, progress=False)
    loaded = cache.load("memex", "BTC-USD", "1m", T0, T0 + 20 * DAY, offline=True)
    assert loaded["close"].tolist() == bars["close"].tolist()


# A writer that rewrites one file over and over, alternating two versions of a month.
LOOPING_WRITER = """
    import sys
    from memory_source import DAY, T0, synthetic_bars
    from tradetower.history import files
    from tradetower.history.store import LocalStore

    store = LocalStore(sys.argv[1])
    versions = [files.encode(synthetic_bars(T0, T0 + 25 * DAY, seed=s)) for s in (1, 2)]
    store.put("m.parquet", versions[0])
    print("STARTED", flush=True)
    i = 0
    while True:
        i += 1
        store.put("m.parquet", versions[i % 2])
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_writer_killed_at_a_random_moment_never_leaves_a_torn_file(
    tmp_path: Path, seed: int
) -> None:
    proc = start(LOOPING_WRITER, str(tmp_path))
    try:
        wait_for(proc, "STARTED")
        with contextlib.suppress(subprocess.TimeoutExpired):  # it never exits on its own
            proc.wait(timeout=random.Random(seed).uniform(0.05, 0.4))
    finally:
        kill(proc)
    found = LocalStore(tmp_path).get("m.parquet")
    assert found is not None
    closes = decode(found.data, "m.parquet")["close"].tolist()
    versions = [synthetic_bars(T0, T0 + 25 * DAY, seed=s)["close"].tolist() for s in (1, 2)]
    assert closes in versions

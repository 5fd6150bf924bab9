"""The local-folder store: ETags, conditional writes, listing, and which store is opened."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pandas as pd
import pytest
from memory_source import DAY, MINUTE, T0, MemorySource, synthetic_bars

from tradetower.history.cache import HistoryCache
from tradetower.history.files import decode
from tradetower.history.layout import SeriesKey
from tradetower.history.series import ConcurrentWriteError, write_rows
from tradetower.history.store import (
    LocalStore,
    PreconditionFailedError,
    StoredObject,
    StoreError,
    open_store,
)

KEY = SeriesKey("memex", "crypto", "BTC-USD", "1m")


def test_put_get_and_etags_change_on_every_write(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.get("a/b.bin") is None
    first = store.put("a/b.bin", b"one")
    assert store.get("a/b.bin") == StoredObject(b"one", first)
    second = store.put("a/b.bin", b"two")
    assert second != first
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"two"


def test_conditional_writes_refuse_a_stale_etag_or_an_existing_object(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    etag = store.put("k", b"v1", if_none_match=True)
    with pytest.raises(PreconditionFailedError, match="k: already exists"):
        store.put("k", b"v2", if_none_match=True)
    newer = store.put("k", b"v2", if_match=etag)
    with pytest.raises(PreconditionFailedError, match="k: changed since it was read"):
        store.put("k", b"v3", if_match=etag)
    assert store.get("k") == StoredObject(b"v2", newer)


def test_list_is_sorted_by_prefix_and_skips_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for key in ("x/2.parquet", "x/1.parquet", "y/1.parquet"):
        store.put(key, b"-")
    (tmp_path / "x" / ".1.parquet.123.abcd.tmp").write_bytes(b"half")
    assert store.list("x/") == ["x/1.parquet", "x/2.parquet"]
    assert store.list("x/1") == ["x/1.parquet"]
    assert store.list("z/") == []
    assert store.list() == ["x/1.parquet", "x/2.parquet", "y/1.parquet"]
    store.delete("x/1.parquet")
    store.delete("x/1.parquet")  # absent is fine
    assert store.list("x/") == ["x/2.parquet"]
    assert LocalStore(tmp_path / "nothing").list() == []


def test_keys_cannot_escape_the_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=re.escape("bad cache key '../x'")):
        LocalStore(tmp_path).put("../x", b"-")


def test_open_store_picks_the_flag_then_blob_env_then_cache_dir_env_then_user_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TRADETOWER_BLOB_URL", "TRADETOWER_BLOB_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADETOWER_CACHE_DIR", str(tmp_path / "env"))
    flag = open_store(tmp_path / "flag")
    assert isinstance(flag, LocalStore) and flag.root == tmp_path / "flag"
    env = open_store()
    assert isinstance(env, LocalStore) and env.root == tmp_path / "env"
    monkeypatch.delenv("TRADETOWER_CACHE_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default = open_store()
    assert isinstance(default, LocalStore)
    assert default.root == tmp_path / "xdg" / "tradetower" / "history"


def test_a_bad_blob_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADETOWER_BLOB_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("TRADETOWER_BLOB_URL", "not a url")
    with pytest.raises(StoreError, match="TRADETOWER_BLOB_URL is not usable"):
        open_store()


class RacingStore(LocalStore):
    """Makes every writer read before any writes: each then holds a stale ETag."""

    def __init__(self, root: Path, writers: int) -> None:
        super().__init__(root)
        self.barrier = threading.Barrier(writers)
        self.first_read = threading.local()
        self.lost = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> StoredObject | None:
        found = super().get(key)
        if key.endswith(".parquet") and not getattr(self.first_read, "done", False):
            self.first_read.done = True
            self.barrier.wait(timeout=10)
        return found

    def put(self, key: str, data: bytes, **conditions: object) -> str:
        try:
            return super().put(key, data, **conditions)  # type: ignore[arg-type]
        except PreconditionFailedError:
            with self.lock:
                self.lost += 1
            raise


def concurrent_writers(store: LocalStore, parts: list[pd.DataFrame]) -> list[BaseException]:
    errors: list[BaseException] = []

    def write(part: pd.DataFrame) -> None:
        try:
            write_rows(store, KEY, part)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return errors


def test_concurrent_writers_to_one_month_merge_and_neither_is_lost(tmp_path: Path) -> None:
    bars = synthetic_bars(T0, T0 + 2 * DAY)
    halves = [bars.iloc[::2].reset_index(drop=True), bars.iloc[1::2].reset_index(drop=True)]
    store = RacingStore(tmp_path, writers=2)
    assert concurrent_writers(store, halves) == []
    assert store.lost == 1  # one won the race, the other re-read and merged
    found = LocalStore(tmp_path).get(KEY.file_path("2024-01"))
    assert found is not None
    pd.testing.assert_frame_equal(decode(found.data, "x"), bars)


def test_a_writer_that_always_loses_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tradetower.history.series.backoff", lambda attempt: None)

    class AlwaysStale(LocalStore):
        def put(self, key: str, data: bytes, **conditions: object) -> str:
            raise PreconditionFailedError(f"{key}: changed since it was read")

    with pytest.raises(
        ConcurrentWriteError, match=re.escape("2024-01.parquet: other writers kept changing")
    ):
        write_rows(AlwaysStale(tmp_path), KEY, synthetic_bars(T0, T0 + 10 * MINUTE))


def test_fetching_the_same_series_from_two_threads_gives_one_complete_series(
    tmp_path: Path,
) -> None:
    bars = synthetic_bars(T0, T0 + 3 * DAY)
    cache = HistoryCache(LocalStore(tmp_path))
    errors: list[BaseException] = []

    def fetch(a: int, b: int) -> None:
        try:
            cache.fetch(MemorySource(bars), "BTC-USD", "1m", a, b, progress=False)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    spans = [(T0, T0 + 2 * DAY), (T0 + DAY, T0 + 3 * DAY)]
    threads = [threading.Thread(target=fetch, args=s) for s in spans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    entry = cache.catalog(KEY)
    assert entry is not None
    assert (entry.ranges, entry.total_candles) == ([(T0, T0 + 3 * DAY)], len(bars))
    loaded = cache.load("memex", "BTC-USD", "1m", T0, T0 + 3 * DAY, offline=True)
    assert loaded.index.is_unique and len(loaded) == len(bars)

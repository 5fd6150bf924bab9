"""The Azure Blob store and the cache on it, against Azurite started for this module."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from azurite import ACCOUNT, KEY, azurite
from memory_source import DAY, T0, MemorySource, synthetic_bars

from tradetower.history.cache import HistoryCache
from tradetower.history.files import decode
from tradetower.history.layout import SeriesKey
from tradetower.history.series import write_rows
from tradetower.history.store import (
    AzureBlobStore,
    PreconditionFailedError,
    StoredObject,
    open_store,
)

FEB = 1_706_745_600_000
SERIES = SeriesKey("memex", "crypto", "BTC-USD", "1m")


@pytest.fixture(scope="module")
def connection() -> Iterator[str]:
    with azurite() as conn:
        yield conn


@pytest.fixture
def store(connection: str) -> AzureBlobStore:
    service = BlobServiceClient.from_connection_string(connection)
    container = service.get_container_client(f"t{uuid.uuid4().hex[:12]}")
    container.create_container()
    return AzureBlobStore(container)


def test_put_get_conditions_list_delete(store: AzureBlobStore) -> None:
    assert store.get("a/b.bin") is None
    etag = store.put("a/b.bin", b"one", if_none_match=True)
    assert store.get("a/b.bin") == StoredObject(b"one", etag)
    with pytest.raises(
        PreconditionFailedError, match=re.escape("a/b.bin: changed since it was read")
    ):
        store.put("a/b.bin", b"two", if_none_match=True)
    newer = store.put("a/b.bin", b"two", if_match=etag)
    with pytest.raises(PreconditionFailedError):
        store.put("a/b.bin", b"three", if_match=etag)
    assert store.get("a/b.bin") == StoredObject(b"two", newer)
    store.put("a/a.bin", b"-")
    store.put("c.bin", b"-")
    assert store.list("a/") == ["a/a.bin", "a/b.bin"]
    store.delete("a/a.bin")
    store.delete("a/a.bin")
    assert store.list() == ["a/b.bin", "c.bin"]


def test_open_store_reads_the_connection_string_and_creates_the_container(
    connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"c{uuid.uuid4().hex[:12]}"
    monkeypatch.delenv("TRADETOWER_BLOB_URL", raising=False)
    monkeypatch.setenv("TRADETOWER_BLOB_CONNECTION_STRING", connection)
    monkeypatch.setenv("TRADETOWER_BLOB_CONTAINER", name)
    opened = open_store()
    assert isinstance(opened, AzureBlobStore)
    opened.put("x", b"1")
    service = BlobServiceClient.from_connection_string(connection)
    assert service.get_container_client(name).download_blob("x").readall() == b"1"


def test_open_store_reads_a_container_url_with_sas(
    connection: str, store: AzureBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sas = generate_container_sas(
        ACCOUNT,
        store.container.container_name,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, write=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    monkeypatch.setenv("TRADETOWER_BLOB_URL", f"{store.container.url}?{sas}")
    opened = open_store()
    assert isinstance(opened, AzureBlobStore)
    opened.put("via/sas", b"ok")
    assert store.get("via/sas") == StoredObject(b"ok", store.get("via/sas").etag)  # type: ignore[union-attr]


def test_the_cache_on_blob_behaves_as_on_a_folder(store: AzureBlobStore) -> None:
    skip = (T0 + 10 * DAY, T0 + 13 * DAY)
    bars = synthetic_bars(T0, FEB + 5 * DAY, skip=(skip,))
    source = MemorySource(bars, page_bars=5000)
    cache = HistoryCache(store)
    cache.fetch(source, "BTC-USD", "1m", T0, FEB + 5 * DAY, progress=False)
    assert store.list() == [
        "memex/crypto/BTC-USD/1m/2024-01.parquet",
        "memex/crypto/BTC-USD/1m/2024-02.parquet",
        "memex/crypto/BTC-USD/1m/_catalog.json",
    ]
    cache.fetch(source, "BTC-USD", "1m", T0, FEB + 5 * DAY, progress=False)
    assert len(source.calls) == 1
    entry = cache.catalog(SERIES)
    assert entry is not None
    assert (entry.empty_ranges, entry.total_candles) == ([skip], len(bars))
    loaded = cache.load("memex", "BTC-USD", "1m", T0, FEB + 5 * DAY, offline=True)
    assert loaded["close"].tolist() == bars["close"].tolist()
    assert loaded.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_an_interrupted_fetch_on_blob_resumes(store: AzureBlobStore) -> None:
    bars = synthetic_bars(T0, FEB + 10 * DAY)
    source = MemorySource(bars, page_bars=5000)
    source.fail_after_pages = 10
    cache = HistoryCache(store)
    with pytest.raises(Exception, match="connection reset"):
        cache.fetch(source, "BTC-USD", "1m", T0, FEB + 10 * DAY, progress=False)
    cache.fetch(source, "BTC-USD", "1m", T0, FEB + 10 * DAY, progress=False)
    assert source.calls[-1] == ("BTC-USD", "1m", FEB, FEB + 10 * DAY)
    loaded = cache.load("memex", "BTC-USD", "1m", T0, FEB + 10 * DAY, offline=True)
    assert loaded["open"].tolist() == bars["open"].tolist()


class Racing(AzureBlobStore):
    """Every writer reads the month before any writes, so all but one hold a stale ETag."""

    def __init__(self, inner: AzureBlobStore, writers: int) -> None:
        super().__init__(inner.container)
        self.barrier = threading.Barrier(writers)
        self.seen = threading.local()
        self.lost = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> StoredObject | None:
        found = super().get(key)
        if key.endswith(".parquet") and not getattr(self.seen, "done", False):
            self.seen.done = True
            self.barrier.wait(timeout=20)
        return found

    def put(self, key: str, data: bytes, **conditions: object) -> str:
        try:
            return super().put(key, data, **conditions)  # type: ignore[arg-type]
        except PreconditionFailedError:
            with self.lock:
                self.lost += 1
            raise


@pytest.mark.parametrize("existing", [False, True], ids=["new-month", "existing-month"])
def test_concurrent_writers_to_one_month_one_wins_the_other_merges(
    store: AzureBlobStore, existing: bool
) -> None:
    bars = synthetic_bars(T0, T0 + 3 * DAY)
    if existing:  # both race on If-Match with the same ETag, else on If-None-Match: *
        write_rows(store, SERIES, bars.iloc[:10].reset_index(drop=True))
    parts = [bars.iloc[10::3], bars.iloc[11::3], bars.iloc[12::3]]
    racing = Racing(store, writers=len(parts))
    errors: list[BaseException] = []

    def write(part: pd.DataFrame) -> None:
        try:
            write_rows(racing, SERIES, part.reset_index(drop=True))
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert racing.lost >= 2  # two of three lost the first round; each re-read and merged
    found = store.get(SERIES.file_path("2024-01"))
    assert found is not None
    expected = bars if existing else bars.iloc[10:].reset_index(drop=True)
    pd.testing.assert_frame_equal(decode(found.data, "month"), expected)

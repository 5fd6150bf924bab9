"""The numba cache drops exactly what changed sources made stale, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import numba.core.config
import pytest
from numba.core.caching import _CacheLocator

from tradetower import numba_cache


def _sub(rel: str) -> str:
    return str(_CacheLocator.get_suitable_cache_subpath(str(numba_cache.ROOT / rel / "x.py")))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADETOWER_NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(numba_cache, "_configured", False)
    monkeypatch.setattr(numba.core.config, "CACHE_DIR", numba.core.config.CACHE_DIR)
    folder = tmp_path / "numba"
    for name in (_sub("simulator/nb"), _sub("strategies"), "vectorbt_0123"):
        (folder / name).mkdir(parents=True)
    return folder


def _stamp(folder: Path, engine: str, strategies: str) -> None:
    Path(numba_cache.stamp_path(str(folder))).write_text(
        json.dumps({"engine": engine, "strategies": strategies})
    )


def test_an_engine_change_drops_all_our_caches_but_not_other_libraries(cache: Path) -> None:
    _stamp(cache, "stale", numba_cache._fingerprint(numba_cache.STRATEGY_SOURCES))
    numba_cache.configure_numba_cache()
    assert not (cache / _sub("simulator/nb")).exists()
    assert not (cache / _sub("strategies")).exists()
    assert (cache / "vectorbt_0123").exists()
    assert str(cache) == numba.core.config.CACHE_DIR
    stamp = json.loads(Path(numba_cache.stamp_path(str(cache))).read_text())
    assert stamp["engine"] == numba_cache._fingerprint(numba_cache.ENGINE_SOURCES)


def test_a_strategy_change_keeps_the_simulator_cache(cache: Path) -> None:
    _stamp(cache, numba_cache._fingerprint(numba_cache.ENGINE_SOURCES), "stale")
    numba_cache.configure_numba_cache()
    assert (cache / _sub("simulator/nb")).exists()
    assert not (cache / _sub("strategies")).exists()


def test_unchanged_sources_drop_nothing(cache: Path) -> None:
    _stamp(
        cache,
        numba_cache._fingerprint(numba_cache.ENGINE_SOURCES),
        numba_cache._fingerprint(numba_cache.STRATEGY_SOURCES),
    )
    numba_cache.configure_numba_cache()
    assert (cache / _sub("simulator/nb")).exists() and (cache / _sub("strategies")).exists()

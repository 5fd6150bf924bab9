"""A sweep folder: ``sweep.json`` (what was swept, on what, how) and ``results.parquet`` (one
row per finished combination: ``combo`` id, parameter columns, metric columns).

``results.parquet`` is rewritten whole after each finished chunk, through a temporary file and
an atomic rename, so a sweep killed at any moment leaves a readable file holding every chunk
finished so far; :meth:`SweepStore.start` hands those rows back and the runner skips them.
The dashboard reads these two files by name; keep the names and the keys of ``sweep.json``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tradetower.errors import ConfigError

RESULTS = "results.parquet"
META = "sweep.json"
COMBO = "combo"

# Keys of sweep.json that may change when a sweep is resumed (ranking only, no effect on rows).
_FREE_ON_RESUME = frozenset({"objective", "chunk_size"})


class SweepStore:
    """Reads and writes one sweep folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def results_path(self) -> Path:
        return self.folder / RESULTS

    @property
    def meta_path(self) -> Path:
        return self.folder / META

    def start(self, meta: Mapping[str, Any], *, resume: bool) -> pd.DataFrame:
        """Record ``meta`` and return the rows a previous run of the same sweep finished.

        Raises:
            ConfigError: ``resume`` is set and the folder holds a different sweep.
        """
        meta = _plain(meta)
        self.folder.mkdir(parents=True, exist_ok=True)
        done = pd.DataFrame()
        if resume and self.meta_path.exists():
            old = json.loads(self.meta_path.read_text())
            for key in sorted(set(old) | set(meta)):
                if key not in _FREE_ON_RESUME and old.get(key) != meta.get(key):
                    raise ConfigError(
                        "out",
                        f"{self.folder} holds a different sweep ({key!r} differs): choose "
                        "another folder, or start afresh without resuming",
                    )
            if self.results_path.exists():
                done = pd.read_parquet(self.results_path)
        elif self.results_path.exists():
            self.results_path.unlink()
        _write_atomic(
            self.meta_path,
            (json.dumps(meta, indent=2, allow_nan=False) + "\n").encode(),
        )
        return done

    def save(self, rows: pd.DataFrame) -> None:
        """Replace ``results.parquet`` with ``rows`` (sorted by combination id)."""
        ordered = rows.sort_values(COMBO, kind="stable").reset_index(drop=True)
        tmp = self.results_path.with_name(RESULTS + ".tmp")
        ordered.to_parquet(tmp, index=False)
        os.replace(tmp, self.results_path)

    def meta(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.meta_path.read_text())
        return loaded

    def results(self) -> pd.DataFrame:
        """The finished rows so far; safe while the sweep still runs. The file is read in one
        go and parsed from memory: parquet readers reopen a path, and a sweep replacing the
        file between two opens would hand them pages of a different file."""
        return pd.read_parquet(io.BytesIO(self.results_path.read_bytes()))


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as JSON would give it back (tuples become lists, keys strings)."""
    loaded: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False, default=str))
    return loaded


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)

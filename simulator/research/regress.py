"""The golden-backtest regression check (``tradetower regress``, ``tests/golden/``).

A cases folder holds ``golden_cases.py`` (``CASES``, each with a ``name`` and ``run()``, and
``record_of(result)``) and one ``<case>.json`` record per case. A case is re-run and compared
with its record: the fill count and the fills digest must match exactly, every metric must be
present in both, floats within a relative tolerance (1e-9 unless the case carries a
``tolerances`` mapping of metric to relative tolerance), anything else equal.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tradetower.errors import ConfigError

CASES_FILE = "golden_cases.py"
DEFAULT_REL = 1e-9
ABS_TOL = 1e-12
_EXACT = ("n_fills", "fills_sha256")


@dataclass(frozen=True)
class Drift:
    """One value that moved: ``rel`` is the relative change for numbers (else ``None``)."""

    metric: str
    old: Any
    new: Any
    rel: float | None = None

    def __str__(self) -> str:
        moved = f"{self.metric} {_show(self.old)}→{_show(self.new)}"
        return moved if self.rel is None else f"{moved} (rel {self.rel:.2e})"


def compare(
    expected: Mapping[str, Any],
    got: Mapping[str, Any],
    tolerances: Mapping[str, float] | None = None,
) -> list[Drift]:
    """Every difference between a stored record and a fresh one (empty: no drift)."""
    tolerances = tolerances or {}
    drifts = [
        Drift(k, expected.get(k), got.get(k)) for k in _EXACT if expected.get(k) != got.get(k)
    ]
    want_all: Mapping[str, Any] = expected.get("metrics", {})
    have_all: Mapping[str, Any] = got.get("metrics", {})
    for key in sorted(set(want_all) | set(have_all)):
        if key not in have_all or key not in want_all:
            drifts.append(Drift(key, want_all.get(key, "absent"), have_all.get(key, "absent")))
            continue
        want, have = want_all[key], have_all[key]
        if (
            _is_number(want)
            and _is_number(have)
            and (isinstance(want, float) or isinstance(have, float))
        ):
            rel_tol = tolerances.get(key, DEFAULT_REL)
            if not math.isclose(have, want, rel_tol=rel_tol, abs_tol=ABS_TOL):
                scale = abs(want) if want != 0 else 1.0
                drifts.append(Drift(key, want, have, abs(have - want) / scale))
        elif want != have:
            drifts.append(Drift(key, want, have))
    return drifts


def load_cases(folder: str | Path) -> ModuleType:
    """Import ``golden_cases.py`` from ``folder`` (a module name of its own per folder)."""
    path = Path(folder).resolve() / CASES_FILE
    if not path.exists():
        raise ConfigError("cases", f"no {CASES_FILE} in {path.parent}")
    name = "_golden_cases_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """A record as ``tests/golden/*.json`` keeps it (sorted keys, no NaN, final newline)."""
    path.write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")


def regress(
    folder: str | Path,
    names: Iterable[str] = (),
    *,
    update: bool = False,
    say: Callable[[str], None] = print,
) -> int:
    """Run the golden cases in ``folder`` (only ``names`` when given), print one line per
    case, and return 1 when any case drifted or has no record, else 0. ``update`` re-records
    instead of comparing."""
    module = load_cases(folder)
    cases = list(module.CASES)
    wanted = list(names)
    unknown = sorted(set(wanted) - {c.name for c in cases})
    if unknown:
        known = ", ".join(c.name for c in cases)
        raise ConfigError("cases", f"unknown golden case(s) {', '.join(unknown)}; known: {known}")
    failed = 0
    width = max(len(c.name) for c in cases)
    for case in cases:
        if wanted and case.name not in wanted:
            continue
        record = module.record_of(case.run())
        path = Path(folder) / f"{case.name}.json"
        if update:
            write_record(path, record)
            say(f"recorded {case.name:<{width}}  {record['n_fills']} fills -> {path.name}")
            continue
        if not path.exists():
            failed += 1
            say(f"MISSING  {case.name:<{width}}  no record: run `tradetower regress --update`")
            continue
        drifts = compare(json.loads(path.read_text()), record, getattr(case, "tolerances", None))
        if drifts:
            failed += 1
            say(f"DRIFT    {case.name:<{width}}  " + "; ".join(str(d) for d in drifts))
        else:
            say(f"ok       {case.name}")
    return 1 if failed else 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.12g}"
    if isinstance(value, str) and len(value) > 16:
        return value[:12] + "…"
    return str(value)

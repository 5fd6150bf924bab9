"""The sweep table reshaped for the explorer: heatmap cells over two parameters, and the
normalised axes of the parallel-coordinates plot. Pure pandas, no drawing."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dashboards.format import format_param
from tradetower.errors import ConfigError

#: an axis with more distinct values than this is cut into ``BINS`` equal ranges
MAX_CATEGORIES = 30
BINS = 10
#: the "no filter" choice of a parameter that is not on an axis
ANY = "any"
#: columns of a sweep table that are neither parameters nor metrics
ID_COLUMNS = ("combo",)


def split_columns(
    frame: pd.DataFrame,
    params: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Parameter and metric columns: as given, or, for a frame straight from
    ``simulator.sweep.sweep``, the parameters before the first known metric and the rest."""
    if metrics is None:
        from simulator.nb.sweep import METRIC_NAMES  # compiled module: import only when needed

        known = [c for c in frame.columns if c in METRIC_NAMES]
        if not known:
            raise ConfigError("metrics", "no metric column found; pass metrics=[...]")
        first = list(frame.columns).index(known[0])
        metrics = [str(c) for c in frame.columns[first:]]
    if params is None:
        params = [str(c) for c in frame.columns if c not in metrics and c not in ID_COLUMNS]
    missing = [c for c in (*params, *metrics) if c not in frame.columns]
    if missing:
        raise ConfigError("columns", f"no column(s) {', '.join(missing)} in the sweep table")
    if not params or not metrics:
        raise ConfigError("columns", "a sweep table needs at least one parameter and one metric")
    return list(params), list(metrics)


def axis_labels(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """A label per row and the labels in axis order.

    Up to ``MAX_CATEGORIES`` distinct values are shown as themselves, sorted; more (random or
    optimiser sweeps) are cut into ``BINS`` equal ranges labelled ``lo – hi``.
    """
    distinct = pd.unique(values.dropna())
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if len(distinct) <= MAX_CATEGORIES or not numeric:
        ordered = sorted(distinct) if numeric else sorted(distinct, key=str)
        names = {v: format_param(v) for v in ordered}
        if len(set(names.values())) < len(names):  # two values print alike: print them in full
            names = {v: repr(v.item() if hasattr(v, "item") else v) for v in ordered}
        return values.map(names).astype(str), [names[v] for v in ordered]
    edges = np.linspace(float(values.min()), float(values.max()), BINS + 1)
    labels = [f"{lo:.4g} – {hi:.4g}" for lo, hi in itertools.pairwise(edges)]
    codes = np.clip(
        np.searchsorted(edges, values.to_numpy(dtype="float64"), "right") - 1, 0, BINS - 1
    )
    return pd.Series(np.asarray(labels)[codes], index=values.index), labels


def filter_rows(frame: pd.DataFrame, fixed: Mapping[str, Any]) -> pd.DataFrame:
    """Rows whose parameters equal the fixed values (``ANY`` or ``None`` leaves one free)."""
    mask = pd.Series(True, index=frame.index)
    for name, value in fixed.items():
        if value is None or (isinstance(value, str) and value == ANY):
            continue
        mask &= frame[name] == value
    return frame[mask]


def heatmap_cells(
    frame: pd.DataFrame, x: str, y: str, metric: str, fixed: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per (x, y) cell: the row with the highest ``metric`` among the rows in the cell
    (its index in ``row``), that value, and how many rows the cell holds; plus the axis orders.

    With every other parameter fixed, a full grid has exactly one row per cell.
    """
    if x == y:
        raise ConfigError("y", f"pick two different parameters (both are {x!r})")
    x_labels, x_order = axis_labels(frame[x])
    y_labels, y_order = axis_labels(frame[y])
    rows = filter_rows(frame, fixed or {})
    table = pd.DataFrame(
        {
            "x": x_labels.loc[rows.index],
            "y": y_labels.loc[rows.index],
            "value": rows[metric].astype("float64"),
            "row": rows.index,
        }
    )
    ranked = table.assign(_key=table["value"].fillna(-np.inf)).sort_values(
        ["_key", "row"], ascending=[False, True], kind="stable"
    )
    best = ranked.drop_duplicates(["x", "y"]).drop(columns="_key")
    counts = table.groupby(["x", "y"]).size().rename("count")
    cells = best.join(counts, on=["x", "y"]).reset_index(drop=True)
    cells = cells.rename(columns={"x": x, "y": y, "value": metric})
    return cells, x_order, y_order


def params_of(frame: pd.DataFrame, row: Any, params: Sequence[str]) -> dict[str, Any]:
    """A row's parameters as plain Python values (numpy scalars unwrapped)."""
    values = frame.loc[row, list(params)]
    return {p: (v.item() if hasattr(v, "item") else v) for p, v in values.items()}


def normalised(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Each column scaled to 0..1 (categories by their order; a constant column sits at 0.5)."""
    out = {}
    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.astype("float64")
        else:
            numbers = pd.Series(pd.factorize(values, sort=True)[0], index=values.index, dtype=float)
        lo, hi = numbers.min(), numbers.max()
        out[column] = (numbers - lo) / (hi - lo) if hi > lo else numbers * 0 + 0.5
    return pd.DataFrame(out, index=frame.index)

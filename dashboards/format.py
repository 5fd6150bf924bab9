"""How metric values read on the dashboards: one place, so cards, tables and tests agree."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricSpec:
    """A metric as shown: its label and the format of its value (``str.format`` style)."""

    key: str
    label: str
    fmt: str


CARD_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("final_equity", "Final equity", "{:,.2f}"),
    MetricSpec("return_pct", "Return", "{:+.2f}%"),
    MetricSpec("max_drawdown_pct", "Max drawdown", "{:.2f}%"),
    MetricSpec("sharpe", "Sharpe", "{:.2f}"),
    MetricSpec("sortino", "Sortino", "{:.2f}"),
    MetricSpec("n_trades", "Trades", "{:,.0f}"),
    MetricSpec("win_rate_pct", "Win rate", "{:.1f}%"),
    MetricSpec("profit_factor", "Profit factor", "{:.2f}"),
    MetricSpec("exposure_pct", "Exposure", "{:.1f}%"),
    MetricSpec("fees_paid", "Fees paid", "{:,.2f}"),
    MetricSpec("buy_and_hold_pct", "Buy & hold", "{:+.2f}%"),
)

#: Rows of the comparison table: the cards, then a few more.
COMPARE_METRICS: tuple[MetricSpec, ...] = (
    *CARD_METRICS,
    MetricSpec("cagr_pct", "CAGR", "{:+.2f}%"),
    MetricSpec("calmar", "Calmar", "{:.2f}"),
    MetricSpec("n_fills", "Fills", "{:,.0f}"),
    MetricSpec("bars", "Bars", "{:,.0f}"),
)

_SPECS = {spec.key: spec for spec in COMPARE_METRICS}
#: Sweep metric columns that are not among the cards read best with these formats.
_EXTRA = {
    "n_orders": "{:,.0f}",
    "n_fills": "{:,.0f}",
}
MISSING = "–"


def metric_label(key: str) -> str:
    spec = _SPECS.get(key)
    return spec.label if spec else key.replace("_", " ").capitalize()


def format_metric(key: str, value: Any) -> str:
    """``value`` as the dashboards print metric ``key`` (``None``/NaN show as an en dash)."""
    if value is None or isinstance(value, bool | str):
        return MISSING if value is None else str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return MISSING
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    spec = _SPECS.get(key)
    fmt = spec.fmt if spec else _EXTRA.get(key, "{:,.4g}")
    return fmt.format(number)


def format_param(value: Any) -> str:
    """A parameter value, short: ``20``, ``0.07``, ``True``, ``QUOTE``."""
    if isinstance(value, float):
        return f"{value:.10g}"
    if hasattr(value, "item"):  # numpy scalars
        return format_param(value.item())
    return str(value)


def describe_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={format_param(v)}" for k, v in params.items())

"""Metric cards: one small box per headline figure, formatted by :mod:`dashboards.format`."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import panel as pn

from dashboards.format import CARD_METRICS, format_metric
from dashboards.theme import Theme


def card_values(metrics: Mapping[str, Any]) -> dict[str, str]:
    """The text each card shows, by metric key (only metrics the run has)."""
    shown = {}
    for spec in CARD_METRICS:
        if spec.key not in metrics:
            continue
        value = metrics[spec.key]
        if spec.key == "profit_factor" and metrics.get("profit_factor_infinite"):
            value = float("inf")
        shown[spec.key] = format_metric(spec.key, value)
    return shown


def _css(theme: Theme) -> str:
    return f"""
.tt-cards {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.tt-card {{ background: {theme.surface}; color: {theme.text}; border-radius: 6px;
  padding: 8px 14px; min-width: 120px; border: 1px solid {theme.muted}33; }}
.tt-label {{ color: {theme.muted}; font-size: 12px; text-transform: uppercase; }}
.tt-value {{ font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }}
"""


def metric_cards(metrics: Mapping[str, Any], theme: Theme) -> pn.pane.HTML:
    labels = {spec.key: spec.label for spec in CARD_METRICS}
    cards = "".join(
        f'<div class="tt-card" data-metric="{escape(key)}">'
        f'<div class="tt-label">{escape(labels[key])}</div>'
        f'<div class="tt-value">{escape(text)}</div></div>'
        for key, text in card_values(metrics).items()
    )
    return pn.pane.HTML(
        f'<div class="tt-cards">{cards}</div>',
        stylesheets=[_css(theme)],
        sizing_mode="stretch_width",
        name="metric-cards",
    )

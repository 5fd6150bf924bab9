"""Order levels from the orders frame; how metric values read on the pages."""

from __future__ import annotations

import math

import pandas as pd
from dash_data import grid_run

from dashboards.format import describe_params, format_metric, format_param
from dashboards.levels import order_levels
from dashboards.views.cards import card_values

TIMES = pd.date_range("2024-01-01", periods=10, freq="1min", tz="UTC")


def _orders(rows: list[tuple]) -> pd.DataFrame:
    columns = ["order_id", "placed_bar", "instrument", "side", "type", "price", "status"]
    frame = pd.DataFrame(rows, columns=[*columns, "done_bar"])
    frame["placed_time"] = TIMES[frame["placed_bar"]]
    return frame


def test_each_resting_order_is_a_segment_from_placement_to_fill_or_cancel() -> None:
    orders = _orders(
        [
            (0, 0, "X", 1, "MARKET", math.nan, "FILLED", 1),
            (1, 0, "X", 1, "LIMIT", 95.0, "FILLED", 4),
            (2, 2, "X", -1, "LIMIT", 105.0, "CANCELLED", 6),
            (3, 3, "X", -1, "STOP", 90.0, "OPEN", -1),
            (4, 5, "Y", 1, "LIMIT", 7.0, "OPEN", 9),
        ]
    )
    levels = order_levels(orders, TIMES)
    assert list(levels["order_id"]) == [1, 2, 3, 4]  # the market order rests nowhere
    assert list(levels["price"]) == [95.0, 105.0, 90.0, 7.0]
    assert list(levels["start"]) == [TIMES[0], TIMES[2], TIMES[3], TIMES[5]]
    assert list(levels["end"]) == [TIMES[4], TIMES[6], TIMES[9], TIMES[9]]  # open: to the end
    assert list(levels["side"]) == [1, -1, -1, 1]


def test_levels_of_a_real_grid_match_its_limit_orders() -> None:
    result = grid_run(20)
    levels = order_levels(result.orders, result.equity.index)
    limits = result.orders[result.orders["type"] == "LIMIT"]
    assert len(levels) == len(limits) > 20
    assert (levels["end"] >= levels["start"]).all()
    filled = limits[limits["status"] == "FILLED"].iloc[0]
    row = levels[levels["order_id"] == filled["order_id"]].iloc[0]
    assert row["end"] == result.equity.index[filled["done_bar"]]
    assert order_levels(result.orders.iloc[:0], result.equity.index).empty


def test_metric_formats() -> None:
    assert format_metric("final_equity", 10082.405984886918) == "10,082.41"
    assert format_metric("return_pct", 0.824059848869183) == "+0.82%"
    assert format_metric("return_pct", -15.991262824185087) == "-15.99%"
    assert format_metric("max_drawdown_pct", -0.6062444274858247) == "-0.61%"
    assert format_metric("n_trades", 117) == "117"
    assert format_metric("win_rate_pct", 55.55555555555556) == "55.6%"
    assert format_metric("sharpe", None) == "–"
    assert format_metric("sharpe", math.nan) == "–"
    assert format_metric("profit_factor", math.inf) == "∞"
    assert format_metric("grid_cycles", 59.0) == "59"
    assert format_metric("bot_state", "ACTIVE") == "ACTIVE"
    assert format_param(0.07) == "0.07" and format_param(20) == "20"
    assert (
        describe_params({"grid_levels": 20, "low_price": 0.07}) == "grid_levels=20, low_price=0.07"
    )


def test_cards_show_an_infinite_profit_factor_and_only_known_metrics() -> None:
    shown = card_values(
        {"final_equity": 1234.5, "profit_factor": None, "profit_factor_infinite": True}
    )
    assert shown == {"final_equity": "1,234.50", "profit_factor": "∞"}

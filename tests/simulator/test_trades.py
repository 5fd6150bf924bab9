"""FIFO round trips from fills: hand-checked cases and an accounting property."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.trades import TRADE_COLUMNS, fills_to_trades

T0 = pd.Timestamp("2024-01-01", tz="UTC")

Fill = tuple[int, str, int, float, float, float]  # bar, instrument, side, qty, price, fee


def make_fills(rows: list[Fill], bar_minutes: int = 60) -> pd.DataFrame:
    """Fills DataFrame; the timestamp of a fill is T0 + bar·bar_minutes."""
    return pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(
                [T0 + pd.Timedelta(minutes=bar_minutes * r[0]) for r in rows], tz="UTC"
            ).as_unit("ns"),
            "bar": np.array([r[0] for r in rows], dtype=np.int64),
            "instrument": [r[1] for r in rows],
            "side": np.array([r[2] for r in rows], dtype=np.int64),
            "qty": np.array([r[3] for r in rows], dtype=np.float64),
            "price": np.array([r[4] for r in rows], dtype=np.float64),
            "fee": np.array([r[5] for r in rows], dtype=np.float64),
        }
    )


def test_long_round_trip_fees_and_fields() -> None:
    trades = fills_to_trades(
        make_fills([(1, "X", 1, 2.0, 100.0, 0.2), (4, "X", -1, 2.0, 110.0, 0.22)])
    )
    assert list(trades.columns) == list(TRADE_COLUMNS)
    assert len(trades) == 1
    t = trades.iloc[0]
    assert t["instrument"] == "X"
    assert t["direction"] == "LONG"
    assert t["qty"] == 2.0
    assert (t["entry_bar"], t["exit_bar"]) == (1, 4)
    assert t["entry_time"] == T0 + pd.Timedelta(hours=1)
    assert t["exit_time"] == T0 + pd.Timedelta(hours=4)
    assert t["duration"] == pd.Timedelta(hours=3)
    assert (t["entry_price"], t["exit_price"]) == (100.0, 110.0)
    assert t["entry_fees"] == pytest.approx(0.2)
    assert t["exit_fees"] == pytest.approx(0.22)
    assert t["gross_pnl"] == pytest.approx(20.0)
    assert t["pnl"] == pytest.approx(19.58)
    assert t["return_pct"] == pytest.approx(19.58 / 200.0 * 100.0)
    assert not t["is_open"]
    assert str(trades["entry_time"].dtype) == "datetime64[ns, UTC]"
    assert trades["entry_bar"].dtype == np.int64
    assert trades["is_open"].dtype == bool


def test_short_round_trip() -> None:
    trades = fills_to_trades(
        make_fills([(0, "X", -1, 1.5, 200.0, 0.3), (2, "X", 1, 1.5, 180.0, 0.27)])
    )
    assert len(trades) == 1
    t = trades.iloc[0]
    assert t["direction"] == "SHORT"
    assert t["gross_pnl"] == pytest.approx(30.0)
    assert t["pnl"] == pytest.approx(30.0 - 0.3 - 0.27)
    assert t["return_pct"] == pytest.approx((30.0 - 0.57) / 300.0 * 100.0)


def test_partial_exits_give_two_rows_with_prorated_fees() -> None:
    trades = fills_to_trades(
        make_fills(
            [
                (0, "X", 1, 4.0, 100.0, 0.4),
                (1, "X", -1, 1.0, 110.0, 0.11),
                (2, "X", -1, 3.0, 90.0, 0.27),
            ]
        )
    )
    assert len(trades) == 2
    a, b = trades.iloc[0], trades.iloc[1]
    assert (a["qty"], b["qty"]) == (1.0, 3.0)
    assert a["entry_fees"] == pytest.approx(0.1)
    assert b["entry_fees"] == pytest.approx(0.3)
    assert a["exit_fees"] == pytest.approx(0.11)
    assert b["exit_fees"] == pytest.approx(0.27)
    assert a["pnl"] == pytest.approx(10.0 - 0.1 - 0.11)
    assert b["pnl"] == pytest.approx(-30.0 - 0.3 - 0.27)
    assert (a["exit_bar"], b["exit_bar"]) == (1, 2)
    assert not trades["is_open"].any()


def test_one_exit_closes_two_entry_lots_fifo() -> None:
    trades = fills_to_trades(
        make_fills(
            [
                (0, "X", 1, 1.0, 100.0, 0.1),
                (1, "X", 1, 3.0, 102.0, 0.3),
                (2, "X", -1, 4.0, 105.0, 0.42),
            ]
        )
    )
    assert trades["qty"].tolist() == [1.0, 3.0]
    assert trades["entry_price"].tolist() == [100.0, 102.0]
    assert trades["entry_bar"].tolist() == [0, 1]
    assert trades["exit_fees"].to_numpy() == pytest.approx([0.105, 0.315])
    assert trades["pnl"].to_numpy() == pytest.approx([5.0 - 0.1 - 0.105, 9.0 - 0.3 - 0.315])


def test_reversal_closes_long_and_opens_short_remainder() -> None:
    trades = fills_to_trades(
        make_fills([(0, "X", 1, 2.0, 100.0, 0.2), (3, "X", -1, 3.0, 110.0, 0.33)]),
        mark_prices={"X": 105.0},
        mark_time=T0 + pd.Timedelta(hours=5),
        mark_bar=5,
    )
    assert len(trades) == 2
    closed, opened = trades.iloc[0], trades.iloc[1]
    assert (closed["direction"], closed["qty"], bool(closed["is_open"])) == ("LONG", 2.0, False)
    assert closed["exit_fees"] == pytest.approx(0.22)
    assert closed["pnl"] == pytest.approx(20.0 - 0.2 - 0.22)
    assert (opened["direction"], opened["qty"], bool(opened["is_open"])) == ("SHORT", 1.0, True)
    assert opened["entry_price"] == 110.0
    assert opened["entry_fees"] == pytest.approx(0.11)
    assert opened["entry_bar"] == 3
    assert opened["exit_price"] == 105.0
    assert opened["exit_fees"] == 0.0
    assert opened["exit_bar"] == 5
    assert opened["duration"] == pd.Timedelta(hours=2)
    assert opened["gross_pnl"] == pytest.approx(5.0)
    assert opened["pnl"] == pytest.approx(5.0 - 0.11)


def test_open_trade_marked_or_nan_without_mark() -> None:
    fills = make_fills([(0, "X", 1, 1.0, 100.0, 0.1), (0, "Y", -1, 2.0, 50.0, 0.1)])
    marked = fills_to_trades(fills, {"X": 120.0})
    assert marked["is_open"].all()
    x = marked[marked["instrument"] == "X"].iloc[0]
    assert x["exit_price"] == 120.0
    assert x["pnl"] == pytest.approx(19.9)
    assert x["exit_bar"] == -1
    assert pd.isna(x["exit_time"])
    y = marked[marked["instrument"] == "Y"].iloc[0]
    assert y["direction"] == "SHORT"
    assert math.isnan(y["exit_price"])
    assert math.isnan(y["pnl"])


def test_instruments_are_matched_independently_and_input_is_time_sorted() -> None:
    rows: list[Fill] = [
        (2, "Y", -1, 1.0, 60.0, 0.0),
        (0, "X", 1, 1.0, 10.0, 0.0),
        (1, "Y", 1, 1.0, 50.0, 0.0),
        (3, "X", -1, 1.0, 12.0, 0.0),
    ]
    trades = fills_to_trades(make_fills(rows))
    assert trades["instrument"].tolist() == ["Y", "X"]  # in closing order
    assert trades["pnl"].tolist() == pytest.approx([10.0, 2.0])


def test_empty_and_invalid_fills() -> None:
    empty = fills_to_trades(make_fills([]))
    assert list(empty.columns) == list(TRADE_COLUMNS)
    assert len(empty) == 0
    with pytest.raises(ValueError, match="side"):
        fills_to_trades(make_fills([(0, "X", 0, 1.0, 1.0, 0.0)]))
    with pytest.raises(ValueError, match="qty"):
        fills_to_trades(make_fills([(0, "X", 1, 0.0, 1.0, 0.0)]))
    with pytest.raises(ValueError, match="fee"):
        fills_to_trades(make_fills([(0, "X", 1, 1.0, 1.0, -0.1)]))


fill_strategy = st.tuples(
    st.sampled_from(["X", "Y"]),
    st.sampled_from([1, -1]),
    st.one_of(
        st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]),
        st.floats(0.001, 10.0, allow_nan=False, allow_infinity=False),
    ),
    st.floats(1.0, 1000.0, allow_nan=False, allow_infinity=False),
    st.floats(0.0, 2.0, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(fill_strategy, max_size=40),
    st.floats(1.0, 1000.0, allow_nan=False, allow_infinity=False),
    st.floats(1.0, 1000.0, allow_nan=False, allow_infinity=False),
)
def test_trade_pnl_matches_cash_accounting(
    raw: list[tuple[str, int, float, float, float]], mark_x: float, mark_y: float
) -> None:
    rows: list[Fill] = [(i, inst, side, q, p, f) for i, (inst, side, q, p, f) in enumerate(raw)]
    marks = {"X": mark_x, "Y": mark_y}
    trades = fills_to_trades(make_fills(rows), marks)

    cash = 0.0
    position = {"X": 0.0, "Y": 0.0}
    for _, inst, side, q, p, f in rows:
        cash -= side * q * p + f
        position[inst] += side * q
    expected = cash + sum(position[k] * marks[k] for k in marks)

    total = float(trades["pnl"].sum())
    scale = 1.0 + sum(q * p + f for _, _, _, q, p, f in rows)
    assert math.isclose(total, expected, rel_tol=0.0, abs_tol=1e-9 * scale)
    # Every fee is carried exactly once, split between entries and exits.
    fees = float(trades["entry_fees"].sum() + trades["exit_fees"].sum())
    assert math.isclose(fees, sum(r[5] for r in rows), rel_tol=0.0, abs_tol=1e-9 * scale)
    # Open lots are the final position, one direction per instrument.
    for inst in marks:
        open_rows = trades[(trades["instrument"] == inst) & trades["is_open"]]
        signed = np.where(open_rows["direction"] == "LONG", 1.0, -1.0) * open_rows["qty"]
        assert math.isclose(float(signed.sum()), position[inst], abs_tol=1e-9 * scale)
        assert open_rows["direction"].nunique() <= 1
    assert (trades["qty"] > 0).all()


def test_instruments_are_told_apart_by_their_name_as_text() -> None:
    """1 and "1" name one instrument (as text they are the same); "B" is another."""
    ts = pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC")
    fills = pd.DataFrame(
        {
            "timestamp": ts,
            "bar": [0, 1, 2, 3],
            "instrument": pd.Series([1, "1", "B", "B"], dtype=object),
            "side": [1, -1, 1, -1],
            "qty": [1.0] * 4,
            "price": [10.0, 11.0, 5.0, 6.0],
            "fee": [0.0] * 4,
        }
    )
    trades = fills_to_trades(fills)
    assert list(trades["instrument"]) == ["1", "B"]
    assert list(trades["entry_price"]) == [10.0, 5.0]
    assert list(trades["exit_price"]) == [11.0, 6.0]
    assert not trades["is_open"].any()

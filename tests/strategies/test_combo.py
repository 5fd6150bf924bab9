"""Combo bot (STRATEGIES.md §3.5): the worked examples C1-C3, parity, properties, configs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars, random_walk, real_file
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from simulator import backtest
from simulator.result import BacktestResult
from strategies.combo import Combo, ComboConfig
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError

INST = Instrument(
    symbol="X-PERP",
    asset_class="CRYPTO_FUTURES",
    tick=0.01,
    lot=0.0001,
    maker_fee=0.0002,
    taker_fee=0.0005,
    leverage=10,
    margin=True,
)
# C1: L=10, P=100; base 40, A=60 (30+30), step 1%, g=1%, n_g=3, SL 5%. The spec's default
# liquidation buffer (10%) would sit above the entry at 10x (see Combo's docstring): 5% here.
C_CFG: dict[str, object] = {
    "leverage": 10,
    "base_order_amount": 40,
    "averaging_orders_amount": 60,
    "averaging_orders_quantity": 2,
    "averaging_orders_step": 1,
    "grid_levels": 3,
    "stop_loss_pct": 5,
    "liquidation_buffer": 5,
}
START = [(100.0, 100.0, 100.0, 100.0), (100.0, 100.2, 99.8, 100.0)]  # P = 100; base fills @100


def run(
    rows: list[tuple[float, float, float, float]],
    mode: str = "python",
    cash: float = 10_000.0,
    **changes: object,
) -> tuple[Combo, BacktestResult]:
    bot = Combo(**{**C_CFG, **changes})
    result = backtest(
        bot, make_bars(rows), instrument=INST, cash=cash, mode=mode, close_at_end=False
    )
    return bot, result


def placed(r: BacktestResult, bar: int, *, reduce_only: bool) -> list[tuple[float, float]]:
    """(price, qty) of the limit orders placed on ``bar``, lowest price first."""
    o = r.orders
    sel = o[(o.placed_bar == bar) & (o.reduce_only == reduce_only) & (o.type == "LIMIT")]
    return sorted(zip(sel.price.round(8), sel.qty.round(8), strict=True))


def triggers(bot: Combo) -> list[str]:
    return [t["trigger"] for t in bot.transitions()]


# ----------------------------------------------------------------------------- C1 / C2 / C3
C1_BARS = [*START, (100.0, 101.0, 99.5, 100.8), (100.8, 100.9, 100.5, 100.7)]


@pytest.mark.nojit
def test_c1_exit_fill_realizes_and_trails_the_lowest_dca() -> None:
    bot, r = run(C1_BARS)
    base = r.fills.iloc[0]
    assert (base.bar, base.side, base.qty, base.price) == (1, 1, 4.0, 100.0)
    assert base.fee == pytest.approx(0.2, abs=1e-12)
    assert base.liquidity == "TAKER"
    assert placed(r, 1, reduce_only=False) == [(98.0, 3.0612), (99.0, 3.0303)]
    assert placed(r, 1, reduce_only=True) == [(101.0, 1.3333), (102.01, 1.3333), (103.03, 1.3334)]
    exit_fill = r.fills.iloc[1]
    assert (exit_fill.side, exit_fill.qty, exit_fill.price) == (-1, 1.3333, 101.0)
    assert exit_fill.fee == pytest.approx(0.02693266, abs=1e-10)
    m = bot.metrics()
    assert m["realized_pnl"] == pytest.approx(1.23970234, abs=1e-8)
    # trail_dca_up: the lowest DCA (98) moves to tick(101·0.99) with the same margin
    assert placed(r, 2, reduce_only=False) == [(99.99, 3.0003)]
    moved = r.orders[(r.orders.price == 98.0)].iloc[0]
    assert (moved.status, moved.done_bar) == ("CANCELLED", 2)
    assert m["dca_moves"] == 1
    assert m["exit_fills"] == 1
    assert m["position"] == pytest.approx(2.6667, abs=1e-12)
    assert [d["price"] for d in bot.dca_orders()] == [99.0, 99.99]


C2_BARS = [
    *START,
    (100.0, 100.2, 98.9, 99.2),  # 99 fills
    (99.2, 99.3, 97.9, 98.2),  # 98 fills
    (98.2, 98.3, 98.1, 98.2),
]


def test_c2_averaging_relays_the_exits_and_extends_the_ladder() -> None:
    bot, r = run(C2_BARS[:3])
    m = bot.metrics()
    assert m["position"] == pytest.approx(7.0303, abs=1e-12)
    assert m["avg_entry"] == pytest.approx(99.568966, abs=1e-6)
    assert placed(r, 2, reduce_only=True) == [
        (100.56, 2.3434),
        (101.57, 2.3434),
        (102.59, 2.3435),
    ]
    assert m["dca_extensions"] == 0  # 99 was not the lowest DCA

    bot, r = run(C2_BARS)
    m = bot.metrics()
    assert m["position"] == pytest.approx(10.0915, abs=1e-12)
    assert m["avg_entry"] == pytest.approx(99.093029, abs=1e-6)
    assert placed(r, 3, reduce_only=True) == [
        (100.08, 3.3638),
        (101.08, 3.3638),
        (102.10, 3.3639),
    ]
    assert placed(r, 3, reduce_only=False) == [(97.02, 3.0921)]
    assert m["dca_extensions"] == 1
    assert m["committed_margin_at_last_extension"] == pytest.approx(129.99973, abs=1e-5)
    assert m["committed_margin"] == pytest.approx(129.99973, abs=1e-5)
    assert m["margin_cap"] == 300.0
    assert [f for f in r.fills.liquidity[1:]] == ["MAKER", "MAKER"]


C3_BARS = [
    *START,
    (100.5, 100.6, 100.3, 100.4),  # the peak: SL 100.6·0.95 = 95.57
    (100.4, 100.4, 98.9, 99.0),  # 99 fills
    (99.0, 99.1, 97.9, 98.0),  # 98 fills
    (98.0, 98.1, 95.5, 95.6),  # crosses the trailing SL at 95.57
    (95.57, 95.6, 95.5, 95.57),  # the close fills at the open
]


@pytest.mark.nojit
def test_c3_trailing_stop_loss_closes_the_position() -> None:
    bot, r = run(C3_BARS, extend_dca_on_fill=False)
    m = bot.metrics()
    assert m["sl_level"] == pytest.approx(95.57, abs=0.005)
    close = r.fills.iloc[-1]
    assert (close.bar, close.side, close.qty, close.price) == (6, -1, 10.0915, 95.57)
    assert close.qty * close.price == pytest.approx(964.444655, abs=1e-6)
    assert close.fee == pytest.approx(0.4822223275, abs=1e-10)
    assert close.liquidity == "TAKER"
    assert m["realized_pnl"] == pytest.approx(-36.3548667875, abs=1e-9)
    assert m["liq_price"] == pytest.approx(90.17, abs=0.005)
    assert m["liq_price"] < m["sl_level"]  # clear of the SL
    assert m["bot_state"] == "STOPPED"
    assert triggers(bot) == ["user_start", "stop_loss_hit", "done"]
    assert m["dca_extensions"] == 0
    assert (r.orders.status == "OPEN").sum() == 0
    assert not (r.orders.reason == "END_OF_DATA").any()


# ------------------------------------------------------------------------------ other paths
def test_short_mirrors_c1() -> None:
    rows = [*START, (100.0, 100.5, 99.0, 99.2), (99.2, 99.4, 99.1, 99.3)]
    bot, r = run(rows, direction="SHORT")
    assert r.fills.iloc[0].side == -1
    assert placed(r, 1, reduce_only=False) == [(101.0, 2.9702), (102.0, 2.9411)]
    assert placed(r, 1, reduce_only=True) == [(97.03, 1.3334), (98.01, 1.3333), (99.0, 1.3333)]
    assert bot.metrics()["realized_pnl"] == pytest.approx(1.24023566, abs=1e-8)
    assert placed(r, 2, reduce_only=False) == [(99.99, 3.0003)]  # the highest DCA trails down
    assert bot.metrics()["position"] == pytest.approx(-2.6667, abs=1e-12)


def test_flat_position_starts_a_new_cycle_at_market() -> None:
    rows = [*C1_BARS[:3], (100.8, 103.1, 100.7, 103.0), (103.0, 103.2, 102.9, 103.1)]
    bot, r = run(rows)
    m = bot.metrics()
    assert m["cycles"] == 1
    assert m["exit_fills"] == 3
    assert m["cycle_win_rate_pct"] == 100.0
    bases = r.orders[r.orders.type == "MARKET"]
    assert list(bases.placed_bar) == [0, 3]
    assert bases.qty.iloc[1] == 3.8823  # floor_lot(400/103.03)
    assert r.fills.iloc[-1].price == 103.0
    # the old DCA orders were cancelled, the new ladder hangs from P0 = 103
    assert placed(r, 4, reduce_only=False) == [(100.94, 2.972), (101.97, 2.942)]
    assert m["position"] == pytest.approx(3.8823, abs=1e-12)
    assert len(bot.dca_orders()) == 2


def test_take_profit_roi_on_margin_completes() -> None:
    rows = [*START, (100.0, 100.5, 99.9, 100.4), (100.4, 100.5, 100.3, 100.4)]
    bot, r = run(rows, take_profit_pct=1)
    m = bot.metrics()
    # total PnL reaches 1% of 100 at 100 + (1 + 0.2)/4 = 100.3; the close fills at the open
    assert m["tp_price"] == pytest.approx(100.3, abs=1e-9)
    close = r.fills.iloc[-1]
    assert (close.qty, close.price) == (4.0, 100.4)
    assert m["realized_pnl"] == pytest.approx(4 * 0.4 - 0.2 - 0.2008, abs=1e-9)
    assert m["bot_state"] == "COMPLETED"
    assert triggers(bot)[-2:] == ["take_profit_hit", "done"]


def test_take_profit_price_completes() -> None:
    rows = [*START, (100.0, 100.6, 99.9, 100.4), (100.5, 100.6, 100.4, 100.5)]
    bot, r = run(rows, take_profit_price=100.5)
    assert r.fills.iloc[-1].price == 100.5
    assert bot.metrics()["realized_pnl"] == pytest.approx(2.0 - 0.2 - 0.201, abs=1e-9)
    assert bot.metrics()["bot_state"] == "COMPLETED"


NO_DCA = {"averaging_orders_quantity": 0, "averaging_orders_amount": 0, "stop_loss_pct": 8}


def test_liquidation_buffer_stops_before_the_venue_does() -> None:
    # liq = 100·(1 − 0.9/10) = 91, buffer 5% → trigger at 91/0.95 = 95.789
    rows = [*START, (100.0, 100.0, 95.5, 95.6), (95.6, 95.7, 95.5, 95.6)]
    bot, r = run(rows, **NO_DCA)
    m = bot.metrics()
    assert m["liq_price"] == pytest.approx(91.0, abs=1e-9)
    assert r.fills.iloc[-1].price == 95.6
    assert m["realized_pnl"] == pytest.approx(4 * -4.4 - 0.2 - 0.1912, abs=1e-9)
    assert m["bot_state"] == "STOPPED"
    assert triggers(bot)[-2:] == ["liquidation_buffer", "done"]


def test_venue_liquidation_stops_the_bot() -> None:
    rows = [*START, (85.0, 85.5, 84.0, 85.0), (85.0, 85.0, 85.0, 85.0)]
    bot, r = run(rows, **{**NO_DCA, "liquidation_buffer": 1, "stop_loss_pct": 8.5})
    m = bot.metrics()
    assert bool(r.fills.liquidation.iloc[-1])
    assert m["liquidations"] == 1
    assert m["realized_pnl"] == pytest.approx(4 * -15 - 0.17 - 0.2, abs=1e-9)
    assert m["bot_state"] == "STOPPED"
    assert (r.orders.status == "OPEN").sum() == 0


def test_user_stop_cancels_orders_and_keeps_the_position() -> None:
    bot, r = run([*START, (100.0, 100.1, 99.9, 100.0)] * 1 + [(100.0,) * 4], commands={2: "STOP"})
    m = bot.metrics()
    assert m["bot_state"] == "STOPPED"
    assert triggers(bot)[-2:] == ["user_stop", "done"]
    assert m["position"] == 4.0
    assert set(r.orders.reason[1:]) == {"USER"}
    assert (r.orders.done_bar[1:] == 2).all()


def test_close_signal_closes_the_position() -> None:
    bot, r = run([*START, (100.0, 100.1, 99.9, 100.0), (100.2,) * 4], commands={2: "CLOSE"})
    assert r.fills.iloc[-1].qty == 4.0
    assert r.fills.iloc[-1].price == 100.2
    assert bot.metrics()["position"] == 0.0
    assert triggers(bot)[-2:] == ["close_signal", "done"]


def test_pause_blocks_dca_moves_and_resume_returns_to_active() -> None:
    bot, _ = run([*C1_BARS, (100.7,) * 4], commands={1: "PAUSE", 3: "RESUME"})
    m = bot.metrics()
    assert m["exit_fills"] == 1
    assert m["dca_moves"] == 0
    assert m["bot_state"] == "ACTIVE"
    assert triggers(bot) == ["user_start", "user_pause", "user_resume"]


def test_add_funds_rescales_pending_dca_orders_at_the_same_prices() -> None:
    bot, r = run([*START, (100.0,) * 4], commands={1: "ADD_FUNDS"}, add_funds_amount=100)
    assert placed(r, 1, reduce_only=False) == [
        (98.0, 3.0612),
        (98.0, 6.1224),
        (99.0, 3.0303),
        (99.0, 6.0606),
    ]
    assert len(placed(r, 1, reduce_only=True)) == 3  # the exits are untouched
    m = bot.metrics()
    assert m["investment"] == 200.0
    assert m["added_funds"] == 100.0
    assert sorted(d["qty"] for d in bot.dca_orders()) == [6.0606, 6.1224]


def test_manual_start_waits_for_the_start_command() -> None:
    rows = [(100.0,) * 4, (100.0,) * 4, (101.0,) * 4, (101.0,) * 4]
    bot, r = run(rows, base_order_condition="MANUAL", commands={2: "START"})
    assert triggers(bot) == ["start_condition_pending", "start_condition_met"]
    assert r.orders.placed_bar.iloc[0] == 2
    assert r.fills.iloc[0].price == 101.0


def test_price_change_start_condition() -> None:
    rows = [(100.0,) * 4, (100.0, 100.1, 98.9, 99.0), (99.0,) * 4]
    bot, r = run(rows, base_order_condition="PRICE_CHANGE", start_price_change_pct=-1)
    assert triggers(bot) == ["start_condition_pending", "start_condition_met"]
    assert r.orders.placed_bar.iloc[0] == 1


def test_refused_entry_pauses_for_funds() -> None:
    # 50 of cash carries the base (40 margin at 10x) but not the whole first DCA
    bot, r = run([*C2_BARS, (98.2,) * 4], cash=50.0)
    m = bot.metrics()
    assert m["bot_state"] == "PAUSED"
    assert "insufficient_funds" in triggers(bot)
    assert m["funds_pauses"] == 1
    assert 0 < m["position"] < 7.0303
    assert (r.orders.reason == "INSUFFICIENT_FUNDS").sum() >= 1


def test_compiled_matches_python_on_hand_made_bars() -> None:
    _, a = run(C2_BARS, mode="compiled")
    _, b = run(C2_BARS, mode="python")
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.fills, b.fills)


# -------------------------------------------------------------------------------- parity
XRP = Instrument(
    symbol="XRP-USDT-PERP",
    asset_class="CRYPTO_FUTURES",
    tick=0.0001,
    lot=0.1,
    min_notional=5,
    maker_fee=0.0002,
    taker_fee=0.0005,
    leverage=10,
    margin=True,
)


@pytest.mark.parametrize("direction", ["LONG", "SHORT"])
def test_parity_compiled_vs_python_on_real_perp_data(direction: str) -> None:
    bars = pd.read_parquet(real_file("binance_XRP-USDT-PERP_5m_2021-11.parquet"))
    cfg = {
        "direction": direction,
        "leverage": 10,
        "base_order_amount": 50,
        "averaging_orders_amount": 100,
        "averaging_orders_quantity": 5,
        "averaging_orders_step": 1,
        "grid_levels": 5,
        "grid_step": 0.5,
        "stop_loss_pct": 8 if direction == "LONG" else 7,
        "liquidation_buffer": 3,
    }
    runs = {}
    for mode in ("compiled", "python"):
        bot = Combo(**cfg)
        runs[mode] = (bot, backtest(bot, bars, instrument=XRP, cash=1_000, mode=mode))
    (b1, r1), (b2, r2) = runs["compiled"], runs["python"]
    pd.testing.assert_frame_equal(r1.orders, r2.orders)
    pd.testing.assert_frame_equal(r1.fills, r2.fills)
    np.testing.assert_array_equal(b1.state, b2.state)
    assert len(r1.fills) > 10
    assert b1.metrics()["exit_fills"] > 0


# ---------------------------------------------------------------------------- properties
PROP_INST = INST.model_copy(update={"min_notional": 5.0})


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    direction=st.sampled_from(["LONG", "SHORT"]),
    leverage=st.sampled_from([2, 3, 5, 10]),
    n=st.integers(0, 5),
    step=st.floats(0.3, 2.0),
    grid_levels=st.integers(1, 6),
    grid_step=st.one_of(st.none(), st.floats(0.2, 2.0)),
    multiplier=st.floats(1.0, 2.0),
    extend=st.booleans(),
    trail=st.booleans(),
    cap=st.floats(1.5, 4.0),
    sl_extra=st.floats(0.3, 6.0),
    buffer=st.floats(1.0, 4.0),
    tp=st.one_of(st.none(), st.floats(1.0, 20.0)),
)
def test_properties_on_random_walks(
    seed: int,
    direction: str,
    leverage: int,
    n: int,
    step: float,
    grid_levels: int,
    grid_step: float | None,
    multiplier: float,
    extend: bool,
    trail: bool,
    cap: float,
    sl_extra: float,
    buffer: float,
    tp: float | None,
) -> None:
    try:
        config = ComboConfig.parse(
            {
                "direction": direction,
                "leverage": leverage,
                "base_order_amount": 100,
                "averaging_orders_amount": 300 if n else 0,
                "averaging_orders_quantity": n,
                "averaging_orders_step": step,
                "amount_multiplier": multiplier,
                "grid_levels": grid_levels,
                "grid_step": grid_step,
                "extend_dca_on_fill": extend,
                "trail_dca_up": trail,
                "max_margin_multiple": cap,
                "stop_loss_pct": n * step + sl_extra,
                "liquidation_buffer": min(buffer, 90 / leverage - 0.5),
                "take_profit_pct": tp,
            }
        )
    except ConfigError:
        assume(False)
        return
    inst = PROP_INST.model_copy(update={"leverage": leverage})
    bars = random_walk(300, seed=seed, vol=0.004)
    bot = Combo(config)
    try:
        r = backtest(bot, bars, instrument=inst, cash=10_000, mode="compiled", close_at_end=False)
    except ConfigError:  # an order below the instrument minimums: refused at start
        assume(False)
        return
    m = bot.metrics()
    o = r.orders
    # no order below the minimum notional
    assert not (o.reason == "SKIPPED_MIN").any()
    limits = o[o.type == "LIMIT"]
    assert (limits.qty * limits.price >= 5.0 - 1e-9).all()
    markets = o[(o.type == "MARKET") & (o.filled > 0)]
    assert (markets.qty * markets.avg_fill_price >= 5.0 - 1e-9).all()
    # a stopped (or completed) bot holds no open orders
    if m["bot_state"] in ("STOPPED", "COMPLETED"):
        end = bot.transitions()[-1]["bar"]
        assert (o.placed_bar <= end).all()
        assert not (o.reason == "END_OF_DATA").any()
        if m["bot_state"] == "STOPPED":
            assert m["position"] == 0.0
    # exits never exceed the position (reduce-only)
    assert m["max_exit_excess"] <= 1e-9
    exits = o[o.reduce_only & (o.type == "LIMIT")]
    live = np.zeros(len(bars) + 1)  # resting exit quantity at the end of each bar
    np.add.at(live, exits.placed_bar.to_numpy(), exits.qty.to_numpy())
    np.add.at(live, exits.done_bar.to_numpy(), -exits.qty.to_numpy())
    live = np.cumsum(live)[: len(bars) - 1]
    pos = np.abs(r.positions.iloc[: len(bars) - 1, 0].to_numpy())
    assert (live <= pos + 1e-9).all()
    # the committed margin stays under the cap, extensions included
    assert m["max_committed_margin"] <= m["margin_cap"] + 1e-6
    assert m["committed_margin_at_last_extension"] <= m["margin_cap"] + 1e-9
    # the bot's books match the venue's: realized + unrealized = equity − invested
    assert m["total_pnl"] == pytest.approx(r.equity.iloc[-1] - 10_000, abs=1e-6)


# ------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"low_price": 120, "high_price": 100}, "low_price"),
        ({"liquidation_buffer": 10}, "liquidation_buffer"),
        ({"stop_loss_pct": 2}, "stop_loss_pct"),
        ({"stop_loss_pct": 9.9}, "stop_loss_pct"),
        ({"stop_loss_price": 95}, "stop_loss_pct"),
        ({"stop_loss_pct": None}, "stop_loss_pct"),
        ({"initial_margin": 120}, "initial_margin"),
        ({"base_order_amount": None, "averaging_orders_amount": None}, "base_order_amount"),
        ({"grid_levels": 0}, "grid_levels"),
        ({"leverage": 200}, "leverage"),
        ({"averaging_orders_quantity": 50, "averaging_orders_step": 2}, "averaging_orders_step"),
        ({"base_order_condition": "PRICE_CHANGE"}, "start_price_change_pct"),
        ({"take_profit_pct": 5, "take_profit_price": 120}, "take_profit_pct"),
        ({"amount_multiplier": 3}, "amount_multiplier"),
        ({"max_margin_multiple": 0.5}, "max_margin_multiple"),
        ({"grid_step": 0.01}, "grid_step"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_invalid_configs_are_refused_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        Combo(**{**C_CFG, **changes})


def test_venue_rules_are_checked_at_start() -> None:
    bars = make_bars([(100.0,) * 4] * 3)
    spot = Instrument(symbol="X", tick=0.01, lot=0.0001)
    with pytest.raises(ConfigError, match="margin instrument"):
        backtest(Combo(**C_CFG), bars, instrument=spot)
    with pytest.raises(ConfigError, match="leverage"):
        backtest(Combo(**{**C_CFG, "leverage": 5}), bars, instrument=INST)
    with pytest.raises(ConfigError, match="low_price"):
        backtest(Combo(**{**C_CFG, "low_price": 101, "high_price": 120}), bars, instrument=INST)
    tiny = INST.model_copy(update={"min_notional": 500.0})
    with pytest.raises(ConfigError, match="base_order_amount"):
        backtest(Combo(**C_CFG), bars, instrument=tiny)
    with pytest.raises(ConfigError, match="stop_loss_price"):
        backtest(
            Combo(**{**C_CFG, "stop_loss_pct": None, "stop_loss_price": 98.5}),
            bars,
            instrument=INST,
        )


def test_config_aliases_and_derived_amounts() -> None:
    a = Combo(
        leverage=10,
        initialMargin=100,
        baseOrderAmount=40,
        averagingOrdersQuantity=2,
        averagingOrdersStep=1,
        gridLevels=3,
        stopLossPct=5,
        liquidationBuffer=5,
    ).config
    assert a.averaging_margin == 60
    assert a.effective_grid_step == 1
    assert a.investment == 100


def test_checkpoint_restore_round_trip() -> None:
    bot, _ = run(C2_BARS)
    saved = bot.checkpoint()
    other = Combo(**C_CFG)
    other.restore(saved)
    np.testing.assert_array_equal(other.state, bot.state)
    assert other.lifecycle_state == bot.lifecycle_state
    assert other.transitions() == bot.transitions()
    assert json.loads(saved)["config"] == bot.config.model_dump(mode="json")
    assert other.metrics()["dca_extensions"] == 1
    with pytest.raises(ValueError, match="combo"):
        other.restore(json.dumps({"strategy": "grid", "state": []}))

"""BTD (buy the dip, STRATEGIES.md §3.4): the worked examples B1–B3, commands, add funds,
setup failures, config validation, checkpoints, parity on real data and property tests.

The investment is base: every run starts the account with that base (``holdings``) and a
negligible cash balance, so the bot can only trade with its own funds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars, random_walk
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import backtest
from simulator.result import BacktestResult
from strategies.btd import Btd, BtdConfig
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError

X = Instrument(symbol="X", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
CASH = 0.0  # the account holds only the bot's base: it trades its own funds alone

FLAT = (121, 121, 121, 121)


def b1_bot(**extra: object) -> Btd:
    return Btd(investment=4, low_price=100, high_price=146.41, grid_levels=5, **extra)


def run(
    bot: Btd,
    rows: list[tuple[float, float, float, float]],
    holdings: float = 4.0,
    mode: str = "compiled",
    instrument: Instrument = X,
) -> BacktestResult:
    return backtest(
        bot,
        make_bars(rows),
        instrument=instrument,
        cash=CASH,
        holdings={"X": holdings},
        symbol="X",
        mode=mode,  # type: ignore[arg-type]
        close_at_end=False,
    )


def placed(r: BacktestResult, bar: int) -> pd.DataFrame:
    o = r.orders
    return o[o["placed_bar"] == bar].reset_index(drop=True)


def open_at_end(r: BacktestResult) -> pd.DataFrame:
    o = r.orders
    return o[o["reason"] == "END_OF_DATA"].sort_values("price").reset_index(drop=True)


# ------------------------------------------------------------------ worked examples


@pytest.mark.nojit
def test_b1_layout_and_one_cycle() -> None:
    """B1: sell 2@121 → U = 120.879; BUY 1.0978@110 (dust 0.000242), BUY 1.2075@100, SELL
    1@133.10 and 1@146.41; 110 fills: +0.0978 X → SELL 1@121; 121 fills: BUY 1.0978@110 again."""
    bot = b1_bot()
    rows = [FLAT, FLAT, (121, 121, 110, 110), (110, 121, 110, 121), FLAT]
    r = run(bot, rows)
    start = placed(r, 0)
    sells = start[start["type"] == "LIMIT"]
    assert list(sells["side"]) == [-1, -1]
    assert list(sells["price"]) == [133.10, 146.41]
    assert list(sells["qty"]) == [1.0, 1.0]
    sale = start[start["type"] == "MARKET"].iloc[0]
    assert sale["side"] == -1 and sale["qty"] == 2.0
    f = r.fills
    assert f.iloc[0]["price"] == 121 and f.iloc[0]["fee"] == pytest.approx(0.242, abs=1e-9)
    u = (2 * 121 - f.iloc[0]["fee"]) / 2
    assert u == pytest.approx(120.879, abs=1e-9)
    buys = placed(r, 1).sort_values("price", ascending=False).reset_index(drop=True)
    assert list(buys["price"]) == [110.0, 100.0]
    assert list(buys["qty"]) == [1.0978, 1.2075]
    assert u - 1.0978 * 110 * 1.001 == pytest.approx(0.000242, abs=1e-9)  # dust
    # 110 fills → +0.0978 X, SELL 1@121.
    assert r.fills.iloc[1][["side", "qty", "price"]].tolist() == [1, 1.0978, 110.0]
    after = placed(r, 2)
    assert after[["side", "price", "qty"]].values.tolist() == [[-1, 121.0, 1.0]]
    # 121 fills → BUY 1.0978@110 again.
    assert r.fills.iloc[2][["side", "qty", "price"]].tolist() == [-1, 1.0, 121.0]
    again = placed(r, 3)
    assert again[["side", "price", "qty"]].values.tolist() == [[1, 110.0, 1.0978]]
    m = r.metrics
    assert m["base_profit"] == pytest.approx(0.0978, abs=1e-10)
    assert m["cycles"] == 1 and m["win_rate"] == 1.0
    assert m["bot_state"] == "ACTIVE"
    assert m["base_balance"] == pytest.approx(2.0978, abs=1e-12)
    assert m["free_base"] == pytest.approx(0.0978, abs=1e-12)  # the surplus stays free
    assert m["dust_quote"] == pytest.approx(0.000242, abs=1e-9)


def test_b2_trailing_down() -> None:
    """B2: both buys fill (+0.0978, +0.2075); cancel SELL@146.41; sell 1@100 → 99.9; BUY
    1.0977@90.91; levels 90.909…133.1; SL 150.80 → 137.09."""
    bot = b1_bot(stop_loss_enabled=True)
    rows = [FLAT, FLAT, (121, 121, 100, 100), (100, 100, 100, 100), (100, 100, 100, 100)]
    r = run(bot, rows)
    o = r.orders.set_index("order_id")
    buys = r.fills[(r.fills["side"] == 1)]
    assert buys[["qty", "price"]].values.tolist() == [[1.0978, 110.0], [1.2075, 100.0]]
    top = o[(o["price"] == 146.41)].iloc[0]
    assert top["status"] == "CANCELLED" and top["done_bar"] == 2
    trail_sale = r.fills[(r.fills["bar"] == 3)].iloc[0]
    assert trail_sale[["side", "qty", "price"]].tolist() == [-1, 1.0, 100.0]
    assert 100 * 1.0 - trail_sale["fee"] == pytest.approx(99.9, abs=1e-9)
    new_buy = placed(r, 3)
    assert new_buy[["side", "price", "qty"]].values.tolist() == [[1, 90.91, 1.0977]]
    m = r.metrics
    assert m["grid_profit_base"] == pytest.approx(0.0978 + 0.2075, abs=1e-10)
    assert m["shifts"] == 1
    levels = bot.grid_levels()
    assert levels[0] == pytest.approx(90.909, abs=1e-3)
    assert levels[-1] == pytest.approx(133.1, abs=1e-9)
    assert m["stop_loss_level"] == pytest.approx(137.09, abs=1e-9)
    assert m["bot_state"] == "ACTIVE"
    assert [t["trigger"] for t in bot.transitions()] == [
        "user_start",
        "trailing_started",
        "trailing_done",
    ]
    # Before the shift the stop loss sat at 150.80 = tick(146.41·1.03).
    before = run(b1_bot(stop_loss_enabled=True), [FLAT] * 2)
    assert before.metrics["stop_loss_level"] == pytest.approx(150.80, abs=1e-9)
    # What rests: 4 cells, one order each; the old cells keep their orders.
    rest = open_at_end(r)
    assert rest[["side", "price", "qty"]].values.tolist() == [
        [1, 90.91, 1.0977],
        [-1, 110.0, 1.0],
        [-1, 121.0, 1.0],
        [-1, 133.1, 1.0],
    ]


def test_b3_stop_loss_closes_to_base() -> None:
    """B3: both sells fill; 150.80 = tick(146.41·1.03) is reached; cancel all; quote 520.98849
    → buy 3.4513@150.80 (dust 0.01199396); base PnL −0.5487; STOPPED."""
    bot = b1_bot(stop_loss_enabled=True)
    rows = [
        FLAT,
        FLAT,
        (121, 146.41, 121, 146.41),
        (146.41, 150.80, 146.41, 150.80),
        (150.80, 150.80, 150.80, 150.80),
    ]
    r = run(bot, rows)
    sells = r.fills[(r.fills["side"] == -1) & (r.fills["bar"] == 2)]
    assert sells["price"].tolist() == [133.10, 146.41]
    rebuys = placed(r, 2).sort_values("price")
    assert rebuys["price"].tolist() == [121.0, 133.10]
    assert rebuys["qty"].tolist() == [1.0978, 1.0978]
    # At 150.80 every order is cancelled and the quote buys base back.
    o = r.orders
    resting = o[(o["type"] == "LIMIT") & (o["status"] != "FILLED")]
    assert len(resting) == 4
    assert (resting["status"] == "CANCELLED").all() and (resting["done_bar"] == 3).all()
    assert (resting["reason"] == "USER").all()
    close = r.fills.iloc[-1]
    assert close[["side", "qty", "price"]].tolist() == [1, 3.4513, 150.80]
    m = r.metrics
    quote_before = 241.758 + 133.1 * 0.999 + 146.41 * 0.999
    assert quote_before == pytest.approx(520.98849, abs=1e-9)
    assert m["quote_balance"] == pytest.approx(0.01199396, abs=1e-9)  # dust
    assert m["realized_pnl"] == pytest.approx(-0.5487, abs=1e-10)
    assert m["base_balance"] == pytest.approx(3.4513, abs=1e-12)
    assert m["bot_state"] == "STOPPED"
    assert bot.transitions()[-2:] == [
        {"bar": 3, "from": "ACTIVE", "to": "CLOSING", "trigger": "stop_loss_hit"},
        {"bar": 4, "from": "CLOSING", "to": "STOPPED", "trigger": "done"},
    ]


# ---------------------------------------------------------------------- other exits


def test_take_profit_closes_to_base_and_completes() -> None:
    bot = b1_bot(take_profit_enabled=True, take_profit_pct=2)  # 2% of 4 = 0.08 X
    rows = [FLAT, FLAT, (121, 121, 110, 110), (110, 110, 110, 110), (110, 110, 110, 110)]
    r = run(bot, rows)
    # The 110 buy (+0.0978) reaches the target: no counter-sell, everything is cancelled and the
    # bot's quote (241.758 − 120.878758) buys base at the next open.
    assert len(placed(r, 2)) == 1
    close = r.fills.iloc[-1]
    assert close[["side", "qty", "price"]].tolist() == [1, 1.0978, 110.0]
    m = r.metrics
    assert m["bot_state"] == "COMPLETED"
    assert m["realized_pnl"] == pytest.approx(2 + 1.0978 + 1.0978 - 4, abs=1e-10)
    assert (r.orders["status"] != "OPEN").all()
    assert open_at_end(r).empty


def test_user_stop_cancels_everything_and_keeps_balances() -> None:
    bot = b1_bot(commands={2: "STOP"})
    r = run(bot, [FLAT] * 5)
    o = r.orders
    assert (o["done_bar"] <= 2).all() and (o["placed_bar"] <= 1).all()
    assert open_at_end(r).empty
    m = r.metrics
    assert m["bot_state"] == "STOPPED"
    assert m["base_balance"] == pytest.approx(2.0) and m["quote_balance"] == pytest.approx(241.758)


def test_close_signal_buys_back_base_and_kill_sells_it() -> None:
    r = run(b1_bot(commands={2: "CLOSE"}), [FLAT] * 5)
    close = r.fills.iloc[-1]
    qty = np.floor(241.758 / (121 * 1.001) * 1e4 + 1e-9) / 1e4
    assert close[["side", "qty", "price"]].tolist() == [1, qty, 121.0]
    assert r.metrics["bot_state"] == "STOPPED"
    r = run(b1_bot(commands={2: "KILL"}), [FLAT] * 5)
    close = r.fills.iloc[-1]
    assert close[["side", "qty", "price"]].tolist() == [-1, 2.0, 121.0]
    assert r.metrics["bot_state"] == "STOPPED" and r.metrics["base_balance"] == 0


def test_pause_defers_counter_orders_until_resume() -> None:
    bot = b1_bot(commands={1: "PAUSE", 3: "RESUME", 4: 1})  # 1: an indicator signal, ignored
    rows = [FLAT, FLAT, (121, 121, 110, 110), (110, 110, 110, 110), FLAT, FLAT]
    r = run(bot, rows)
    assert r.fills.iloc[1][["side", "price"]].tolist() == [1, 110.0]  # fills while paused
    assert placed(r, 2).empty  # ...but no counter-order
    assert placed(r, 3)[["side", "price", "qty"]].values.tolist() == [[-1, 121.0, 1.0]]
    m = r.metrics
    assert m["bot_state"] == "ACTIVE" and m["ignored_signals"] == 1
    assert [t["trigger"] for t in bot.transitions()] == ["user_start", "user_pause", "user_resume"]


def test_add_funds_scales_cells_and_sells_the_buy_cells_extra() -> None:
    """B=4 → 6: Q 1 → 1.5; the sells become 1.5; the buy cells' 2×0.5 is sold (120.879) and
    each U grows by 60.4395 → BUY 1.6467@110 and 1.8113@100."""
    bot = b1_bot(add_funds={1: 2.0})
    r = run(bot, [FLAT] * 4, holdings=6.0)
    at1 = placed(r, 1)
    new_sells = at1[(at1["side"] == -1) & (at1["type"] == "LIMIT")]
    assert new_sells[["price", "qty"]].values.tolist() == [[133.10, 1.5], [146.41, 1.5]]
    sale = at1[at1["type"] == "MARKET"].iloc[0]
    assert sale["side"] == -1 and sale["qty"] == 1.0
    buys = placed(r, 2).sort_values("price", ascending=False)
    u = 120.879 + 120.879 / 2
    assert buys["qty"].tolist() == [
        np.floor(u / 110.11 * 1e4 + 1e-9) / 1e4,
        np.floor(u / 100.1 * 1e4 + 1e-9) / 1e4,
    ]
    assert buys["qty"].tolist() == [1.6467, 1.8113]
    m = r.metrics
    assert m["investment_base"] == 6.0 and m["add_funds_accepted"] == 1
    assert len(open_at_end(r)) == 4


def test_count_mode_anchored_at_the_start_price_matches_b1() -> None:
    ranged = run(b1_bot(), [FLAT] * 3)
    counted = run(Btd(investment=4, levels_down=2, levels_up=2, grid_step=10), [FLAT] * 3)
    cols = ["placed_bar", "side", "type", "price", "qty", "status"]
    pd.testing.assert_frame_equal(ranged.orders[cols], counted.orders[cols])
    split = Btd(investment=4, grid_levels=5, levels_distribution=50, grid_step=10)
    assert split.config.counts() == (2, 2)


def test_minimums_fail_setup_and_funds_refusal_pauses() -> None:
    strict = X.model_copy(update={"min_notional": 200.0})
    r = run(b1_bot(), [FLAT] * 3, instrument=strict)
    assert r.orders.empty
    assert r.metrics["bot_state"] == "ERROR" and r.metrics["setup_failed"]
    # Only 1 of the 4 base is there: the second sell and the sale are refused → PAUSED with
    # balance polls (0…300 s); none finds the base, so the bot stays paused.
    bot = b1_bot()
    r = run(bot, [FLAT] * 8, holdings=1.0)
    assert (r.orders["status"] == "REJECTED").sum() == 2
    m = r.metrics
    assert m["bot_state"] == "PAUSED" and m["funds_pauses"] == 1
    assert bot.transitions()[-1]["trigger"] == "insufficient_funds"


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"low_price": 120, "high_price": 100, "grid_levels": 5}, "low_price"),
        ({"low_price": 100, "grid_levels": 5}, "high_price"),
        ({"low_price": 100, "high_price": 120}, "grid_step"),
        ({"low_price": 100, "high_price": 120, "grid_levels": 5, "grid_step": 1}, "grid_step"),
        ({"levels_down": 2, "levels_up": 2}, "grid_step"),
        ({"levels_down": 0, "levels_up": 0, "grid_step": 1}, "levels_down"),
        ({"grid_step": 1}, "levels_down"),
        ({"low_price": 1, "high_price": 1000, "grid_step": 0.5}, "grid_step"),
        ({"low_price": 100, "high_price": 120, "grid_levels": 4}, "grid_levels"),
        ({"low_price": 100, "high_price": 120, "grid_step": 0.01}, "grid_step"),
        (
            {"low_price": 100, "high_price": 120, "grid_levels": 5, "stop_loss_pct": 101},
            "stop_loss_pct",
        ),
        (
            {"low_price": 100, "high_price": 120, "grid_levels": 5, "take_profit_enabled": True},
            "take_profit_pct",
        ),
    ],
)
def test_invalid_configs_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        Btd(investment=4, **fields)
    assert field in str(err.value)
    with pytest.raises(ConfigError, match="investment"):
        Btd(investment=0, low_price=100, high_price=120, grid_levels=5)


def test_camel_case_aliases_and_margin_refused() -> None:
    c = BtdConfig.parse(
        {"investment": 4, "lowPrice": 100, "highPrice": 146.41, "gridLevels": 5, "trailing": False}
    )
    assert c.low_price == 100 and c.grid_levels == 5
    perp = Instrument(symbol="X", margin=True, tick=0.01, lot=0.0001)
    with pytest.raises(ConfigError, match="spot"):
        run(b1_bot(), [FLAT] * 2, instrument=perp)


def test_checkpoint_round_trip(eth_btc: pd.DataFrame) -> None:
    bot = parity_bot()
    backtest(bot, eth_btc.iloc[:1500], **parity_settings(), close_at_end=False)
    saved = bot.checkpoint()
    other = parity_bot()
    other.restore(saved)
    np.testing.assert_array_equal(other.state, bot.state)
    assert other.lifecycle_state == bot.lifecycle_state
    assert other.transitions() == bot.transitions()
    assert other.metrics() == bot.metrics()
    with pytest.raises(ValueError, match="btd"):
        other.restore(saved.replace('"btd"', '"loop"'))


# ------------------------------------------------------------------ parity on real data


def parity_bot() -> Btd:
    return Btd(
        investment=20,
        levels_down=8,
        levels_up=8,
        grid_step=0.8,
        stop_loss_enabled=True,
        stop_loss_pct=15,
    )


def parity_settings() -> dict[str, object]:
    eth = Instrument(
        symbol="ETH-BTC", tick=1e-6, lot=0.001, min_notional=1e-4, maker_fee=0.001, taker_fee=0.001
    )
    return {"instrument": eth, "cash": 0.0, "holdings": {"ETH-BTC": 20.0}, "symbol": "ETH-BTC"}


def test_compiled_and_python_paths_agree_on_real_data(eth_btc: pd.DataFrame) -> None:
    compiled_bot, python_bot = parity_bot(), parity_bot()
    compiled = backtest(compiled_bot, eth_btc, mode="compiled", **parity_settings())
    python = backtest(python_bot, eth_btc, mode="python", **parity_settings())
    assert len(compiled.fills) > 100
    assert compiled.metrics["shifts"] > 0 and compiled.metrics["cycles"] > 20
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    np.testing.assert_array_equal(compiled_bot.state, python_bot.state)


# ----------------------------------------------------------------------- properties


def max_open_orders(r: BacktestResult, n_bars: int) -> int:
    o = r.orders[r.orders["status"] != "REJECTED"]
    done = np.where(o["done_bar"] < 0, n_bars, o["done_bar"])
    placed_bar = o["placed_bar"].to_numpy()
    return max(
        (int(((placed_bar <= t) & (done > t)).sum()) for t in range(n_bars)),
        default=0,
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    count_mode=st.booleans(),
    n_side=st.integers(2, 6),
    step=st.floats(0.5, 2.0),
    trailing=st.booleans(),
    sl=st.sampled_from([None, 3.0, 8.0]),
    stop_bar=st.sampled_from([None, 150, 320]),
)
def test_properties_on_random_walks(
    seed: int,
    count_mode: bool,
    n_side: int,
    step: float,
    trailing: bool,
    sl: float | None,
    stop_bar: int | None,
) -> None:
    n_bars = 400
    bars = random_walk(n_bars, seed, vol=0.004)
    inst = X.model_copy(update={"min_notional": 5.0})
    invest = 12.0
    layout: dict[str, object]
    if count_mode:
        layout = {"levels_down": n_side, "levels_up": n_side, "grid_step": step}
    else:
        layout = {"low_price": 90.0, "high_price": 110.0, "grid_levels": 2 * n_side + 1}
    bot = Btd(
        investment=invest,
        trailing=trailing,
        stop_loss_enabled=sl is not None,
        stop_loss_pct=sl or 3.0,
        commands={stop_bar: "STOP"} if stop_bar is not None else {},
        **layout,  # type: ignore[arg-type]
    )
    r = backtest(
        bot,
        bars,
        instrument=inst,
        cash=CASH,
        holdings={"X": invest},
        symbol="X",
        close_at_end=False,
    )
    n_levels = bot.config.n_levels()
    m = r.metrics
    o = r.orders
    # Never more than one order per cell, plus one market order in flight.
    assert max_open_orders(r, n_bars) <= n_levels
    # Nothing below the minimums is ever sent.
    assert not (o["reason"] == "SKIPPED_MIN").any()
    limits = o[o["type"] == "LIMIT"]
    assert (limits["qty"] * limits["price"] >= 5.0 - 1e-9).all()
    # The bot's books are the fill ledger: base and quote conserved net of fees.
    f = r.fills
    signed = f["side"] * f["qty"]
    assert m["base_balance"] == pytest.approx(invest + signed.sum(), abs=1e-9)
    flows = -(signed * f["price"]).sum() - f["fee"].sum()
    assert m["quote_balance"] == pytest.approx(flows, abs=1e-7)
    assert r.equity.iloc[-1] == pytest.approx(
        CASH + flows + m["base_balance"] * bars["close"].iloc[-1], rel=1e-9
    )
    assert m["bot_fees"] == pytest.approx(f["fee"].sum(), rel=1e-12)
    # Profit is the exact base delta of every buy: Σ(b − Q) over the cells' buy fills.
    q = np.floor(invest / (n_levels - 1) * 1e4 + 1e-9) / 1e4
    cell_buys = o[(o["tag"] >= 900_000) & (o["side"] == 1) & (o["status"] == "FILLED")]
    assert m["cycles"] == len(cell_buys)
    assert m["grid_profit_base"] == pytest.approx(
        cell_buys["qty"].sum() - q * len(cell_buys), abs=1e-9
    )
    # Sells carry the cell's Q (less only if the bot's base ran short); nothing is refused.
    cell_sells = o[(o["tag"] >= 900_000) & (o["side"] == -1)]
    assert (cell_sells["qty"] <= q + 1e-12).all()
    # (A closing buy sized at the trigger price is trimmed by the venue when the next open is
    # higher: it spends all the quote, the rest is cancelled.)
    assert (o[o["tag"] != 3]["reason"] != "INSUFFICIENT_FUNDS").all()
    # A trailing shift happens only with trailing on; a stopped bot holds nothing.
    if not trailing:
        assert m["shifts"] == 0
    if m["bot_state"] == "STOPPED":
        stopped_at = bot.transitions()[-1]["bar"]
        assert (o["placed_bar"] <= stopped_at).all()
        assert (o["status"] != "OPEN").all() and (o["reason"] != "END_OF_DATA").all()
    if stop_bar is not None and m["bot_state"] == "STOPPED" and sl is None:
        assert bot.transitions()[-1]["bar"] == stop_bar


# ------------------------------------------------- partial fills, external cancels


@pytest.mark.parametrize("seed", [4, 8, 12])
def test_partial_fills_and_add_funds_keep_the_books(seed: int) -> None:
    """Volume caps cut orders into slices: the books still follow the fills, and nothing the
    bot sends is refused (add funds re-places a partly filled cell for its remainder)."""
    bars = random_walk(400, seed, vol=0.004)
    bars["volume"] = 3.0
    bot = Btd(investment=12, levels_down=4, levels_up=4, grid_step=1.0, add_funds={150: 3.0})
    r = backtest(
        bot,
        bars,
        instrument=X.model_copy(update={"min_notional": 5.0}),
        cash=CASH,
        holdings={"X": 15.0},
        symbol="X",
        close_at_end=False,
        participation=0.2,
    )
    o, f, m = r.orders, r.fills, r.metrics
    assert f.groupby("order_id").size().max() > 1  # orders filled in slices
    assert m["add_funds_accepted"] == 1 and m["funds_pauses"] == 0
    assert not (o["reason"] == "INSUFFICIENT_FUNDS").any()
    signed = f["side"] * f["qty"]
    assert m["base_balance"] == pytest.approx(15.0 + signed.sum(), abs=1e-9)
    assert m["quote_balance"] == pytest.approx(-(signed * f["price"]).sum() - f["fee"].sum())


def test_an_external_cancel_leaves_the_cell_idle() -> None:
    from tradetower import kernel_abi as K

    bot = b1_bot()
    run(bot, [FLAT] * 3)
    event = np.zeros(K.N_EVENT)
    event[K.E_TYPE] = K.EV_CANCEL
    event[K.E_TAG] = 1_000_003  # cell 3: SELL 1@146.41
    event[K.E_CODE] = K.R_USER
    event[K.E_TIME] = 1.0
    actions = np.zeros((16, K.N_ACTION))
    assert Btd.kernel(bot.params, bot.state, event, actions) == 0  # not re-placed
    cells = bot.cells()
    assert cells["state"].tolist() == [1, 1, 2, 0]  # BUY, BUY, SELL, IDLE
    assert bot.metrics()["external_cancels"] == 1

"""The shared risk rules (STRATEGIES.md §4) as the simulator applies them to every bot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import make_bars

from simulator import backtest
from strategies.btd import Btd
from strategies.combo import Combo
from strategies.dca import Dca
from strategies.dca_futures import DcaFutures
from strategies.futures_grid import FuturesGrid
from strategies.grid import Grid
from strategies.loop import Loop
from strategies.twap import Twap
from tradetower import kernel_abi as K
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.risk import RiskConfig
from tradetower.strategy import Event, Strategy, StrategyContext

X = Instrument(symbol="X/USD", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
PERP = Instrument(
    symbol="X-PERP",
    asset_class="CRYPTO_FUTURES",
    tick=0.01,
    lot=0.001,
    maker_fee=0.0002,
    taker_fee=0.0005,
    leverage=5,
    margin=True,
)
FLAT = (100.0, 100.0, 100.0, 100.0)


class Orders(Strategy):
    """Places the given (side, qty, limit price or None) orders at the start, and
    ``later`` at a timer 60 s on; records every cancel it is told about."""

    def __init__(
        self,
        orders: list[tuple[int, float, float | None]],
        later: list[tuple[int, float, float | None]] | None = None,
    ) -> None:
        self.orders = orders
        self.later = later or []
        self.cancels: list[tuple[int, int]] = []

    def _place(self, ctx: StrategyContext, orders: list[tuple[int, float, float | None]]) -> None:
        for side, qty, price in orders:
            if price is None:
                ctx.place(side, qty)
            else:
                ctx.place(side, qty, type=K.LIMIT, price=price)

    def on_start(self, ctx: StrategyContext) -> None:
        self._place(ctx, self.orders)
        if self.later:
            ctx.set_timer(ctx.now_ms + 60_000)

    def on_timer(self, ctx: StrategyContext, event: Event) -> None:
        self._place(ctx, self.later)

    def on_cancel(self, ctx: StrategyContext, event: Event) -> None:
        self.cancels.append((event.id, event.code))


def statuses(r: Any) -> list[tuple[int, str, str]]:
    return list(zip(r.orders.order_id, r.orders.status, r.orders.reason, strict=True))


# ------------------------------------------------------------------------------ pre-trade


def test_an_order_over_the_notional_cap_is_refused_and_the_bot_told() -> None:
    bot = Orders([(1, 2.0, 99.0), (1, 1.0, 98.0)])
    risk = RiskConfig(max_order_notional=150)
    r = backtest(bot, make_bars([FLAT] * 3), instrument=X, cash=1_000, risk=risk)
    assert statuses(r)[:2] == [(0, "REJECTED", "RISK_NOTIONAL"), (1, "CANCELLED", "END_OF_DATA")]
    assert bot.cancels == [(0, K.R_RISK_NOTIONAL)]
    events = r.risk_events
    assert events[["bar", "rule", "action", "order_id"]].values.tolist() == [
        [0, "max_order_notional", "REJECT", 0]
    ]
    assert r.metrics["risk_rejected_max_order_notional"] == 1
    assert r.metrics["risk_rejections"] == 1


def test_leverage_over_the_cap_is_refused() -> None:
    perp2 = PERP.model_copy(update={"leverage": 2.0})
    bot = Orders([(1, 35.0, None), (1, 15.0, None)])  # 3 500 and 1 500 against 1 000 equity
    r = backtest(
        bot, make_bars([FLAT] * 3), instrument=perp2, cash=1_000, risk=RiskConfig(max_leverage=3)
    )
    assert statuses(r)[:2] == [(0, "REJECTED", "RISK_LEVERAGE"), (1, "FILLED", "")]
    assert bot.cancels == [(0, K.R_RISK_LEVERAGE)]
    # a leverage setting above the cap refuses every exposure-increasing order
    bot = Orders([(1, 1.0, None)])
    r = backtest(
        bot, make_bars([FLAT] * 3), instrument=PERP, cash=1_000, risk=RiskConfig(max_leverage=3)
    )
    assert statuses(r) == [(0, "REJECTED", "RISK_LEVERAGE")]
    assert r.metrics["risk_rejected_max_leverage"] == 1


def test_the_61st_order_of_a_minute_is_refused_and_the_count_recovers_after_60_s() -> None:
    ladder = [(1, 0.01, 50.0 - 0.1 * k) for k in range(61)]
    bot = Orders(ladder, later=[(1, 0.01, 40.0), (1, 0.01, 39.0)])
    r = backtest(bot, make_bars([FLAT] * 4), instrument=X, cash=1_000, risk=RiskConfig())
    o = r.orders
    assert (o.placed_bar[:61] == 0).all() and (o.reason[:60] == "END_OF_DATA").all()
    assert o.reason[60] == "RISK_RATE" and o.status[60] == "REJECTED"
    assert bot.cancels == [(60, K.R_RISK_RATE)]
    # 60 s on: the first orders left the rolling minute
    assert o.placed_bar[61:].tolist() == [1, 1]
    assert o.status[61:].tolist() == ["CANCELLED", "CANCELLED"]
    assert r.metrics["risk_rejected_max_orders_per_minute"] == 1


def test_pacing_spreads_one_reaction_over_the_spacing() -> None:
    # 3 orders a minute, 30 s apart: the k-th order of the reaction goes out at k * 30 s, so
    # no rolling minute ever holds more than 2 of them (the first has left at 60 s): all pass.
    bot = Orders([(1, 0.01, 50.0)] * 5)
    risk = RiskConfig(max_orders_per_minute=3, min_order_spacing_ms=30_000)
    r = backtest(bot, make_bars([FLAT] * 2), instrument=X, cash=1_000, risk=risk)
    assert r.orders.reason.tolist() == ["END_OF_DATA"] * 5
    # 2 a minute, 10 s apart: the third (at 20 s) would be the third in a minute; refused orders
    # are not sent, so they do not move the pacing clock and the rest are refused too.
    risk = RiskConfig(max_orders_per_minute=2, min_order_spacing_ms=10_000)
    r = backtest(bot, make_bars([FLAT] * 2), instrument=X, cash=1_000, risk=risk)
    assert r.orders.reason.tolist() == ["END_OF_DATA"] * 2 + ["RISK_RATE"] * 3


def test_without_risk_settings_nothing_is_gated_or_recorded() -> None:
    bot = Orders([(1, 0.01, 50.0 - 0.1 * k) for k in range(70)])
    r = backtest(bot, make_bars([FLAT] * 2), instrument=X, cash=1_000)
    assert (r.orders.reason == "END_OF_DATA").all() and len(r.orders) == 70
    assert r.risk_events.empty and "risk_rejections" not in r.metrics


# ---------------------------------------------------------------------------- intra-trade

G1 = {"low_price": 100, "high_price": 146.41, "grid_levels": 5, "investment": 520.8203}


def d1() -> Dca:
    return Dca(
        base_order_amount=400,
        averaging_orders_amount=600,
        averaging_orders_quantity=3,
        averaging_orders_step=2,
        take_profit_pct=3,
    )


def test_drawdown_limit_closes_a_grid_with_risk_limit() -> None:
    bot = Grid(**G1)
    rows = [(121.0,) * 4] * 2 + [(121, 121, 105, 106), (106, 106, 104, 104), (104.0,) * 4]
    r = backtest(
        bot, make_bars(rows), instrument=X, cash=1_000, risk=RiskConfig(max_drawdown_pct=3)
    )
    assert bot.transitions()[-2:] == [
        {"bar": 2, "from": "ACTIVE", "to": "CLOSING", "trigger": "risk_limit"},
        {"bar": 3, "from": "CLOSING", "to": "STOPPED", "trigger": "done"},
    ]
    assert (r.orders.status != "OPEN").all() and r.positions.iloc[-1, 0] == 0.0
    ev = r.risk_events.iloc[0]
    assert (ev.bar, ev.rule, ev.action) == (2, "max_drawdown", "RISK_CLOSE")
    assert ev.value == pytest.approx((1_000 - 963.2728) / 1_000 * 100, abs=1e-9)
    assert r.metrics["risk_drawdown_closes"] == 1


def test_drawdown_limit_closes_a_dca_bot_with_risk_limit() -> None:
    bot = d1()
    rows = [FLAT, FLAT, (100, 100, 93.5, 94), (94.0,) * 4, (94.0,) * 4]
    r = backtest(
        bot, make_bars(rows), instrument=X, cash=2_000, risk=RiskConfig(max_drawdown_pct=1)
    )
    assert bot.transitions()[-2:] == [
        {"bar": 2, "from": "ACTIVE", "to": "CLOSING", "trigger": "risk_limit"},
        {"bar": 3, "from": "CLOSING", "to": "STOPPED", "trigger": "done"},
    ]
    assert (r.orders.status != "OPEN").all() and r.positions.iloc[-1, 0] == 0.0
    assert r.risk_events[["bar", "rule"]].values.tolist() == [[2, "max_drawdown"]]


def test_a_drawdown_below_the_limit_does_nothing() -> None:
    bot = d1()
    rows = [FLAT, FLAT, (100, 100, 93.5, 94), (94.0,) * 4, (94.0,) * 4]
    r = backtest(
        bot, make_bars(rows), instrument=X, cash=2_000, risk=RiskConfig(max_drawdown_pct=50)
    )
    assert r.risk_events.empty and r.metrics["bot_state"] == "STOPPED"  # stopped at the end
    assert all(t["trigger"] != "risk_limit" for t in bot.transitions())


def hourly(rows: list[tuple[float, ...]], start: str) -> pd.DataFrame:
    bars = make_bars(rows)  # type: ignore[arg-type]
    bars.index = pd.date_range(start, periods=len(rows), freq="1h", tz="UTC")
    return bars.rename_axis("timestamp")


def test_daily_loss_pauses_the_bot_until_00_00_utc() -> None:
    bot = d1()
    rows = [FLAT, FLAT, (100, 100, 94, 95)] + [(95.0,) * 4] * 4
    bars = hourly(rows, "2024-01-01 21:00")  # bar 3 opens at 00:00 UTC
    r = backtest(bot, bars, instrument=X, cash=10_000, risk=RiskConfig(daily_loss_limit=20))
    assert bot.transitions()[1:3] == [
        {"bar": 2, "from": "ACTIVE", "to": "PAUSED", "trigger": "user_pause"},
        {"bar": 3, "from": "PAUSED", "to": "ACTIVE", "trigger": "user_resume"},
    ]
    ev = r.risk_events
    assert ev[["bar", "rule", "action"]].values.tolist() == [
        [2, "daily_loss", "PAUSE"],
        [3, "new_trading_day", "RESUME"],
    ]
    assert ev.time[1] == pd.Timestamp("2024-01-02 00:00", tz="UTC")
    assert ev.value[0] == pytest.approx(-27.07809, abs=1e-6)  # the day's PnL at the pause
    assert r.metrics["risk_daily_pauses"] == 1


def test_a_daily_loss_under_the_limit_does_not_pause() -> None:
    bot = d1()
    rows = [FLAT, FLAT, (100, 100, 94, 95)] + [(95.0,) * 4] * 4
    bars = hourly(rows, "2024-01-01 21:00")
    r = backtest(bot, bars, instrument=X, cash=10_000, risk=RiskConfig(daily_loss_limit=30))
    assert r.risk_events.empty
    assert [t["to"] for t in bot.transitions()][:2] == ["ACTIVE", "CLOSING"]


# ---------------------------------------------------------------------------- kill switch


def kill_cases() -> dict[str, tuple[Any, Instrument, list[tuple[float, ...]], dict[str, Any]]]:
    """Every built-in bot with a position open when the kill switch trips at bar 3."""
    perp10 = PERP.model_copy(update={"leverage": 10.0, "lot": 0.0001})
    dip = [FLAT, FLAT, (100, 100, 97.5, 98)] + [(98.0,) * 4] * 4
    return {
        "grid": (
            Grid(**G1),
            X,
            [(121.0,) * 4] * 2 + [(121, 121, 105, 110)] + [(110.0,) * 4] * 4,
            {},
        ),
        "dca": (d1(), X, dip, {}),
        "dca_futures": (
            DcaFutures(
                leverage=5,
                base_order_amount=100,
                averaging_orders_amount=300,
                averaging_orders_quantity=2,
                averaging_orders_step=2,
                amount_multiplier=2,
                take_profit_pct=2,
            ),
            PERP.model_copy(update={"lot": 0.0001}),
            dip,
            {},
        ),
        "btd": (
            Btd(investment=4, low_price=100, high_price=146.41, grid_levels=5),
            X,
            [(121.0,) * 4] * 2 + [(121, 121, 105, 110)] + [(110.0,) * 4] * 4,
            {"holdings": {"ASSET": 4.0}, "cash": 0.0},
        ),
        "combo": (
            Combo(
                leverage=10,
                base_order_amount=40,
                averaging_orders_amount=60,
                averaging_orders_quantity=2,
                averaging_orders_step=1,
                grid_levels=3,
                stop_loss_pct=5,
                liquidation_buffer=5,
            ),
            perp10,
            [FLAT, (100, 100.2, 99.8, 100), (100, 100, 98.5, 99)] + [(99.0,) * 4] * 4,
            {},
        ),
        "loop": (
            Loop(investment=1001, low_price=90, high_price=110, order_distance=1, order_count=10),
            X,
            [FLAT, FLAT, (100, 100, 96, 97)] + [(97.0,) * 4] * 4,
            {"cash": 2_000.0},
        ),
        "futures_grid": (
            FuturesGrid(
                direction="NEUTRAL",
                grid_mode="ARITHMETIC",
                low_price=90,
                high_price=110,
                grid_quantity=5,
                investment=100,
                leverage=5,
            ),
            PERP,
            [FLAT, FLAT, (100, 100, 93, 94)] + [(94.0,) * 4] * 4,
            {},
        ),
        # TWAP stops without selling what it bought: the kill switch closes that itself
        "twap": (
            Twap(direction="BUY", total_amount=500, duration=600, frequency=60),
            X,
            [FLAT] * 8,
            {},
        ),
    }


@pytest.mark.parametrize("name", list(kill_cases()))
@pytest.mark.parametrize("mode", ["compiled", "python"])
def test_kill_switch_stops_every_bot_flat_with_no_open_orders(name: str, mode: str) -> None:
    bot, inst, rows, kw = kill_cases()[name]
    kw = {"cash": 10_000.0, **kw}
    r = backtest(
        bot, make_bars(rows), instrument=inst, kill_at=3, mode=mode, close_at_end=False, **kw
    )
    assert r.positions.iloc[3, 0] != 0.0  # it held a position when the switch tripped
    assert r.metrics["bot_state"] == "STOPPED"
    closing = [t for t in bot.transitions() if t["to"] == "CLOSING"]
    assert [(t["bar"], t["trigger"]) for t in closing] == [(3, "kill_switch")]
    assert (r.orders.status != "OPEN").all()
    assert r.positions.iloc[-1, 0] == 0.0
    assert r.risk_events[["bar", "rule", "action"]].values.tolist()[0] == [3, "kill_switch", "KILL"]
    assert r.metrics["risk_kill_switch"] == 1
    # latched: every fill after the kill reduces the position
    after = r.fills[r.fills.bar > 3]
    assert ((after.side > 0) == (r.positions.iloc[3, 0] < 0)).all()


def test_risk_events_are_saved_with_the_run(tmp_path: Path) -> None:
    bars = make_bars([FLAT, FLAT, (100, 100, 97.5, 98)] + [(98.0,) * 4] * 4)
    r = backtest(d1(), bars, instrument=X, cash=10_000, kill_at=3)
    saved = pd.read_parquet(r.save(tmp_path / "run") / "risk_events.parquet")
    assert saved[["bar", "rule", "action"]].values.tolist() == [[3, "kill_switch", "KILL"]]


def test_kill_switch_by_timestamp_and_bad_values() -> None:
    bars = make_bars([FLAT, FLAT, (100, 100, 97.5, 98)] + [(98.0,) * 4] * 4)
    r = backtest(d1(), bars, instrument=X, cash=10_000, kill_at="2024-01-01 00:02:30")
    assert r.risk_events.bar[0] == 3 and r.metrics["bot_state"] == "STOPPED"
    with pytest.raises(ConfigError, match=r"bar 99 is outside 0\.\.6"):
        backtest(d1(), bars, instrument=X, kill_at=99)
    with pytest.raises(ConfigError, match="after the last bar"):
        backtest(d1(), bars, instrument=X, kill_at="2030-01-01")


# ------------------------------------------------------------------------ both driver paths


def test_python_and_compiled_paths_apply_the_same_rules() -> None:
    rows = [(121.0,) * 4] * 2 + [(121, 121, 112, 113)] + [(113.0,) * 4] * 3 + [(113, 113, 104, 105)]
    rows += [(105.0,) * 4] * 3
    risk = RiskConfig(max_order_notional=300, max_drawdown_pct=3, max_orders_per_minute=2)
    runs = {}
    for mode in ("compiled", "python"):
        bot = Grid(**G1)
        runs[mode] = (
            bot,
            backtest(bot, make_bars(rows), instrument=X, cash=1_000, risk=risk, mode=mode),
        )
    (cb, c), (pb, p) = runs["compiled"], runs["python"]
    assert c.risk_events[["bar", "rule", "order_id"]].values.tolist() == [
        [0, "max_orders_per_minute", 2],
        [6, "max_drawdown", -1],
    ]
    pd.testing.assert_frame_equal(c.orders, p.orders)
    pd.testing.assert_frame_equal(c.fills, p.fills)
    pd.testing.assert_frame_equal(c.risk_events, p.risk_events)
    assert cb.transitions() == pb.transitions()

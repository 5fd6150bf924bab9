"""The shared risk rules' settings, compiled checks and kill switch (tradetower.risk)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import make_bars, real_file

from simulator import backtest
from strategies.grid import Grid
from tradetower import kernel_abi as K
from tradetower import risk_nb as R
from tradetower.bots import codes as C
from tradetower.bots.commands import forced_close_trigger_nb
from tradetower.cli import main
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.risk import RiskConfig, kill_switch_actions

MINUTE = 60_000.0


@pytest.mark.nojit
def test_risk_config_defaults_and_validation() -> None:
    cfg = RiskConfig()
    assert (cfg.max_orders_per_minute, cfg.min_order_spacing_ms) == (60, 100)
    assert cfg.max_order_notional is None and cfg.max_drawdown_pct is None
    with pytest.raises(ConfigError, match="max_drawdown_pct"):
        RiskConfig.parse({"max_drawdown_pct": 120})
    with pytest.raises(ConfigError, match="max_leverage"):
        RiskConfig.parse({"max_leverage": 0})


@pytest.mark.nojit
def test_rate_limiter_paces_one_reaction_and_counts_a_rolling_minute() -> None:
    limit = 3
    rate = np.zeros(R.RT_RING + limit)
    accepted = []
    for _ in range(5):  # one reaction at t = 0: the k-th order goes out at k * 100 ms
        at = R.paced_time_nb(rate, 0.0, 100.0)
        if R.rate_allows_nb(rate, at, limit):
            R.rate_record_nb(rate, at, limit)
            accepted.append(at)
    assert accepted == [0.0, 100.0, 200.0]
    assert not R.rate_allows_nb(rate, MINUTE - 1.0, limit)
    assert R.rate_allows_nb(rate, MINUTE, limit)  # the first has left (t − 60 s, t]
    assert R.paced_time_nb(rate, 0.0, 100.0) == 300.0


@pytest.mark.nojit
def test_pre_trade_checks() -> None:
    assert R.notional_over_cap_nb(2.0, 100.0, 150.0)
    assert not R.notional_over_cap_nb(1.5, 100.0, 150.0)
    assert not R.notional_over_cap_nb(2.0, 100.0, 0.0)  # off
    assert not R.notional_over_cap_nb(2.0, math.nan, 150.0)  # no price yet
    # 1 000 equity, cap 3: a buy to 35 units at 100 is 3.5x, to 25 units 2.5x
    assert R.leverage_over_cap_nb(3.0, 1.0, 0.0, 0.0, 1.0, 35.0, 100.0, 1_000.0)
    assert not R.leverage_over_cap_nb(3.0, 1.0, 0.0, 0.0, 1.0, 25.0, 100.0, 1_000.0)
    # a setting above the cap refuses opening orders, never reducing ones
    assert R.leverage_over_cap_nb(3.0, 5.0, 0.0, 0.0, 1.0, 1.0, 100.0, 1_000.0)
    assert not R.leverage_over_cap_nb(3.0, 5.0, 0.0, 35.0, -1.0, 10.0, 100.0, 1_000.0)


@pytest.mark.nojit
def test_monitor_drawdown_daily_loss_and_kill() -> None:
    day = R.DAY_MS
    mon = R.new_monitor()
    R.observe_nb(mon, 0.0, 1_000.0, 10.0, 50.0, False)
    assert R.pop_command_nb(mon)[0] == 0
    R.observe_nb(mon, 1_000.0, 940.0, 10.0, 50.0, False)  # −60 in the day
    assert R.pop_command_nb(mon) == (C.CMD_PAUSE, R.RULE_DAILY_LOSS, -60.0)
    R.observe_nb(mon, 2_000.0, 930.0, 10.0, 50.0, False)  # already paused today
    assert R.pop_command_nb(mon)[0] == 0
    R.observe_nb(mon, day, 935.0, 10.0, 50.0, False)  # 00:00 UTC
    assert R.pop_command_nb(mon) == (C.CMD_RESUME, R.RULE_NEW_TRADING_DAY, 930.0)
    R.observe_nb(mon, day + 1.0, 899.0, 10.0, 50.0, False)  # 10.1 % below the 1 000 peak
    code, rule, value = R.pop_command_nb(mon)
    assert (code, rule) == (C.CMD_RISK_CLOSE, R.RULE_MAX_DRAWDOWN)
    assert value == pytest.approx(10.1)
    R.observe_nb(mon, day + 2.0, 800.0, 10.0, 50.0, True)  # closed: nothing more
    assert R.pop_command_nb(mon)[0] == 0
    mon = R.new_monitor()
    R.observe_nb(mon, 0.0, 1_000.0, 0.0, 0.0, True)
    assert R.pop_command_nb(mon)[:2] == (C.CMD_KILL, R.RULE_KILL_SWITCH)


@pytest.mark.nojit
def test_forced_close_commands_share_one_decoder() -> None:
    assert forced_close_trigger_nb(C.CMD_KILL) == C.KILL_SWITCH
    assert forced_close_trigger_nb(C.CMD_RISK_CLOSE) == C.RISK_LIMIT
    assert forced_close_trigger_nb(C.CMD_CLOSE) == -1


def test_kill_switch_actions_close_a_live_bot() -> None:
    """The kill switch as the live runner uses it: the bot's kernel answers CMD_KILL with the
    cancels and the market close, and moves to CLOSING with kill_switch."""
    inst = Instrument(symbol="X/USD", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
    bot = Grid(low_price=100, high_price=146.41, grid_levels=5, investment=520.8203)
    flat = (121.0,) * 4
    backtest(
        bot,
        make_bars([flat, flat, (121, 121, 110, 115)]),
        instrument=inst,
        cash=1_000,
        close_at_end=False,
    )
    assert bot.lifecycle_state.value == "ACTIVE"
    (actions,) = kill_switch_actions([bot], [115.0], now_ms=1_704_067_380_000, bar=3)
    kinds = actions[:, K.A_KIND].tolist()
    assert K.A_CANCEL in kinds or K.A_CANCEL_ALL in kinds
    sells = actions[(actions[:, K.A_KIND] == K.A_PLACE) & (actions[:, K.A_TYPE] == K.MARKET)]
    assert sells[:, K.A_SIDE].tolist() == [K.SELL]
    assert sells[0, K.A_QTY] == pytest.approx(2.1 + 1.21, abs=1e-9)
    assert bot.transitions()[-1] == {
        "bar": 3,
        "from": "ACTIVE",
        "to": "CLOSING",
        "trigger": "kill_switch",
    }
    with pytest.raises(ConfigError, match="one mark price per bot"):
        kill_switch_actions([bot], [], now_ms=0)


def grid_args(*extra: str) -> list[str]:
    return [
        "backtest", "--strategy", "grid",
        "--data", str(real_file("binance_ETH-BTC_5m_2018-01.parquet")),
        "--set", "low_price=0.085", "--set", "high_price=0.105",
        "--set", "grid_levels=50", "--set", "investment=1.0",
        "--cash", "2", "--no-save", "--json", *extra,
    ]  # fmt: skip


def test_cli_risk_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(grid_args("--max-order-notional", "0.02", "--max-drawdown-pct", "5")) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["risk_rejected_max_order_notional"] > 0
    assert metrics["risk_rejections"] == sum(
        metrics[f"risk_rejected_{k}"]
        for k in ("max_order_notional", "max_leverage", "max_orders_per_minute")
    )
    assert main(grid_args("--max-drawdown-pct", "150")) == 2
    assert "error: max_drawdown_pct" in capsys.readouterr().err


def test_cli_without_risk_flags_keeps_the_rules_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(grid_args()) == 0
    assert "risk_rejections" not in json.loads(capsys.readouterr().out)["metrics"]

"""TWAP and insufficient funds (STRATEGIES.md §4, §5 item 11), through the shared helper.

The backtests use 1-minute bars and one 0.24 slice a minute (BUY 1.2 over 5 min every 60 s), so
slice k is decided at bar k's close and fills at bar k+1's open. A refusal at bar r arms polls
due in bar r (0, 15, 30 s), r+1 (60 s), r+2 (120 s) and r+5 (300 s). A poll carries no price:
it judges the funds at the last mark the bot saw, the previous bar's close.

Each funds episode polls on tags of its own (``TAG_POLL + 6·e + j`` for episode e, from 0): timers
cannot be cancelled, so an earlier episode's polls still fire during a later one.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars
from test_twap import PERP, X_USD

from simulator import backtest
from simulator.result import BacktestResult
from strategies import twap as T
from strategies.twap import Twap
from tradetower import kernel_abi as K
from tradetower.bots import codes as C
from tradetower.domain.instrument import Instrument

T0 = 1_704_067_200_000.0  # 2024-01-01 00:00 UTC, epoch ms
MINUTE = 60_000.0

# A slice of 0.24 at 100 costs 24.024 with the 0.1% taker fee; at 99 it costs 23.783760.
SHORT_AT_4 = 4 * 24.024 + 23.90  # slices 0-3 fill at 100, 23.90 is left for slice 4
SHORT_AT_2 = 2 * 24.024 + 23.90  # slices 0-1 fill at 100, 23.90 is left for slice 2


def minute_bars(closes: list[float]) -> pd.DataFrame:
    """One bar a minute, each opening at the previous close."""
    rows, prev = [], closes[0]
    for c in closes:
        rows.append((prev, max(prev, c), min(prev, c), c))
        prev = c
    return make_bars(rows)


def five_slices(**extra: Any) -> Twap:
    return Twap(direction="BUY", total_amount=1.2, duration=5, frequency=60, **extra)


def run(bot: Twap, closes: list[float], cash: float, mode: str = "compiled") -> BacktestResult:
    return backtest(
        bot, minute_bars(closes), instrument=X_USD, cash=cash, close_at_end=False, mode=mode
    )


def moves(bot: Twap) -> list[tuple[int, str, str]]:
    return [(t["bar"], t["to"], t["trigger"]) for t in bot.transitions()]


def order_log(r: BacktestResult) -> list[tuple[int, float, str, str]]:
    o = r.orders
    return list(zip(o["placed_bar"], o["qty"], o["status"], o["reason"], strict=True))


# ------------------------------------------------------------------ driven event by event


def _event(kind: int, time: float, **fields: float) -> np.ndarray:
    row = np.zeros(K.N_EVENT)
    row[K.E_TYPE] = kind
    row[K.E_TIME] = time
    for name, value in fields.items():
        row[getattr(K, name)] = value
    return row


def _refusal(time: float, qty: float, **fields: float) -> np.ndarray:
    """The venue refuses a slice for funds, nothing filled."""
    return _event(
        K.EV_CANCEL,
        time,
        E_TAG=T.SLICE_TAG,
        E_CODE=K.R_INSUFFICIENT_FUNDS,
        E_REMAINING=qty,
        E_MARK=100.0,
        **fields,
    )


def _poll_of(episode: int, time: float, j: int, **fields: float) -> np.ndarray:
    """Poll ``j`` of funds episode ``episode`` (from 0)."""
    tag = T.TAG_POLL + 6 * episode + j
    return _event(K.EV_TIMER, time, E_INST=-1, E_TAG=tag, **fields)


def _poll(time: float, j: int, **fields: float) -> np.ndarray:
    """Poll ``j`` of the first funds episode."""
    return _poll_of(0, time, j, **fields)


def _polls_armed(at: float, episode: int, js: range) -> list[tuple[int, float, float]]:
    """The timers of polls ``js`` of an episode paused at ``at``."""
    delays = [0, 15, 30, 60, 120, 300]
    return [(K.A_SET_TIMER, at + delays[j] * 1000.0, T.TAG_POLL + 6 * episode + j) for j in js]


class Driven:
    """A TWAP whose kernel is fed hand-made events (``rows``: the action rows it may write)."""

    def __init__(self, inst: Instrument, direction: str = "BUY", rows: int = 32) -> None:
        self.bot = Twap(direction=direction, total_amount=1.2, duration=5, frequency=60)
        self.bot.state = self.bot.initial_state(None)  # type: ignore[arg-type]
        self.bot.check({"X": inst})
        self.params = self.bot.params
        self.actions = np.zeros((rows, K.N_ACTION))

    def send(self, row: np.ndarray) -> list[tuple[int, float, float]]:
        """(kind, qty or due time, tag) of each action the kernel writes."""
        n = T.twap_on_event_nb(self.params, self.bot.state, row, self.actions)
        out = []
        for a in self.actions[:n]:
            value = a[K.A_ID] if a[K.A_KIND] == K.A_SET_TIMER else a[K.A_QTY]
            out.append((int(a[K.A_KIND]), round(float(value), 9), float(a[K.A_TAG])))
        return out

    def start(self, position: float = 0.0) -> None:
        start = _event(K.EV_START, T0, E_PRICE=100.0, E_MARK=100.0, E_POS_QTY=position)
        assert self.send(start)[1] == (K.A_PLACE, 0.24, T.SLICE_TAG)


def test_a_refusal_pauses_once_per_episode_and_arms_the_six_polls() -> None:
    d = Driven(X_USD)
    d.start()
    # slice 1 goes out before slice 0's refusal comes back
    assert d.send(_event(K.EV_TIMER, T0 + MINUTE, E_INST=-1, E_TAG=T.TIMER_TAG))[1] == (
        K.A_PLACE,
        0.24,
        T.SLICE_TAG,
    )
    at = T0 + MINUTE
    polls = d.send(_refusal(at, 0.24))
    assert polls == [
        (K.A_SET_TIMER, at + s * 1000.0, T.TAG_POLL + j)
        for j, s in enumerate([0, 15, 30, 60, 120, 300])
    ]
    # the second refusal of the episode neither pauses again nor arms more polls
    assert d.send(_refusal(at, 0.24)) == []
    assert moves(d.bot) == [(0, "ACTIVE", "user_start"), (0, "PAUSED", "insufficient_funds")]
    assert d.bot.funds_metrics() == {
        "funds_pauses": 1,
        "funds_warning": False,
        "funds_owed_qty": 0.24,
    }
    assert d.bot.metrics()["slices_unfilled"] == 2
    # poll 0 finds 24.02 free (24.024 needed): wait; poll 1 finds 24.03: resume and re-place
    assert d.send(_poll(at, 0, E_FREE=24.02)) == []
    assert d.send(_poll(at + 15_000, 1, E_FREE=24.03)) == [(K.A_PLACE, 0.24, T.SLICE_TAG)]
    assert moves(d.bot)[-1] == (0, "ACTIVE", "funds_available")
    assert d.bot.metrics()["slices_unfilled"] == 1  # the re-placed slice counts by its outcome
    # the episode is over: its later polls are ignored
    assert d.send(_poll(at + 30_000, 2, E_FREE=0.0)) == []
    assert d.bot.lifecycle_state.value == "ACTIVE"


def test_refused_again_at_the_time_a_poll_resumed_it_pauses_without_polls() -> None:
    d = Driven(X_USD)
    d.start()
    assert len(d.send(_refusal(T0, 0.24))) == 6
    assert d.send(_poll(T0 + 15_000, 1, E_FREE=30.0)) == [(K.A_PLACE, 0.24, T.SLICE_TAG)]
    assert d.send(_refusal(T0 + 15_000, 0.24)) == []
    assert d.bot.lifecycle_state.value == "PAUSED"
    assert d.bot.funds_metrics() == {
        "funds_pauses": 2,
        "funds_warning": True,
        "funds_owed_qty": 0.24,
    }


def test_a_second_episode_polls_on_its_own_tags_and_ignores_the_first_ones() -> None:
    d = Driven(X_USD)
    d.start()
    assert d.send(_refusal(T0, 0.24)) == _polls_armed(T0, 0, range(6))
    assert d.send(_poll(T0 + 15_000, 1, E_FREE=30.0)) == [(K.A_PLACE, 0.24, T.SLICE_TAG)]
    # slice 1 is refused a minute later: episode 2 polls on tags 26..31
    at = T0 + MINUTE
    assert d.send(_event(K.EV_TIMER, at, E_INST=-1, E_TAG=T.TIMER_TAG))[1] == (
        K.A_PLACE,
        0.24,
        T.SLICE_TAG,
    )
    assert d.send(_refusal(at, 0.24)) == _polls_armed(at, 1, range(6))
    # episode 1's polls still fire: neither the 120 s one with the funds there nor the 300 s
    # one without them touches episode 2
    assert d.send(_poll(T0 + 120_000, 4, E_FREE=30.0)) == []
    assert d.send(_poll(T0 + 300_000, 5, E_FREE=0.0)) == []
    assert d.bot.lifecycle_state.value == "PAUSED"
    assert d.bot.funds_metrics()["funds_warning"] is False
    # episode 2's own 300 s poll gives up
    assert d.send(_poll_of(1, at + 300_000, 5, E_FREE=0.0)) == []
    assert d.bot.funds_metrics() == {
        "funds_pauses": 2,
        "funds_warning": True,
        "funds_owed_qty": 0.24,
    }


def test_polls_the_pause_had_no_row_for_are_armed_by_the_first_poll_that_waits() -> None:
    d = Driven(X_USD, rows=3)
    d.start()
    assert d.send(_refusal(T0, 0.24)) == _polls_armed(T0, 0, range(3))
    assert d.send(_poll(T0, 0, E_FREE=24.02)) == _polls_armed(T0, 0, range(3, 6))
    assert d.send(_poll(T0 + 15_000, 1, E_FREE=24.02)) == []  # nothing owed any more
    assert d.send(_poll(T0 + 300_000, 5, E_FREE=24.02)) == []
    assert d.bot.lifecycle_state.value == "PAUSED"
    assert d.bot.funds_metrics()["funds_warning"] is True


@pytest.mark.parametrize(
    ("inst", "direction", "short", "enough"),
    [
        # spot BUY: free quote ≥ 0.24 · 100 · 1.001 = 24.024
        (X_USD, "BUY", {"E_FREE": 24.02}, {"E_FREE": 24.03}),
        # margin BUY at 5x: equity · 5 / (100 · (1 + 0.0005 · 5)) ≥ 0.24, equity ≥ 4.812
        (PERP, "BUY", {"E_EQUITY": 4.81}, {"E_EQUITY": 4.82}),
    ],
)
def test_a_poll_resumes_when_the_refused_slice_would_pass(
    inst: Instrument, direction: str, short: dict[str, float], enough: dict[str, float]
) -> None:
    d = Driven(inst, direction)
    d.start()
    d.send(_refusal(T0, 0.24))
    assert d.send(_poll(T0, 0, **short)) == []
    assert d.bot.lifecycle_state.value == "PAUSED"
    assert d.send(_poll(T0 + 15_000, 1, **enough)) == [(K.A_PLACE, 0.24, T.SLICE_TAG)]
    assert moves(d.bot)[-1] == (0, "ACTIVE", "funds_available")


def test_a_spot_sell_poll_counts_the_base_last_reported() -> None:
    """A poll carries no position: the base the venue last reported stands in."""
    d = Driven(X_USD, "SELL")
    d.start(position=1.2)
    d.send(_refusal(T0, 0.24, E_INST=0, E_POS_QTY=0.2))
    assert d.send(_poll(T0, 0)) == []
    d.send(_event(K.EV_BAR, T0 + 60_000, E_PRICE=100.0, E_MARK=100.0, E_POS_QTY=0.24))
    assert d.send(_poll(T0 + 60_000, 3)) == [(K.A_PLACE, 0.24, T.SLICE_TAG)]


# ------------------------------------------------------------------ backtests


def test_funds_back_at_a_poll_resume_and_re_place_the_refused_slice() -> None:
    bot = five_slices()
    r = run(bot, [100.0] * 5 + [99.0] * 3, cash=SHORT_AT_4)
    # Slice 4 (bar 4) is refused: 23.90 is free, 24.024 needed. The polls in bars 4 and 5 judge
    # at 100; the 120 s poll (bar 6) sees bar 5's close, 99: 23.78376 fits → funds_available,
    # and slice 4 is re-placed, filling at bar 7's open.
    assert order_log(r) == [
        (0, 0.24, "FILLED", ""),
        (1, 0.24, "FILLED", ""),
        (2, 0.24, "FILLED", ""),
        (3, 0.24, "FILLED", ""),
        (4, 0.24, "REJECTED", "INSUFFICIENT_FUNDS"),
        (6, 0.24, "FILLED", ""),
    ]
    assert r.fills["price"].tolist() == [100.0, 100.0, 100.0, 100.0, 99.0]
    assert moves(bot) == [
        (0, "ACTIVE", "user_start"),
        (4, "PAUSED", "insufficient_funds"),
        (6, "ACTIVE", "funds_available"),
        (7, "CLOSING", "twap_finished"),
        (7, "COMPLETED", "done"),
    ]
    m = r.metrics
    assert m["slices_executed"] == 5 and m["slices_unfilled"] == 0 and m["slices_missed"] == 0
    assert m["executed_qty"] == pytest.approx(1.2, abs=1e-12) and m["fill_ratio"] == 1.0
    assert m["vwap"] == pytest.approx(99.8, abs=1e-9)
    assert bot.funds_metrics() == {
        "funds_pauses": 1,
        "funds_warning": False,
        "funds_owed_qty": 0.0,
    }


GIVE_UP = [100.0] * 8 + [99.0] * 3  # the price falls only after the 300 s poll (bar 7)


def test_all_polls_failing_stay_paused_until_a_user_resume(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Slice 2 (bar 2) is refused; slices 3 and 4 fall due while PAUSED and are missed.
    before = five_slices()
    run(before, GIVE_UP[:7], cash=SHORT_AT_2)  # ends before the 300 s poll
    assert before.funds_metrics()["funds_warning"] is False

    bot = five_slices()
    with caplog.at_level(logging.WARNING, logger="strategies.twap"):
        r = run(bot, GIVE_UP, cash=SHORT_AT_2)
    # The last poll (bar 7) fails; the price falls at bar 8, but nothing polls any more.
    assert order_log(r) == [
        (0, 0.24, "FILLED", ""),
        (1, 0.24, "FILLED", ""),
        (2, 0.24, "REJECTED", "INSUFFICIENT_FUNDS"),
    ]
    m = r.metrics
    assert m["bot_state"] == "PAUSED"
    assert m["slices_missed"] == 2 and m["slices_unfilled"] == 1 and m["fill_ratio"] == 0.4
    assert bot.funds_metrics() == {
        "funds_pauses": 1,
        "funds_warning": True,
        "funds_owed_qty": 0.24,
    }
    assert moves(bot) == [(0, "ACTIVE", "user_start"), (2, "PAUSED", "insufficient_funds")]
    assert caplog.messages == ["twap: still paused for funds after the last balance poll"]

    # A user resume (bar 9) re-places the refused slice at the mark 99; the run completes.
    resumed = five_slices(commands={9: C.CMD_RESUME})
    r = run(resumed, GIVE_UP, cash=SHORT_AT_2)
    assert order_log(r)[-1] == (9, 0.24, "FILLED", "")
    assert r.fills["price"].tolist() == [100.0, 100.0, 99.0]
    assert moves(resumed)[2:] == [
        (9, "ACTIVE", "user_resume"),
        (10, "CLOSING", "twap_finished"),
        (10, "COMPLETED", "done"),
    ]
    m = r.metrics
    assert m["slices_executed"] == 3 and m["slices_unfilled"] == 0 and m["slices_missed"] == 2
    assert m["fill_ratio"] == pytest.approx(0.6, abs=1e-12)
    assert resumed.funds_metrics()["funds_owed_qty"] == 0.0


def test_a_price_limit_decides_the_re_placement_at_the_bar_close() -> None:
    # As the funds-back case, but bar 6 closes at 100.6, above the 100.5 limit: the poll in
    # bar 6 resumes (bar 5's close, 99, makes the funds enough) and the re-placement, decided
    # at bar 6's close, is skipped. Nothing more is due: the run completes short.
    bot = five_slices(price_limit=100.5)
    r = run(bot, [100.0] * 5 + [99.0, 100.6, 100.6], cash=SHORT_AT_4)
    assert len(r.orders) == 5 and r.orders["status"].iloc[-1] == "REJECTED"
    m = r.metrics
    assert m["slices_skipped"] == 1 and m["slices_unfilled"] == 0 and m["slices_executed"] == 4
    assert m["fill_ratio"] == pytest.approx(0.8, abs=1e-12)
    assert moves(bot)[2:] == [
        (6, "ACTIVE", "funds_available"),
        (6, "CLOSING", "twap_finished"),
        (6, "COMPLETED", "done"),
    ]


@pytest.mark.parametrize(
    ("closes", "cash", "commands"),
    [
        ([100.0] * 5 + [99.0] * 3, SHORT_AT_4, {}),
        (GIVE_UP, SHORT_AT_2, {9: C.CMD_RESUME}),
    ],
    ids=["poll-resumes", "user-resumes"],
)
def test_parity_compiled_and_python_on_a_funds_pause(
    closes: list[float], cash: float, commands: dict[int, int]
) -> None:
    compiled_bot = five_slices(commands=commands)
    python_bot = five_slices(commands=commands)
    compiled = run(compiled_bot, closes, cash, mode="compiled")
    python = run(python_bot, closes, cash, mode="python")
    assert (compiled.orders["reason"] == "INSUFFICIENT_FUNDS").sum() == 1
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    assert compiled_bot.transitions() == python_bot.transitions()
    assert compiled_bot.funds_metrics() == python_bot.funds_metrics()


# ------------------------------------------------------------------ two episodes, 15 s bars
#
# 15-second bars, one 0.24 slice a minute (bars 0, 4, 8, 12, 16): a refusal at bar r polls at
# bars r (0 s), r+1 (15 s), r+2 (30 s), r+4 (60 s), r+8 (120 s) and r+20 (300 s); the 30 s poll
# is the first to see a close after the one the refusal was judged at. Slice 1 (bar 4) is refused
# at 100 (23.90 free, 24.024 needed); bar 5 closes at 99 (23.78376 needed), so the 30 s poll (bar
# 6) resumes and re-places it, filling at bar 7's open. 0.11624 is left: slice 2 (bar 8) is
# refused, a second episode polling at bars 8, 9, 10, 12, 16 and 28. The first episode's 300 s
# poll still fires at bar 24 and must not end the second with the WARNING.
TWO_EPISODES = [100.0] * 5 + [99.0] * 24  # bars 0..28


def quarter_minute_bars(closes: list[float]) -> pd.DataFrame:
    bars = minute_bars(closes)
    bars.index = pd.date_range(
        "2024-01-01", periods=len(closes), freq="15s", tz="UTC", name="timestamp"
    )
    return bars


def run_quarter(bot: Twap, closes: list[float], mode: str = "compiled") -> BacktestResult:
    return backtest(
        bot,
        quarter_minute_bars(closes),
        instrument=X_USD,
        cash=24.024 + 23.90,
        close_at_end=False,
        mode=mode,
    )


def test_a_poll_left_over_from_an_earlier_episode_does_not_end_the_next() -> None:
    bot = five_slices()
    r = run_quarter(bot, TWO_EPISODES[:28])  # to bar 27: past episode 1's 300 s poll (bar 24)
    assert order_log(r) == [
        (0, 0.24, "FILLED", ""),
        (4, 0.24, "REJECTED", "INSUFFICIENT_FUNDS"),
        (6, 0.24, "FILLED", ""),
        (8, 0.24, "REJECTED", "INSUFFICIENT_FUNDS"),
    ]
    assert r.fills["bar"].tolist() == [1, 7]
    assert r.fills["price"].tolist() == [100.0, 99.0]
    assert moves(bot) == [
        (0, "ACTIVE", "user_start"),
        (4, "PAUSED", "insufficient_funds"),
        (6, "ACTIVE", "funds_available"),
        (8, "PAUSED", "insufficient_funds"),
    ]
    assert bot.funds_metrics() == {
        "funds_pauses": 2,
        "funds_warning": False,  # episode 2 still polls
        "funds_owed_qty": 0.24,
    }
    m = r.metrics
    assert m["slices_missed"] == 2 and m["slices_unfilled"] == 1 and m["bot_state"] == "PAUSED"

    bot = five_slices()
    run_quarter(bot, TWO_EPISODES)  # to bar 28: episode 2's own 300 s poll fails
    assert bot.funds_metrics()["funds_warning"] is True
    assert bot.lifecycle_state.value == "PAUSED"


def test_parity_compiled_and_python_on_two_funds_episodes() -> None:
    compiled_bot, python_bot = five_slices(), five_slices()
    compiled = run_quarter(compiled_bot, TWO_EPISODES, mode="compiled")
    python = run_quarter(python_bot, TWO_EPISODES, mode="python")
    assert (compiled.orders["reason"] == "INSUFFICIENT_FUNDS").sum() == 2
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    assert compiled_bot.transitions() == python_bot.transitions()
    assert compiled_bot.funds_metrics() == python_bot.funds_metrics()

"""The bot lifecycle of STRATEGIES.md §2: the table, its guards, audit records, checkpoints."""

from __future__ import annotations

import json
import logging
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradetower.errors import TradeTowerError
from tradetower.lifecycle import (
    ALLOWED_TRANSITIONS,
    CLOSE_TRIGGERS,
    ERROR_TRIGGERS,
    PAUSE_TRIGGERS,
    RESUME_TRIGGERS,
    SETUP_OUTCOMES,
    TERMINAL_STATES,
    BotLifecycle,
    BotState,
    InitiatedBy,
    InvalidTransition,
    RejectedTransition,
    StateTransition,
    Trigger,
)

S, T = BotState, Trigger
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def machine() -> BotLifecycle:
    return BotLifecycle("run-1", clock=FakeClock())


# The shortest valid way from INITIALIZING to each non-terminal state.
PATHS: dict[BotState, list[tuple[BotState, Trigger]]] = {
    S.INITIALIZING: [],
    S.ACTIVE: [(S.ACTIVE, T.USER_START)],
    S.WAITING: [(S.WAITING, T.START_CONDITION_PENDING)],
    S.FUNDS_RESERVED: [(S.FUNDS_RESERVED, T.RESERVATION_PLACED)],
    S.TRAILING: [(S.ACTIVE, T.USER_START), (S.TRAILING, T.TRAILING_STARTED)],
    S.PUMP: [(S.ACTIVE, T.USER_START), (S.PUMP, T.PUMP_DETECTED)],
    S.PAUSED: [(S.ACTIVE, T.USER_START), (S.PAUSED, T.USER_PAUSE)],
    S.CLOSING: [(S.ACTIVE, T.USER_START), (S.CLOSING, T.USER_STOP)],
    S.ERROR: [(S.ACTIVE, T.USER_START), (S.ERROR, T.STRATEGY_EXCEPTION)],
}


def drive(lc: BotLifecycle, steps: list[tuple[BotState, Trigger]]) -> BotLifecycle:
    for to, trigger in steps:
        lc.transition(to, trigger)
    return lc


def at(state: BotState) -> BotLifecycle:
    return drive(machine(), PATHS[state])


def ready_for(src: BotState, dst: BotState, trigger: Trigger) -> BotLifecycle:
    """A machine in `src` whose history makes (dst, trigger) acceptable."""
    if src is S.PAUSED and trigger in RESUME_TRIGGERS:
        return drive(at(dst), [(S.PAUSED, T.USER_PAUSE)])
    if src is S.ERROR and trigger is T.RECOVERED:
        return drive(at(dst), [(S.ERROR, T.STRATEGY_EXCEPTION)])
    if src is S.CLOSING and trigger is T.DONE:
        closing = T.TAKE_PROFIT_HIT if dst is S.COMPLETED else T.USER_STOP
        return drive(at(S.ACTIVE), [(S.CLOSING, closing)])
    return at(src)


# ------------------------------------------------------------------------------ the table


def test_table_has_eleven_states_and_spec_sizes() -> None:
    assert len(BotState) == 11
    assert {S.STOPPED, S.COMPLETED} == TERMINAL_STATES
    assert len(PAUSE_TRIGGERS) == 5 and len(RESUME_TRIGGERS) == 5 and len(CLOSE_TRIGGERS) == 8
    # nothing leaves a terminal state, nothing enters INITIALIZING
    assert not [e for e in ALLOWED_TRANSITIONS if e[0] in TERMINAL_STATES]
    assert not [e for e in ALLOWED_TRANSITIONS if e[1] is S.INITIALIZING]


# STRATEGIES.md §2's table, transcribed independently of the module: from | to | triggers.
SPEC_ROWS = """
INITIALIZING | ACTIVE | user_start
INITIALIZING | WAITING | start_condition_pending
INITIALIZING | FUNDS_RESERVED | reservation_placed
INITIALIZING | PAUSED | insufficient_funds
INITIALIZING | ERROR | setup_failed
FUNDS_RESERVED | ACTIVE WAITING | price_condition_met
WAITING | ACTIVE | start_condition_met
ACTIVE | TRAILING | trailing_started
TRAILING | ACTIVE | trailing_done
ACTIVE | PUMP | pump_detected
PUMP | ACTIVE | pump_cleared
ACTIVE TRAILING PUMP WAITING FUNDS_RESERVED | PAUSED | user_pause insufficient_funds \
    breaker_open market_closed daily_loss_limit
PAUSED | ACTIVE WAITING FUNDS_RESERVED | user_resume funds_available breaker_closed market_open \
    new_trading_day
ACTIVE | WAITING FUNDS_RESERVED | cycle_closed
INITIALIZING FUNDS_RESERVED WAITING ACTIVE TRAILING PUMP PAUSED | CLOSING | take_profit_hit \
    stop_loss_hit liquidation_buffer user_stop close_signal kill_switch risk_limit twap_finished
CLOSING | COMPLETED STOPPED | done
CLOSING | ERROR | close_failed
INITIALIZING FUNDS_RESERVED WAITING ACTIVE TRAILING PUMP PAUSED CLOSING | ERROR | \
    strategy_exception auth_revoked exchange_outage
ERROR | ACTIVE WAITING FUNDS_RESERVED PAUSED CLOSING | recovered
ERROR | CLOSING | user_stop kill_switch
ERROR | STOPPED | max_retries
"""


def test_table_matches_the_spec_transcription() -> None:
    expected = set()
    for line in SPEC_ROWS.replace("\\\n", " ").strip().splitlines():
        froms, tos, triggers = (part.split() for part in line.split("|"))
        expected |= {(S(f), S(t), T(g)) for f in froms for t in tos for g in triggers}
    assert expected == ALLOWED_TRANSITIONS


@pytest.mark.parametrize(
    ("src", "dst", "trigger"),
    sorted(ALLOWED_TRANSITIONS),
    ids=lambda v: str(v),
)
def test_every_listed_transition_is_accepted(
    src: BotState, dst: BotState, trigger: Trigger
) -> None:
    lc = ready_for(src, dst, trigger)
    assert lc.state is src
    assert lc.can_transition(dst, trigger)
    before = len(lc.history)
    record = lc.transition(dst, trigger, reason="test")
    assert lc.state is dst
    assert (record.from_state, record.to_state, record.trigger) == (src, dst, trigger)
    assert lc.history[before:] == [record]
    assert lc.rejected == []


INVALID = [
    # out of terminal states
    (S.STOPPED, S.ACTIVE, T.USER_START),
    (S.STOPPED, S.CLOSING, T.USER_STOP),
    (S.COMPLETED, S.ACTIVE, T.USER_RESUME),
    (S.COMPLETED, S.ERROR, T.STRATEGY_EXCEPTION),
    # into INITIALIZING
    (S.ACTIVE, S.INITIALIZING, T.USER_START),
    (S.PAUSED, S.INITIALIZING, T.USER_RESUME),
    (S.ERROR, S.INITIALIZING, T.RECOVERED),
    # CLOSING only to COMPLETED, STOPPED or ERROR
    (S.CLOSING, S.ACTIVE, T.USER_RESUME),
    (S.CLOSING, S.ACTIVE, T.RECOVERED),
    (S.CLOSING, S.PAUSED, T.USER_PAUSE),
    (S.CLOSING, S.CLOSING, T.USER_STOP),
    # TRAILING and PUMP only from ACTIVE, never into each other
    (S.TRAILING, S.PUMP, T.PUMP_DETECTED),
    (S.PUMP, S.TRAILING, T.TRAILING_STARTED),
    (S.WAITING, S.TRAILING, T.TRAILING_STARTED),
    (S.PAUSED, S.TRAILING, T.USER_RESUME),
    (S.FUNDS_RESERVED, S.PUMP, T.PUMP_DETECTED),
    # a listed pair with the wrong trigger
    (S.WAITING, S.ACTIVE, T.USER_START),
    (S.ACTIVE, S.PAUSED, T.USER_STOP),
    (S.INITIALIZING, S.PAUSED, T.USER_PAUSE),
    (S.ACTIVE, S.CLOSING, T.DONE),
    # ERROR has its own closing triggers; ERROR -> ERROR is no transition
    (S.ERROR, S.CLOSING, T.TAKE_PROFIT_HIT),
    (S.ERROR, S.ERROR, T.STRATEGY_EXCEPTION),
    (S.PAUSED, S.PAUSED, T.MARKET_CLOSED),
]


def terminal(state: BotState) -> BotLifecycle:
    closing = T.TAKE_PROFIT_HIT if state is S.COMPLETED else T.USER_STOP
    lc = drive(at(S.ACTIVE), [(S.CLOSING, closing)])
    lc.finish_closing()
    assert lc.state is state
    return lc


@pytest.mark.parametrize(("src", "dst", "trigger"), INVALID, ids=lambda v: str(v))
def test_invalid_transitions_raise_and_change_nothing(
    src: BotState, dst: BotState, trigger: Trigger, caplog: pytest.LogCaptureFixture
) -> None:
    assert (src, dst, trigger) not in ALLOWED_TRANSITIONS
    lc = terminal(src) if src in TERMINAL_STATES else at(src)
    before = lc.to_dict()
    with (
        caplog.at_level(logging.ERROR, logger="tradetower.lifecycle"),
        pytest.raises(InvalidTransition) as info,
    ):
        lc.transition(dst, trigger)
    err = info.value
    assert isinstance(err, TradeTowerError)
    assert (err.from_state, err.to_state, err.trigger) == (src, dst, trigger)
    assert f"{src} -> {dst}" in str(err) and str(trigger) in str(err)
    assert lc.state is src
    after = lc.to_dict()
    rejected = after.pop("rejected")
    before.pop("rejected")
    assert after == before
    assert [(r["from"], r["to"], r["trigger"]) for r in rejected] == [(src, dst, trigger)]
    assert not lc.can_transition(dst, trigger)
    assert any(
        r.levelno == logging.ERROR and "invalid transition" in r.message for r in caplog.records
    )


def test_terminal_state_message_says_why() -> None:
    lc = terminal(S.STOPPED)
    with pytest.raises(InvalidTransition, match="terminal"):
        lc.transition(S.ACTIVE, T.USER_START)


# --------------------------------------------------------------------------- pause / resume


@pytest.mark.parametrize(
    ("entered_from", "expected"),
    [
        (S.ACTIVE, S.ACTIVE),
        (S.TRAILING, S.ACTIVE),
        (S.PUMP, S.ACTIVE),
        (S.WAITING, S.WAITING),
        (S.FUNDS_RESERVED, S.FUNDS_RESERVED),
    ],
)
def test_pause_stores_resume_to_and_resume_goes_there(
    entered_from: BotState, expected: BotState
) -> None:
    lc = at(entered_from)
    lc.pause(T.MARKET_CLOSED)
    assert lc.state is S.PAUSED
    assert lc.resume_to is expected
    record = lc.resume(T.MARKET_OPEN)
    assert lc.state is expected
    assert record.to_state is expected
    assert lc.resume_to is None


def test_trailing_paused_cannot_resume_to_trailing() -> None:
    lc = at(S.TRAILING)
    lc.pause()
    with pytest.raises(InvalidTransition):
        lc.transition(S.TRAILING, T.USER_RESUME)
    with pytest.raises(InvalidTransition, match="resume_to is ACTIVE"):
        lc.transition(S.WAITING, T.USER_RESUME)
    assert lc.state is S.PAUSED
    lc.resume()
    assert lc.state is S.ACTIVE


def test_paused_during_setup_resumes_to_where_setup_gets() -> None:
    lc = machine()
    lc.transition(S.PAUSED, T.INSUFFICIENT_FUNDS)
    assert lc.resume_to is S.INITIALIZING
    with pytest.raises(InvalidTransition, match="INITIALIZING"):
        lc.resume(T.FUNDS_AVAILABLE)  # nothing enters INITIALIZING: the target must be named
    assert lc.state is S.PAUSED
    lc.resume(T.FUNDS_AVAILABLE, to=S.WAITING)
    assert lc.state is S.WAITING


def test_resume_outside_pause_is_rejected() -> None:
    lc = at(S.ACTIVE)
    with pytest.raises(InvalidTransition):
        lc.resume()
    assert lc.state is S.ACTIVE


# ---------------------------------------------------------------------------------- closing


@pytest.mark.parametrize(
    ("closing_trigger", "outcome"),
    [
        (T.TAKE_PROFIT_HIT, S.COMPLETED),
        (T.TWAP_FINISHED, S.COMPLETED),
        (T.USER_STOP, S.STOPPED),
        (T.STOP_LOSS_HIT, S.STOPPED),
        (T.KILL_SWITCH, S.STOPPED),
        (T.CLOSE_SIGNAL, S.STOPPED),
    ],
)
def test_closing_ends_by_the_trigger_that_started_it(
    closing_trigger: Trigger, outcome: BotState
) -> None:
    lc = at(S.ACTIVE)
    lc.transition(S.CLOSING, closing_trigger)
    assert lc.closing_outcome is outcome
    other = S.STOPPED if outcome is S.COMPLETED else S.COMPLETED
    with pytest.raises(InvalidTransition):
        lc.transition(other, T.DONE)
    record = lc.finish_closing()
    assert lc.state is outcome and record.trigger is T.DONE
    assert lc.is_terminal


def test_closing_retried_after_error_keeps_its_outcome() -> None:
    lc = at(S.ACTIVE)
    lc.transition(S.CLOSING, T.TAKE_PROFIT_HIT)
    lc.transition(S.ERROR, T.CLOSE_FAILED)
    assert lc.resume_to is S.CLOSING
    lc.recover()
    assert lc.state is S.CLOSING
    lc.finish_closing()
    assert lc.state is S.COMPLETED


def test_user_stop_out_of_error_after_failed_tp_close_ends_stopped() -> None:
    lc = at(S.ACTIVE)
    lc.transition(S.CLOSING, T.TAKE_PROFIT_HIT)
    lc.transition(S.ERROR, T.CLOSE_FAILED)
    lc.transition(S.CLOSING, T.USER_STOP)
    lc.finish_closing()
    assert lc.state is S.STOPPED


# ------------------------------------------------------------------------------------ error


def test_error_keeps_resume_to_and_recovered_returns_there() -> None:
    lc = at(S.PUMP)
    lc.transition(S.ERROR, T.EXCHANGE_OUTAGE)
    assert lc.resume_to is S.ACTIVE
    with pytest.raises(InvalidTransition):
        lc.transition(S.WAITING, T.RECOVERED)
    lc.recover()
    assert lc.state is S.ACTIVE


def test_error_from_paused_recovers_to_paused_with_its_resume_to() -> None:
    lc = at(S.WAITING)
    lc.pause(T.BREAKER_OPEN)
    lc.transition(S.ERROR, T.AUTH_REVOKED)
    assert lc.resume_to is S.PAUSED
    lc.recover()
    assert (lc.state, lc.resume_to) == (S.PAUSED, S.WAITING)
    lc.resume(T.BREAKER_CLOSED)
    assert lc.state is S.WAITING


def test_setup_failure_recovers_to_a_named_setup_outcome() -> None:
    lc = machine()
    lc.transition(S.ERROR, T.SETUP_FAILED)
    with pytest.raises(InvalidTransition):
        lc.recover()
    lc.recover(to=S.FUNDS_RESERVED)
    assert lc.state is S.FUNDS_RESERVED


def test_recovery_allowed_up_to_three_consecutive_failures() -> None:
    lc = at(S.ACTIVE)
    for failures in (1, 2, 3):
        lc.transition(S.ERROR, T.STRATEGY_EXCEPTION)
        assert lc.consecutive_failures == failures
        lc.recover()
        assert lc.state is S.ACTIVE
    lc.transition(S.ERROR, T.STRATEGY_EXCEPTION)
    assert lc.consecutive_failures == 4
    assert not lc.can_transition(S.ACTIVE, T.RECOVERED)
    with pytest.raises(InvalidTransition, match="max_consecutive_failures=3"):
        lc.recover()
    assert lc.state is S.ERROR
    lc.transition(S.STOPPED, T.MAX_RETRIES)
    assert lc.state is S.STOPPED
    assert lc.position_open is True


def test_progress_between_failures_resets_the_count() -> None:
    lc = at(S.ACTIVE)
    for _ in range(5):
        lc.transition(S.ERROR, T.STRATEGY_EXCEPTION)
        lc.recover()
        lc.transition(S.TRAILING, T.TRAILING_STARTED)  # the bot ran again
        lc.transition(S.ACTIVE, T.TRAILING_DONE)
        assert lc.consecutive_failures == 0
    lc.transition(S.ERROR, T.STRATEGY_EXCEPTION)
    lc.recover()
    lc.reset_failures()
    assert lc.consecutive_failures == 0


def test_stopped_by_user_does_not_flag_an_open_position() -> None:
    lc = terminal(S.STOPPED)
    assert lc.position_open is False


def test_any_non_terminal_state_can_fail_into_error() -> None:
    for state in set(PATHS) - {S.ERROR}:
        for trigger in ERROR_TRIGGERS:
            lc = at(state)
            lc.transition(S.ERROR, trigger)
            assert lc.state is S.ERROR


# ------------------------------------------------------------------------------ audit data


def test_transition_record_carries_audit_fields() -> None:
    clock = FakeClock()
    seen: list[StateTransition] = []
    lc = BotLifecycle("run-9", clock=clock, on_transition=[seen.append])
    record = lc.transition(S.ACTIVE, T.USER_START, reason="go", context={"price": 100.0})
    assert record.bot_run_id == "run-9"
    assert record.at == T0 + timedelta(seconds=1)
    assert record.initiated_by is InitiatedBy.USER
    assert record.reason == "go"
    assert dict(record.context) == {"price": 100.0}
    with pytest.raises(TypeError):
        record.context["price"] = 1.0  # type: ignore[index]
    lc.transition(S.CLOSING, T.KILL_SWITCH)
    lc.transition(S.ERROR, T.CLOSE_FAILED, initiated_by=InitiatedBy.EXCHANGE)
    assert [r.initiated_by for r in seen] == [
        InitiatedBy.USER,
        InitiatedBy.RISK_ENGINE,
        InitiatedBy.EXCHANGE,
    ]
    assert seen == lc.history


def test_times_are_converted_to_utc_and_naive_clocks_refused() -> None:
    plus2 = timezone(timedelta(hours=2))
    lc = BotLifecycle("r", clock=lambda: datetime(2024, 1, 1, 12, tzinfo=plus2))
    record = lc.transition(S.ACTIVE, T.USER_START)
    assert record.at == datetime(2024, 1, 1, 10, tzinfo=UTC) and record.at.tzinfo is UTC
    naive = BotLifecycle("r", clock=lambda: datetime(2024, 1, 1, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        naive.transition(S.ACTIVE, T.USER_START)
    assert naive.state is S.INITIALIZING and naive.history == []


def test_a_failing_listener_does_not_stop_the_others_or_undo_the_transition() -> None:
    seen: list[BotState] = []

    def broken(_: StateTransition) -> None:
        raise RuntimeError("audit store down")

    lc = BotLifecycle(
        "r", clock=FakeClock(), on_transition=[broken, lambda t: seen.append(t.to_state)]
    )
    with pytest.raises(RuntimeError, match="audit store down"):
        lc.transition(S.ACTIVE, T.USER_START)
    assert lc.state is S.ACTIVE
    assert seen == [S.ACTIVE]


def test_rejection_listener_is_told() -> None:
    told: list[RejectedTransition] = []
    lc = BotLifecycle("r", clock=FakeClock(), on_rejected=[told.append])
    with pytest.raises(InvalidTransition):
        lc.transition(S.TRAILING, T.TRAILING_STARTED, reason="bad")
    assert [(r.from_state, r.to_state, r.reason) for r in told] == [
        (S.INITIALIZING, S.TRAILING, "bad")
    ]
    assert "not in the lifecycle table" in told[0].detail


def test_allowed_moves_matches_can_transition() -> None:
    lc = at(S.TRAILING)
    lc.pause()
    assert lc.allowed_moves() == {(S.ACTIVE, t) for t in RESUME_TRIGGERS} | {
        (S.CLOSING, t) for t in CLOSE_TRIGGERS
    } | {(S.ERROR, t) for t in ERROR_TRIGGERS}


# ------------------------------------------------------------------------------- checkpoint


def test_checkpoint_round_trip_through_json() -> None:
    lc = at(S.WAITING)
    lc.pause(T.DAILY_LOSS_LIMIT, context={"loss": 120.5})
    lc.transition(S.ERROR, T.EXCHANGE_OUTAGE)
    with pytest.raises(InvalidTransition):
        lc.transition(S.ACTIVE, T.USER_START)
    data = json.loads(json.dumps(lc.to_dict()))
    restored = BotLifecycle.from_dict(data, clock=FakeClock())
    assert restored.state is S.ERROR
    assert restored.resume_to is S.PAUSED
    assert restored.consecutive_failures == 1
    assert restored.history == lc.history
    assert restored.rejected == lc.rejected
    assert restored.to_dict() == lc.to_dict()
    # the restored machine behaves like the original: PAUSED's own resume_to survived
    restored.recover()
    restored.resume(T.NEW_TRADING_DAY)
    assert restored.state is S.WAITING


def test_checkpoint_keeps_closing_outcome_and_position_flag() -> None:
    lc = at(S.ACTIVE)
    lc.transition(S.CLOSING, T.TWAP_FINISHED)
    restored = BotLifecycle.from_dict(lc.to_dict())
    restored.finish_closing()
    assert restored.state is S.COMPLETED

    failed = at(S.ERROR)
    failed.transition(S.STOPPED, T.MAX_RETRIES)
    assert BotLifecycle.from_dict(failed.to_dict()).position_open is True


def test_checkpoint_with_forged_history_is_refused() -> None:
    data = at(S.TRAILING).to_dict()
    data["history"][1]["to"] = "PUMP"
    data["state"] = "PUMP"
    with pytest.raises(ValueError, match="history entry 1"):
        BotLifecycle.from_dict(data)
    data = at(S.ACTIVE).to_dict()
    data["state"] = "COMPLETED"
    with pytest.raises(ValueError, match="differs"):
        BotLifecycle.from_dict(data)
    data["version"] = 99
    with pytest.raises(ValueError, match="version"):
        BotLifecycle.from_dict(data)


def test_records_and_errors_pickle() -> None:
    lc = at(S.ACTIVE)
    record = lc.history[0]
    assert pickle.loads(pickle.dumps(record)) == record
    try:
        lc.transition(S.INITIALIZING, T.USER_START)
    except InvalidTransition as err:
        copy = pickle.loads(pickle.dumps(err))
        assert (copy.from_state, copy.to_state, copy.trigger) == (
            err.from_state,
            err.to_state,
            err.trigger,
        )
        assert str(copy) == str(err)
    assert pickle.loads(pickle.dumps(lc.rejected[0])) == lc.rejected[0]


# ------------------------------------------------------------------------------- property

ALL_STATES = list(BotState)
ALL_TRIGGERS = list(Trigger)
RETURN_STATE = {S.TRAILING: S.ACTIVE, S.PUMP: S.ACTIVE}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_attempts_only_follow_listed_edges(data: st.DataObject) -> None:
    lc = machine()
    failures = 0
    for _ in range(data.draw(st.integers(0, 60), label="steps")):
        outgoing = sorted((d, t) for s, d, t in ALLOWED_TRANSITIONS if s is lc.state)
        use_listed = bool(outgoing) and data.draw(st.booleans())
        if use_listed:
            to, trigger = data.draw(st.sampled_from(outgoing))
        else:
            to = data.draw(st.sampled_from(ALL_STATES))
            trigger = data.draw(st.sampled_from(ALL_TRIGGERS))
        before = lc.state
        expected_ok = lc.can_transition(to, trigger)
        try:
            lc.transition(to, trigger)
        except InvalidTransition:
            failures += 1
            assert not expected_ok
            assert lc.state is before
        else:
            assert expected_ok
            assert lc.state is to
    assert len(lc.rejected) == failures

    # every accepted step is a listed edge, and the history chains from INITIALIZING
    current = S.INITIALIZING
    pause_origin: BotState | None = None
    error_origin: BotState | None = None
    closing_by: Trigger | None = None
    for step in lc.history:
        assert (step.from_state, step.to_state, step.trigger) in ALLOWED_TRANSITIONS
        assert step.from_state is current
        assert current not in TERMINAL_STATES
        # an independent model of the guarded rows
        if step.trigger in RESUME_TRIGGERS:
            assert pause_origin is not None
            if pause_origin is S.INITIALIZING:
                assert step.to_state in SETUP_OUTCOMES
            else:
                assert step.to_state is RETURN_STATE.get(pause_origin, pause_origin)
        if step.trigger is T.RECOVERED:
            assert error_origin is not None
            if error_origin is S.INITIALIZING:
                assert step.to_state in SETUP_OUTCOMES
            else:
                assert step.to_state is RETURN_STATE.get(error_origin, error_origin)
        if step.trigger is T.DONE:
            assert closing_by is not None
            want = S.COMPLETED if closing_by in (T.TAKE_PROFIT_HIT, T.TWAP_FINISHED) else S.STOPPED
            assert step.to_state is want
        if step.to_state is S.PAUSED and step.from_state is not S.ERROR:
            pause_origin = step.from_state
        if step.to_state is S.ERROR:
            error_origin = step.from_state
        if step.to_state is S.CLOSING and step.trigger is not T.RECOVERED:
            closing_by = step.trigger
        current = step.to_state
    assert current is lc.state
    assert [h.at for h in lc.history] == sorted(h.at for h in lc.history)
    assert BotLifecycle.from_dict(lc.to_dict()).to_dict() == lc.to_dict()

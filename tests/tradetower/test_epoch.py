"""epoch_ms agrees with pandas' own conversion in every unit, before 1970 and with NaT."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradetower.domain.epoch import epoch_ms, floor_divide, floor_divide_nb

TICKS = st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=40)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@given(ticks=TICKS)
def test_epoch_ms_matches_pandas(unit: str, ticks: list[int]) -> None:
    if unit == "s":
        ticks = [t // 10**6 for t in ticks]
    idx = pd.DatetimeIndex(np.array(ticks, dtype=f"datetime64[{unit}]"), tz="UTC")
    got = epoch_ms(idx)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, idx.as_unit("ms").asi8)


def test_epoch_ms_floors_before_the_epoch_and_keeps_nat() -> None:
    idx = pd.DatetimeIndex(np.array([-1_500_000, -1, 1_999_999], dtype="datetime64[ns]"))
    np.testing.assert_array_equal(epoch_ms(idx), [-2, -1, 1])
    with_nat = pd.DatetimeIndex([pd.Timestamp("2024-01-01"), pd.NaT]).as_unit("us")
    np.testing.assert_array_equal(epoch_ms(with_nat), with_nat.as_unit("ms").asi8)


@pytest.mark.parametrize("unit", ["us", "ns"])
@pytest.mark.parametrize("where", [0, 1, 2])
def test_nat_in_any_place_stays_nat(unit: str, where: int) -> None:
    """In nanoseconds NaT is not too large for the division's float estimate: it must not be
    divided as a number."""
    stamps: list[object] = [pd.Timestamp("2024-01-01 00:00:01.5"), pd.Timestamp("2024-01-02")]
    stamps.insert(where, pd.NaT)
    idx = pd.DatetimeIndex(stamps).as_unit(unit)
    np.testing.assert_array_equal(epoch_ms(idx), idx.as_unit("ms").asi8)


def test_epoch_ms_returns_a_copy_in_milliseconds() -> None:
    idx = pd.DatetimeIndex(np.array([1, 2], dtype="datetime64[ms]"))
    out = epoch_ms(idx)
    out[0] = 99
    assert idx.asi8[0] == 1


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_finer_units_are_divided_without_pandas_conversion(
    unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = pd.DatetimeIndex(np.array([-1_500_000, 0, 86_400_000_000], dtype="datetime64[ns]"))
    idx = idx.as_unit(unit)
    expected = idx.as_unit("ms").asi8

    def refuse(self: pd.DatetimeIndex, unit: str) -> pd.DatetimeIndex:
        raise AssertionError("converted by pandas")

    monkeypatch.setattr(pd.DatetimeIndex, "as_unit", refuse)
    np.testing.assert_array_equal(epoch_ms(idx), expected)


@pytest.mark.parametrize("per", [1, 7, 1_000, 1_000_000, 10**9])
@given(values=st.lists(st.integers(-(2**63) + 1, 2**63 - 1), min_size=1, max_size=60))
def test_floor_divide_is_numpys_floor_division(per: int, values: list[int]) -> None:
    arr = np.array(values, dtype=np.int64)
    np.testing.assert_array_equal(floor_divide(arr, per), arr // per)


def test_floor_divide_near_every_quotient_boundary() -> None:
    """Multiples of the divisor and their neighbours, where a float estimate is off by one, up
    to the largest quotient the estimate is exact for."""
    rng = np.random.default_rng(7)
    for per in (1_000, 1_000_000):
        top = min(2**50 - 2, (2**63 - 1) // per - 2)
        q = np.concatenate([rng.integers(-top, top, 20_000), [top, -top, 0, -1]])
        values = np.concatenate([q * per + d for d in (-1, 0, 1, per - 1)])
        out = np.empty(values.shape[0], dtype=np.int64)
        assert floor_divide_nb(values, per, out)
        np.testing.assert_array_equal(out, values // per)


def test_floor_divide_refuses_quotients_it_cannot_make_exact() -> None:
    values = np.array([2**53 + 1, 5], dtype=np.int64)
    out = np.empty(2, dtype=np.int64)
    assert not floor_divide_nb(values, 1, out)
    np.testing.assert_array_equal(floor_divide(values, 1), values)  # numpy's division instead

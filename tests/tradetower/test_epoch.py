"""epoch_ms agrees with pandas' own conversion in every unit, before 1970 and with NaT."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradetower.domain.epoch import epoch_ms

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

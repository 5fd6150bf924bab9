"""Log codes become the names the result frames show, looked up once per distinct code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.result import ORDER_STATUS, REASONS, labels
from tradetower import kernel_abi as K


def test_codes_are_named_from_a_mapping_with_a_default_for_unknown_ones() -> None:
    codes = np.array([K.ST_FILLED, K.ST_OPEN, K.ST_FILLED, 99.0])
    assert list(labels(codes, ORDER_STATUS)) == ["FILLED", "OPEN", "FILLED", "?"]


def test_a_callable_default_names_an_unknown_code_itself() -> None:
    codes = np.array([K.R_USER, 1234])
    assert list(labels(codes, REASONS, str)) == ["USER", "1234"]


def test_a_sequence_is_indexed_from_zero_and_out_of_range_codes_get_the_default() -> None:
    codes = np.array([1.0, 0.0, -1.0, 2.0])
    assert list(labels(codes, ("BTC", "ETH"), "")) == ["ETH", "BTC", "", ""]


def test_no_codes_make_the_column_an_empty_list_would() -> None:
    empty = labels(np.zeros(0), ORDER_STATUS)
    column = pd.DataFrame({"status": empty})["status"]
    assert column.dtype == pd.DataFrame({"status": []})["status"].dtype
    assert len(column) == 0


def test_named_codes_become_a_string_column() -> None:
    column = pd.DataFrame({"status": labels(np.array([K.ST_OPEN]), ORDER_STATUS)})["status"]
    assert column.dtype == pd.DataFrame({"status": ["OPEN"]})["status"].dtype
    assert column.iloc[0] == "OPEN"

"""A bot's price levels over time, derived from its orders frame.

Each resting order (limit or stop, with a price) is one horizontal segment at its price, from
the bar it was placed on to the bar it was filled or cancelled on; an order still open at the
end runs to the last bar. Market orders rest nowhere and are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RESTING_TYPES = ("LIMIT", "STOP")


def order_levels(orders: pd.DataFrame, times: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per resting order: ``start``/``end`` times and its ``price``.

    ``times`` is the run's bar timeline (the equity curve's index): ``done_bar`` indexes it.
    """
    price = orders["price"].to_numpy(dtype="float64")
    resting = orders["type"].isin(RESTING_TYPES).to_numpy() & np.isfinite(price)
    rows = orders.loc[resting & (len(times) > 0)]
    last = max(len(times) - 1, 0)
    placed = rows["placed_bar"].to_numpy(dtype=np.int64).clip(0, last)
    done = rows["done_bar"].to_numpy(dtype=np.int64)
    still_open = (rows["status"] == "OPEN").to_numpy() | (done < 0)
    done = np.where(still_open, last, done.clip(0, last))
    return pd.DataFrame(
        {
            "order_id": rows["order_id"].to_numpy(),
            "instrument": rows["instrument"].to_numpy(),
            "side": rows["side"].to_numpy(),
            "type": rows["type"].to_numpy(),
            "status": rows["status"].to_numpy(),
            "price": rows["price"].to_numpy(dtype="float64"),
            "start": times[placed],
            "end": times[done],
        }
    )

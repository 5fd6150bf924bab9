"""Golden regression backtests: every built-in bot on real sample data.

Each case's metrics and a digest of its fills are stored in ``tests/golden/<case>.json``.
``tests/golden/test_golden.py`` fails when a change moves any of them. To accept a deliberate
change, re-record and commit the JSON files:

    .venv/bin/python tests/golden/record.py [case ...]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simulator import backtest
from simulator.result import BacktestResult
from strategies import strategy_class
from tradetower.domain import AssetClass, Instrument

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "data"
SPOT = "binance_ETH-BTC_5m_2018-01.parquet"
PERP = "binance_XRP-USDT-PERP_5m_2021-11.parquet"


def spot() -> Instrument:
    return Instrument(symbol="ETH/BTC", tick=1e-6, lot=0.001, maker_fee=0.001, taker_fee=0.001)


def perp(leverage: float) -> Instrument:
    return Instrument(
        symbol="XRP-PERP",
        asset_class=AssetClass.CRYPTO_FUTURES,
        tick=0.0001,
        lot=0.1,
        maker_fee=0.0002,
        taker_fee=0.0005,
        leverage=leverage,
        margin=True,
    )


@dataclass(frozen=True)
class Case:
    name: str
    strategy: str
    config: dict[str, Any]
    data: str
    leverage: float = 0.0  # 0: the spot instrument
    settings: dict[str, Any] = field(default_factory=dict)

    def run(self, **overrides: Any) -> BacktestResult:
        """The case's backtest; ``overrides`` replace its settings (``mode="python"``)."""
        bars = pd.read_parquet(DATA / self.data)
        inst = perp(self.leverage) if self.leverage else spot()
        cls = strategy_class(self.strategy)
        return backtest(
            cls(cls.Config.parse(self.config)),
            {inst.symbol: bars},
            instrument={inst.symbol: inst},
            **{**self.settings, **overrides},
        )


CASES = (
    Case("sma_cross", "sma_cross", {"fast": 10, "slow": 50}, SPOT, settings={"cash": 1.0}),
    Case(
        "simple_grid",
        "simple_grid",
        {"low_price": 0.085, "high_price": 0.105, "grid_levels": 30, "investment": 1.0},
        SPOT,
        settings={"cash": 2.0},
    ),
    Case(
        "grid",
        "grid",
        {"low_price": 0.085, "high_price": 0.105, "grid_levels": 50, "investment": 1.0},
        SPOT,
        settings={"cash": 2.0},
    ),
    Case(
        "dca",
        "dca",
        {
            "base_order_amount": 0.1,
            "averaging_orders_amount": 0.4,
            "averaging_orders_quantity": 4,
            "averaging_orders_step": 1,
            "take_profit_pct": 1,
        },
        SPOT,
        settings={"cash": 1.0},
    ),
    Case(
        "btd",
        "btd",
        {"investment": 10, "low_price": 0.085, "high_price": 0.105, "grid_levels": 20},
        SPOT,
        settings={"cash": 0.0, "holdings": {"ETH/BTC": 10.0}},
    ),
    Case(
        "loop",
        "loop",
        {"investment": 1, "low_price": 0.08, "order_distance": 1, "order_count": 10},
        SPOT,
        settings={"cash": 2.0},
    ),
    Case(
        "twap",
        "twap",
        {"direction": "BUY", "total_amount": 10, "duration": 600, "frequency": 60},
        SPOT,
        settings={"cash": 2.0},
    ),
    Case(
        "dca_futures",
        "dca_futures",
        {
            "leverage": 3,
            "base_order_amount": 40,
            "averaging_orders_amount": 60,
            "averaging_orders_quantity": 3,
            "averaging_orders_step": 1,
            "take_profit_pct": 1,
            "liquidation_buffer": 5,
        },
        PERP,
        leverage=3,
        settings={"cash": 1_000.0},
    ),
    Case(
        "combo",
        "combo",
        {
            "leverage": 3,
            "base_order_amount": 40,
            "averaging_orders_amount": 60,
            "averaging_orders_quantity": 2,
            "averaging_orders_step": 1,
            "grid_levels": 3,
            "stop_loss_pct": 20,
            "liquidation_buffer": 5,
        },
        PERP,
        leverage=3,
        settings={"cash": 1_000.0},
    ),
    Case(
        "futures_grid",
        "futures_grid",
        {
            "direction": "NEUTRAL",
            "low_price": 0.9,
            "high_price": 1.3,
            "grid_quantity": 20,
            "grid_mode": "ARITHMETIC",
            "investment": 100,
            "leverage": 3,
            "liquidation_buffer": 5,
        },
        PERP,
        leverage=3,
        settings={"cash": 1_000.0},
    ),
)


def fills_digest(result: BacktestResult) -> str:
    """SHA-256 of the fills, rounded to 10 significant digits (platform float noise aside)."""
    f = result.fills[["bar", "side", "qty", "price", "fee", "order_id", "liquidation"]]
    text = f.to_csv(index=False, float_format="%.10g")
    return hashlib.sha256(text.encode()).hexdigest()


def record_of(result: BacktestResult) -> dict[str, Any]:
    keep = {k: v for k, v in result.metrics.items() if k != "elapsed_ms"}
    return {"metrics": keep, "n_fills": len(result.fills), "fills_sha256": fills_digest(result)}

"""Every built-in bot on the benchmark's 525,600 bars, timed against the SMA crossover.

Target (issue 3): each bot within 3x of the engine's SMA-crossover time on the same bars.
Run: ``NUMBA_NUM_THREADS=1 .venv/bin/python -m bench.bots``.
"""

from __future__ import annotations

import time
from typing import Any

from bench.data import random_walk_bars
from simulator import backtest
from strategies import strategy_class
from tradetower.domain import AssetClass, Instrument

SPOT = Instrument(symbol="X/USD", tick=0.01, lot=0.0001, maker_fee=0.001, taker_fee=0.001)
PERP = Instrument(
    symbol="X-PERP",
    asset_class=AssetClass.CRYPTO_FUTURES,
    tick=0.01,
    lot=0.001,
    maker_fee=0.0002,
    taker_fee=0.0005,
    leverage=3,
    margin=True,
)


def cases(c0: float) -> list[tuple[str, dict[str, Any], Instrument, dict[str, Any]]]:
    band = {"low_price": c0 * 0.9, "high_price": c0 * 1.1}
    dca = {"averaging_orders_step": 1, "take_profit_pct": 1}
    futures = {"leverage": 3, "liquidation_buffer": 5}
    return [
        ("sma_cross", {"fast": 10, "slow": 50}, SPOT, {}),
        ("grid", {**band, "grid_levels": 50, "investment": 1000}, SPOT, {}),
        (
            "dca",
            {
                **dca,
                "base_order_amount": 100,
                "averaging_orders_amount": 400,
                "averaging_orders_quantity": 4,
            },
            SPOT,
            {},
        ),
        (
            "btd",
            {**band, "investment": 10, "grid_levels": 20},
            SPOT,
            {"holdings": {"X/USD": 10.0}, "cash": 0.0},
        ),
        (
            "loop",
            {"investment": 1000, "low_price": c0 * 0.8, "order_distance": 1, "order_count": 10},
            SPOT,
            {},
        ),
        (
            "twap",
            {"direction": "BUY", "total_amount": 10, "duration": 1440, "frequency": 60},
            SPOT,
            {},
        ),
        (
            "dca_futures",
            {
                **dca,
                **futures,
                "base_order_amount": 40,
                "averaging_orders_amount": 60,
                "averaging_orders_quantity": 3,
            },
            PERP,
            {},
        ),
        (
            "combo",
            {
                **futures,
                "base_order_amount": 40,
                "averaging_orders_amount": 60,
                "averaging_orders_quantity": 2,
                "averaging_orders_step": 1,
                "grid_levels": 3,
                "stop_loss_pct": 20,
            },
            PERP,
            {},
        ),
        (
            "futures_grid",
            {
                **band,
                **futures,
                "direction": "NEUTRAL",
                "grid_quantity": 50,
                "grid_mode": "GEOMETRIC",
                "investment": 1000,
            },
            PERP,
            {},
        ),
    ]


def main(repeat: int = 3) -> None:
    bars = random_walk_bars()
    base = None
    print(f"bots on {len(bars):,} bars, best of {repeat} after a warm-up")
    for name, cfg, inst, extra in cases(float(bars["close"].iloc[0])):
        cls = strategy_class(name)

        def run(
            cls: Any = cls,
            cfg: dict[str, Any] = cfg,
            inst: Instrument = inst,
            extra: dict[str, Any] = extra,
        ) -> Any:
            settings = {"cash": 10_000.0, **extra}
            return backtest(
                cls(cls.Config.parse(cfg)),
                {inst.symbol: bars},
                instrument={inst.symbol: inst},
                **settings,
            )

        result = run()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        best = min(times)
        base = base or best
        ratio = best / base
        flag = "PASS" if ratio <= 3 else "MISS"
        print(
            f"{flag} {name:13s} {best * 1e3:8.1f} ms  fills {result.metrics['n_fills']:6d}"
            f"  {ratio:5.2f}x the SMA crossover"
        )


if __name__ == "__main__":
    main()

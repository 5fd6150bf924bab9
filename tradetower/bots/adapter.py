"""The Python side of a bot kernel: decode its header, its transitions and checkpoints."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tradetower.bots import codes as C
from tradetower.bots import header as H
from tradetower.lifecycle import BotState, Trigger
from tradetower.strategy import KernelStrategy


class BotStrategy(KernelStrategy):
    """A built-in bot: a typed config, a kernel, and a state vector with the shared header."""

    @property
    def lifecycle_state(self) -> BotState:
        return C.STATES[int(self.state[H.H_STATE])]

    def transitions(self) -> list[dict[str, Any]]:
        """The recorded transitions, oldest first (the ring keeps the last LOG_CAP)."""
        n = int(self.state[H.H_N_TRANSITIONS])
        first = max(0, n - H.LOG_CAP)
        out = []
        for k in range(first, n):
            row = H.LOG_START + (k % H.LOG_CAP) * H.LOG_WIDTH
            bar, src, dst, trig = self.state[row : row + H.LOG_WIDTH]
            out.append(
                {
                    "bar": int(bar),
                    "from": C.STATES[int(src)].value,
                    "to": C.STATES[int(dst)].value,
                    "trigger": C.TRIGGERS[int(trig)].value,
                }
            )
        return out

    def bot_metrics(self) -> dict[str, Any]:
        s = self.state
        return {
            "bot_state": self.lifecycle_state.value,
            "realized_pnl": float(s[H.H_REALIZED]),
            "bot_fees": float(s[H.H_FEES]),
            "cycles": int(s[H.H_CYCLES]),
            "transitions": int(s[H.H_N_TRANSITIONS]),
            "invalid_transitions": int(s[H.H_N_REJECTED]),
        }

    def metrics(self) -> dict[str, Any]:
        return self.bot_metrics() if self.state.size else {}

    def checkpoint(self) -> str:
        """JSON of the config and the whole state vector (restores to identical results)."""
        config = getattr(self, "config", None)
        return json.dumps(
            {
                "strategy": self.name,
                "config": config.model_dump(mode="json") if config is not None else {},
                "state": self.state.tolist(),
            }
        )

    def restore(self, checkpoint: str) -> None:
        data = json.loads(checkpoint)
        if data.get("strategy") != self.name:
            raise ValueError(f"checkpoint of {data.get('strategy')!r}, not {self.name!r}")
        self.state = np.asarray(data["state"], dtype=np.float64)


def trigger_name(code: int) -> str:
    return Trigger(C.TRIGGERS[code]).value

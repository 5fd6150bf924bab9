"""Bayesian search with Optuna's TPE sampler, deterministic and resumable.

Trials are asked in batches of ``batch`` (``batch=1`` is plain sequential TPE); a batch is
evaluated as chunks of a sweep, then told back. Before each batch the study gets a fresh
``TPESampler`` seeded from ``(seed, batch number)``, so the trials of batch *b* depend only on
the seed and the trials told before it: a resumed study (finished trials replayed from the sweep
folder) asks exactly what an uninterrupted one would have. A combination the config refuses, or
whose objective is NaN, is told as a failed trial.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from simulator.research.space import Dimension, Space


def distribution(dim: Dimension) -> BaseDistribution:
    """Optuna's distribution for a dimension: an evenly stepped integer range keeps its order
    (``IntDistribution``), other value lists are categorical, ranges are continuous."""
    if dim.values is None:
        assert dim.low is not None and dim.high is not None
        if dim.kind == "int":
            return IntDistribution(int(dim.low), int(dim.high))
        return FloatDistribution(dim.low, dim.high)
    values = dim.values
    if dim.kind == "int" and len(values) > 1:
        step = values[1] - values[0]
        if step > 0 and list(values) == list(range(values[0], values[-1] + 1, step)):
            return IntDistribution(values[0], values[-1], step=step)
    return CategoricalDistribution(values)


class TpeSearch:
    """An Optuna study over ``space`` maximising (or minimising) one value."""

    def __init__(self, space: Space, *, maximize: bool, seed: int) -> None:
        self.seed = seed
        self.distributions = {d.name: distribution(d) for d in space.dimensions}
        with _quiet():
            self.study = optuna.create_study(
                direction="maximize" if maximize else "minimize",
                sampler=self._sampler(0),
            )

    def _sampler(self, batch: int) -> optuna.samplers.TPESampler:
        derived = int(np.random.SeedSequence([self.seed, batch]).generate_state(1)[0])
        return optuna.samplers.TPESampler(seed=derived)

    def replay(self, params: Mapping[str, Any], value: float) -> None:
        """Add a trial finished by an earlier run of the same sweep."""
        ok = not math.isnan(value)
        with _quiet():
            self.study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.COMPLETE if ok else TrialState.FAIL,
                    value=value if ok else None,
                    params=dict(params),
                    distributions=self.distributions,
                )
            )

    def ask(self, batch: int, size: int) -> list[optuna.trial.Trial]:
        """The ``size`` trials of batch number ``batch``."""
        self.study.sampler = self._sampler(batch)
        with _quiet():
            return [self.study.ask(self.distributions) for _ in range(size)]

    def tell(self, trial: optuna.trial.Trial, value: float) -> None:
        with _quiet():
            if math.isnan(value):
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                self.study.tell(trial, value)


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna logs every trial at INFO; a sweep has its own progress bar."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)

"""Causal temporal smoothing of per-frame measurements (head pose, expression, gaze, crop
boxes) with the One Euro filter (Casiez, Roussel and Vogel, CHI 2012).

A One Euro filter is an exponential moving average whose cut-off frequency rises with the
signal's speed: a still head gets a low cut-off (jitter removed), a moving one a high
cut-off (little lag). It needs no look-ahead, so the same code serves files and live
cameras.

Every value is filtered on its own. Values should be in comparable units, since one
``beta`` serves them all: freehead feeds degrees for angles and crop pixels (of a 256
crop) for positions, so 1 unit is about the smallest change one can see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothingConfig:
    """``strength`` scales the smoothing: 0 turns it off, 1 is the default, 2 smooths
    about twice as much (half the cut-off frequency of a still signal).

    ``min_cutoff_hz``: the cut-off of a still signal at strength 1; ``beta``: how fast the
    cut-off rises with speed (Hz per unit/s); ``derivative_cutoff_hz``: the cut-off of the
    speed estimate itself.
    """

    strength: float = 1.0
    min_cutoff_hz: float = 1.0
    beta: float = 0.1
    derivative_cutoff_hz: float = 1.0


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The EMA weight of a first-order low-pass with this cut-off at time step dt."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters a stream of equally shaped arrays sampled at ``fps``.

    >>> f = OneEuroFilter(fps=25.0)
    >>> smoothed = [f(x) for x in noisy]  # doctest: +SKIP
    """

    def __init__(self, fps: float, config: SmoothingConfig = SmoothingConfig()):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if config.strength < 0:
            raise ValueError(f"smoothing strength must be >= 0, got {config.strength}")
        self.dt = 1.0 / fps
        self.config = config
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    @property
    def enabled(self) -> bool:
        return self.config.strength > 0

    def reset(self) -> None:
        self._value = None
        self._speed = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if not self.enabled:
            return x.copy()
        if self._value is None or self._value.shape != x.shape:
            self._value, self._speed = x.copy(), np.zeros_like(x)
            return x.copy()
        c = self.config
        speed = (x - self._value) / self.dt
        self._speed = self._speed + _alpha(c.derivative_cutoff_hz, self.dt) * (speed - self._speed)
        cutoff = c.min_cutoff_hz / c.strength + c.beta * np.abs(self._speed)
        self._value = self._value + _alpha(cutoff, self.dt) * (x - self._value)
        return self._value.copy()

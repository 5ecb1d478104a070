"""Stage timings of the per-frame path, for ``freehead bench``: the path records how long
each stage takes when given a :class:`StageClock`, and costs nothing measurable without."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


class StageClock:
    """Seconds spent in each named stage, one entry per pass."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds.setdefault(name, []).append(time.perf_counter() - start)

    def stage(self, name: str) -> AbstractContextManager[None]:
        """``with clock.stage("generator"): ...`` adds the block's time to that stage."""
        return self._timed(name)

    def clear(self) -> None:
        self.seconds.clear()


class NoClock(StageClock):
    """A clock that records nothing (the default)."""

    def stage(self, name: str) -> AbstractContextManager[None]:
        return nullcontext()

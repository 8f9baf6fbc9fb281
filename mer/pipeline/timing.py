"""Per-stage wall-clock timings (milliseconds) reported in ``timings_ms``."""

from __future__ import annotations

import time


class StageTimer:
    """Adds up wall-clock milliseconds per stage name.

    ``t = timer.add("motion", t0)`` adds ``now - t0`` to ``"motion"`` and returns ``now``
    (``time.perf_counter`` seconds), so consecutive stages chain.
    """

    def __init__(self, initial_ms: dict[str, float] | None = None) -> None:
        self.ms: dict[str, float] = dict(initial_ms or {})

    def add(self, stage: str, t0: float) -> float:
        """Add the time since ``t0`` (perf_counter s) to ``stage``; return now."""
        t1 = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (t1 - t0) * 1000
        return t1

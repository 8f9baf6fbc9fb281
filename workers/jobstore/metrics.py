"""Job outcome statistics: finished jobs by outcome, per-stage time histograms.

The API's ``GET /metrics`` shows them as ``mer_jobs_finished_total{state,code}`` and
``mer_job_stage_duration_seconds{stage}`` (:meth:`JobStats.families`). A store keeps them
where every process that finishes jobs can add to them:

* in one process (the file store: one API process and its embedded runner):
  :class:`MemoryJobMetrics`, prometheus_client's own :class:`~prometheus_client.Counter`
  and :class:`~prometheus_client.Histogram` in a private registry;
* across hosts (the Redis store: Celery workers anywhere): counters in Redis hashes
  (:mod:`workers.jobstore.redis_store`), bucketed with :func:`bucket_index`.
  prometheus_client's multiprocess mode shares one directory, hence one host, so it
  cannot stand in for them.

Both are read back as a :class:`JobStats` snapshot.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

#: Name of the finished-jobs counter (exposed with the ``_total`` suffix).
JOBS_FINISHED = "mer_jobs_finished"
#: Name of the per-stage time histogram (seconds).
STAGE_DURATION = "mer_job_stage_duration_seconds"

#: Upper bounds (seconds) of the per-stage time histogram buckets (``+Inf`` implied).
STAGE_BUCKETS_S: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip


def bucket_index(seconds: float) -> int:
    """Index of the first histogram bucket holding ``seconds`` (``len`` = ``+Inf``)."""
    return bisect.bisect_left(STAGE_BUCKETS_S, seconds)


@dataclass
class JobStats:
    """Job outcome counters and per-stage time histograms (non-cumulative buckets).

    Attributes:
        outcomes: ``{(state, code): count}``; ``code`` is ``""`` for a success.
        stage_buckets: ``{stage: [count per bucket of STAGE_BUCKETS_S, then +Inf]}``.
        stage_sum_s: ``{stage: total seconds}``.
    """

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    stage_buckets: dict[str, list[int]] = field(default_factory=dict)
    stage_sum_s: dict[str, float] = field(default_factory=dict)

    def families(self) -> Iterator[Metric]:
        """The statistics as Prometheus metric families (cumulative ``le`` buckets)."""
        outcomes = CounterMetricFamily(
            JOBS_FINISHED, "Finished jobs by final state and error code.", labels=["state", "code"]
        )
        for (state, code), count in sorted(self.outcomes.items()):
            outcomes.add_metric([state, code], count)
        yield outcomes
        stages = HistogramMetricFamily(
            STAGE_DURATION, "Time spent per pipeline stage of succeeded jobs.", labels=["stage"]
        )
        for stage, buckets in sorted(self.stage_buckets.items()):
            cumulative, rows = 0, []
            for bound, count in zip((*STAGE_BUCKETS_S, float("inf")), buckets, strict=True):
                cumulative += count
                rows.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            stages.add_metric([stage], rows, sum_value=self.stage_sum_s.get(stage, 0.0))
        yield stages


class MemoryJobMetrics:
    """This process's job outcomes, in prometheus_client's Counter and Histogram.

    Thread-safe (prometheus_client's metrics are); each instance has its own registry,
    so two stores in one process (tests) do not share counts.
    """

    def __init__(self) -> None:
        """Start empty."""
        self.registry = CollectorRegistry()
        self.finished = PromCounter(
            JOBS_FINISHED, "Finished jobs.", ["state", "code"], registry=self.registry
        )
        self.stage_s = Histogram(
            STAGE_DURATION,
            "Stage times.",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=self.registry,
        )

    def add(self, state: str, code: str | None, timings_ms: Mapping[str, float]) -> None:
        """Count one job outcome and its stage times (milliseconds)."""
        self.finished.labels(state, code or "").inc()
        for stage, ms in timings_ms.items():
            self.stage_s.labels(stage).observe(float(ms) / 1000.0)

    def snapshot(self) -> JobStats:
        """The counts so far (a copy that later updates do not change)."""
        stats = JobStats()
        cumulative: dict[str, list[int]] = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == f"{JOBS_FINISHED}_total":
                    key = (sample.labels["state"], sample.labels["code"])
                    stats.outcomes[key] = int(sample.value)
                elif sample.name == f"{STAGE_DURATION}_bucket":
                    cumulative.setdefault(sample.labels["stage"], []).append(int(sample.value))
                elif sample.name == f"{STAGE_DURATION}_sum":
                    stats.stage_sum_s[sample.labels["stage"]] = float(sample.value)
        for stage, counts in cumulative.items():  # buckets come in ``le`` order
            previous = [0, *counts[:-1]]
            stats.stage_buckets[stage] = [b - a for a, b in zip(previous, counts, strict=True)]
        return stats

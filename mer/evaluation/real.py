"""``evaluate_real``: analyse every labelled real clip and write the report.

The analysis function is a parameter, so the same evaluation re-runs on any pipeline
version (default: :func:`mer.pipeline.analyze_video` with default settings and backends).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mer.aus.reference import NeutralSpan
from mer.errors import MERError
from mer.evaluation.labels import LabelledClip, find_video, load_label_files
from mer.evaluation.pooled import pool
from mer.evaluation.scoring import ClipScore, score_clip
from mer.schemas import AnalysisResult

#: ``analyze(path) -> AnalysisResult``; MERError means "this clip failed" (reported). With
#: ``neutral_from_labels``, clips with a labelled rest are analysed as
#: ``analyze(path, neutral=NeutralSpan(a, b, "frame"))``.
AnalyzeFn = Callable[..., AnalysisResult]
#: ``progress(clips done, clips total, name of the clip starting now or "" at the end)``.
ProgressFn = Callable[[int, int, str], None]


def default_analyze(path: Path, neutral: NeutralSpan | None = None) -> AnalysisResult:
    """The pipeline as shipped: :func:`mer.pipeline.analyze_video` with default settings
    (and, when given, the person's neutral stretch :attr:`AnalysisConfig.neutral`)."""
    from mer.pipeline import AnalysisConfig, analyze_video

    return analyze_video(path, config=AnalysisConfig(neutral=neutral) if neutral else None)


@dataclass
class ClipRun:
    """One clip: labels, video path, the result (None when it failed), its score, timing."""

    clip: LabelledClip
    video: Path
    result: AnalysisResult | None
    score: ClipScore
    seconds: float

    @property
    def frames_per_s(self) -> float | None:
        """Decoded frames per second of wall time (None without a result)."""
        if self.result is None or self.seconds <= 0:
            return None
        return self.result.video.frame_count / self.seconds


@dataclass
class RealReport:
    """Pooled metrics and per-clip runs of one evaluation."""

    label_files: list[str]
    video_dirs: list[str]
    metrics: dict
    runs: list[ClipRun]
    models: list[dict] = field(default_factory=list)
    host: dict = field(default_factory=dict)
    #: clips with a labelled rest were analysed against it (a neutral reference)
    neutral_from_labels: bool = False

    def to_json(self) -> dict:
        """The ``report.json`` payload (no per-frame data)."""
        clips = []
        for r in self.runs:
            s = asdict(r.score)
            res = r.result
            clips.append({
                "clip": r.clip.name, "video": str(r.video), "error": r.score.error,
                "frames": res.video.frame_count if res else None,
                "fps": round(res.video.fps, 3) if res else None,
                "seconds": round(r.seconds, 2),
                "frames_per_s": round(r.frames_per_s, 1) if r.frames_per_s else None,
                "au_method": res.au_method if res else None,
                "result_emotion": res.emotion.label if res and res.emotion else None,
                "emotion_reason": res.emotion_reason if res else None,
                "warnings": (res.warnings if res else []) + r.score.warnings,
                "n_expression_events": s["n_expression_events"],
                "matched": len(s["matches"]),
                "intervals": s["intervals"],
                "matches": s["matches"],
                "non_expression": s["non_expression_rows"],
            })  # fmt: skip
        total_s = sum(r.seconds for r in self.runs)
        total_f = sum(r.result.video.frame_count for r in self.runs if r.result)
        return {
            "label_files": self.label_files,
            "video_dirs": self.video_dirs,
            "n_clips": len(self.runs),
            "neutral_from_labels": self.neutral_from_labels,
            "failed": [r.clip.name for r in self.runs if r.result is None],
            "models": self.models,
            "host": self.host,
            "seconds": round(total_s, 1),
            "frames": total_f,
            "frames_per_s": round(total_f / total_s, 1) if total_s else None,
            **self.metrics,
            "clips": clips,
        }


def evaluate_real(
    label_files: Sequence[str | Path],
    video_dirs: Sequence[str | Path] = (),
    out_dir: str | Path | None = None,
    *,
    analyze: AnalyzeFn = default_analyze,
    progress: ProgressFn | None = None,
    plots: bool = True,
    neutral_from_labels: bool = False,
) -> RealReport:
    """Analyse every labelled clip, score it and (with ``out_dir``) write the report.

    Args:
        label_files: label JSON files (format of ``shared/data/dev/README.md``).
        video_dirs: folders searched for a clip after its label file's own folder.
        out_dir: where ``report.json``, ``report.md`` and one PNG per clip go; None =
            score only.
        analyze: the analysis function (``path -> AnalysisResult``). A ``MERError`` it
            raises marks that clip failed (its events count as missed) and is reported.
        progress: called with ``(done, total, clip name)`` before each clip and with
            ``(total, total, "")`` at the end.
        plots: write the per-clip PNGs.
        neutral_from_labels: analyse each clip that has a labelled ``rest_frames`` against
            that stretch as the person's neutral (:mod:`mer.aus.reference`; what a client
            who knows the rest would send); clips without one as usual. Off: every clip
            with the estimated neutral, the product's default.

    Returns:
        :class:`RealReport`.

    Raises:
        LabelFileError: a label file is bad (before anything is analysed).
        ClipNotFoundError: a labelled clip is in none of the folders (before anything is
            analysed).
    """
    clips = load_label_files(label_files)
    videos = [find_video(c, video_dirs) for c in clips]  # all present before any work
    load_start = os.getloadavg()[0]
    runs: list[ClipRun] = []
    for k, (clip, video) in enumerate(zip(clips, videos, strict=True)):
        if progress is not None:
            progress(k, len(clips), clip.name)
        t0 = time.perf_counter()
        result: AnalysisResult | None
        try:
            rest = clip.labels.rest_frames if neutral_from_labels else None
            if rest is None:
                result, error = analyze(video), None
            else:
                result, error = analyze(video, neutral=NeutralSpan(*rest, unit="frame")), None
        except MERError as exc:
            result, error = None, f"{exc.code}: {exc.message}"
        seconds = time.perf_counter() - t0
        runs.append(ClipRun(clip, video, result, score_clip(clip, result, error), seconds))
    if progress is not None:
        progress(len(clips), len(clips), "")
    models = {(m.name, m.version, m.task, m.method): m.model_dump()
              for r in runs if r.result for m in r.result.models}  # fmt: skip
    report = RealReport(
        label_files=[str(p) for p in label_files],
        video_dirs=[str(d) for d in video_dirs],
        metrics=pool([r.score for r in runs]),
        runs=runs,
        models=list(models.values()),
        host={"cpus": os.cpu_count(), "load_avg_1min": [round(load_start, 1),
                                                        round(os.getloadavg()[0], 1)]},
        neutral_from_labels=neutral_from_labels,
    )  # fmt: skip
    if out_dir is not None:
        from mer.evaluation.report import write_report

        write_report(report, Path(out_dir), plots=plots)
    return report

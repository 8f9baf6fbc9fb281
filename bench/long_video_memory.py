"""Long videos in bounded memory: frames/s, peak RSS and result size of the pipeline on a
generated N-minute 640x360 30 fps clip, beside a short clip measured in the same run.

    .venv/bin/python bench/long_video_memory.py                    # 10 min vs 1 min
    .venv/bin/python bench/long_video_memory.py --minutes 1        # quick: 1 min vs 15 s
    .venv/bin/python bench/long_video_memory.py --minutes 5 10 --configs default flow-only

The clip is ``single_face.mp4`` (a real face, neutral -> smile -> neutral, 72 frames,
640x360 30 fps; ``../shared/data/videos`` or the repository's ``samples/``) played forwards
and backwards in a loop (no cut, so no head jump at the seams) and re-encoded with PyAV
(H.264) to the requested length; it is generated once and cached (``--cache-dir``, default
``$TMPDIR/mer-bench-long``). Every analysis runs in a fresh subprocess
(:func:`mer.pipeline.analyze_video_compact`, then the result JSON streamed to a file as
``mer analyze --json`` writes it, and into a file job store as the worker stores it), which
reports its peak RSS (``ru_maxrss``), the peak RSS seen in each pipeline stage (psutil,
sampled every 0.1 s; ``json``: the file, ``worker-json``: the string), the wall time and
the JSON's size.

``--configs``: ``default`` (``AnalysisConfig()``), ``blendshapes`` (``blendshapes=True``),
``flow-only`` (``blendshapes=False``). Memory flat in video length means a peak-RSS ratio
(long / baseline) near 1. The machine's load average is printed with each run: on shared
cores it moves frames/s, not memory.
Prints figures and ratios; asserts nothing (no timed assertions).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CLIP = ROOT.parent / "shared/data/videos/single_face.mp4"
SAMPLE_CLIP = ROOT / "samples/single_face.mp4"
#: --configs: the AnalysisConfig arguments of each
CONFIGS: dict[str, dict[str, bool]] = {
    "default": {},
    "blendshapes": {"blendshapes": True},
    "flow-only": {"blendshapes": False},
}


def source_clip() -> Path:
    """The looped source: the shared copy of ``single_face.mp4``, else the repository's."""
    shared = Path(os.environ.get("MER_SHARED_DATA_DIR", "")) / "videos/single_face.mp4"
    for p in (shared, SHARED_CLIP, SAMPLE_CLIP):
        if p.is_file():
            return p
    raise FileNotFoundError("single_face.mp4 not found (../shared/data/videos or samples/)")


def make_clip(minutes: float, cache_dir: Path, size: tuple[int, int] = (640, 360)) -> Path:
    """Generate (once) the ``minutes``-long clip: the source looped forwards/backwards.

    Args:
        minutes: length (minutes) at 30 fps.
        cache_dir: where the clip is cached (created).
        size: ``(width, height)`` pixels of the output.

    Returns:
        The cached ``.mp4`` (H.264, yuv420p, 30 fps).
    """
    import av
    import cv2
    import numpy as np

    fps, (w, h) = 30, size
    n = int(round(minutes * 60 * fps))
    out = cache_dir / f"single_face_loop_{n}f_{w}x{h}_{fps}fps.mp4"
    if out.is_file():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    with av.open(str(source_clip())) as src:
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    frames = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    loop = frames + frames[-2:0:-1]  # ping-pong: no cut at the seam
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as dst:
        stream = dst.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(loop[i % len(loop)]), "rgb24")
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    tmp.replace(out)
    return out


class RssSampler(threading.Thread):
    """Largest RSS (bytes) seen per pipeline stage, sampled every ``interval_s`` seconds."""

    def __init__(self, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.interval_s = interval_s
        self.stage = "start"
        self.peaks: dict[str, int] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        """Record the current RSS under the current stage."""
        rss = self.proc.memory_info().rss
        self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), rss)

    def run(self) -> None:
        while not self.stop.wait(self.interval_s):
            self.sample()


def child(video: Path, config: str, json_out: Path) -> None:
    """Analyse ``video`` with ``config``, write the JSON, print one JSON line of figures."""
    sampler = RssSampler()
    sampler.start()
    from mer.pipeline import AnalysisConfig, analyze_video_compact
    from mer.settings import Settings

    cfg = AnalysisConfig(**CONFIGS[config])
    # the service's limits (10 min by default) lifted: this measures memory at any length
    settings = Settings(max_duration_s=24 * 3600.0, max_frames=10**7)

    def progress(stage: str, pct: float) -> None:
        sampler.sample()
        sampler.stage = stage

    t0 = time.perf_counter()
    result = analyze_video_compact(video, settings=settings, config=cfg, progress=progress)
    t_analyse = time.perf_counter() - t0
    sampler.sample()
    sampler.stage = "json"
    with json_out.open("wb") as fh:  # as `mer analyze --json` writes it
        result.write_json(fh, indent=2)
    sampler.sample()
    sampler.stage = "worker-json"
    # what the worker does: JobAttempt.succeed streams it into the job store
    from workers.jobstore import FileJobStore, JobRecord, new_job_id

    store = FileJobStore(json_out.parent / "jobs", ttl_s=3600)
    record = JobRecord(id=new_job_id(), filename=video.name, upload_path=str(video))
    store.create(record)
    store.write_result(record.id, result.write_json)
    frames = result.video.frame_count
    del result
    t_total = time.perf_counter() - t0
    sampler.sample()
    sampler.stop.set()
    print(
        json.dumps(
            {
                "frames": frames,
                "analyse_s": t_analyse,
                "total_s": t_total,
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "stage_peak_mb": {k: v / 2**20 for k, v in sampler.peaks.items()},
                "json_mb": json_out.stat().st_size / 2**20,
            }
        )
    )


def run_child(video: Path, config: str) -> dict[str, object]:
    """One analysis in a fresh interpreter; its figures plus the load average around it."""
    with tempfile.TemporaryDirectory(prefix="mer-bench-json-") as tmp:
        load0 = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--child", str(video), config, str(Path(tmp) / "r.json")]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        figures["load"] = (load0, os.getloadavg()[0])
        return figures


def main() -> None:
    """Generate the clips, run each analysis in a subprocess, print figures and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0])
    ap.add_argument("--baseline-minutes", type=float, default=1.0, help="the short clip (ratio 1)")
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["default"])
    ap.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "mer-bench-long"
    )
    ap.add_argument("--child", nargs=3, metavar=("VIDEO", "CONFIG", "JSON"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(Path(a.child[0]), a.child[1], Path(a.child[2]))
        return
    base = a.baseline_minutes if a.baseline_minutes < min(a.minutes) else min(a.minutes) / 4
    lengths = [base, *sorted(set(a.minutes) - {base})]
    t0 = time.perf_counter()
    clips = {m: make_clip(m, a.cache_dir) for m in lengths}
    print(f"clips ready in {time.perf_counter() - t0:.0f} s under {a.cache_dir}")
    print(f"{os.cpu_count()} CPU cores; load average before: {os.getloadavg()}")
    for config in a.configs:
        args = ", ".join(f"{k}={v}" for k, v in CONFIGS[config].items())
        print(f"\n== {config}: AnalysisConfig({args})")
        print(
            f"{'min':>5} {'frames':>7} {'s':>7} {'fr/s':>6} {'peakMB':>7} {'ratio':>6}"
            f" {'JSON MB':>8} {'load':>10}  peak MB per stage"
        )
        base_rss = None
        for m in lengths:
            f = run_child(clips[m], config)
            base_rss = base_rss or f["maxrss_mb"]
            stages = " ".join(f"{k}={v:.0f}" for k, v in f["stage_peak_mb"].items())
            print(
                f"{m:5g} {f['frames']:7d} {f['total_s']:7.1f} {f['frames'] / f['analyse_s']:6.1f}"
                f" {f['maxrss_mb']:7.0f} {f['maxrss_mb'] / base_rss:6.2f} {f['json_mb']:8.2f}"
                f" {f['load'][0]:4.1f}->{f['load'][1]:4.1f}  {stages}",
                flush=True,
            )


if __name__ == "__main__":
    main()

"""Bounded load test of the REST API on loopback: N uploads from C concurrent clients.

Starts the API with uvicorn in a subprocess on a free 127.0.0.1 port (authentication on,
a throwaway key, data in a temporary directory) and either the embedded runner or real
Celery workers on Redis, uploads a tiny valid face clip ``--uploads`` times from
``--clients`` concurrent httpx clients (each upload carries an ``Idempotency-Key``; a 429
is retried after its ``Retry-After``), waits until every accepted job has finished, and
prints p50/p95 enqueue latency, jobs/s and whether any job was lost. Traffic goes to the
loopback address only; the run is bounded in count and in time and stops by itself.

    .venv/bin/python bench/load_test.py                       # 200 uploads, 16 clients
    .venv/bin/python bench/load_test.py --runner celery --workers 2 \\
        --redis-url redis://127.0.0.1:6379/14

Exit status 0 when every upload was accepted and every job succeeded (none lost).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mer.serving import free_port
from mer.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Settings().shared_data_dir / "videos" / "single_face.mp4"
TERMINAL = {"succeeded", "failed", "cancelled"}


def make_clip(
    source: Path, out: Path, frames: int = 24, size: tuple[int, int] = (320, 180)
) -> Path:
    """Cut ``frames`` frames (from frame 20: the smile) of ``source``, scaled to ``size``,
    into an MPEG-4 clip at ``out`` (about 60 KB; ~0.25 s of analysis on 2 cores)."""
    import av
    import cv2

    from mer.video_writer import write_video

    with av.open(str(source)) as src:
        images = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    images = [cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images[20 : 20 + frames]]
    write_video(out, images, 25.0, codec="mpeg4", bit_rate=1_500_000)
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class Stack:
    """The API (uvicorn) and its workers as subprocesses; stopped on exit."""

    def __init__(
        self,
        *,
        runner: str,
        workers: int,
        redis_url: str | None,
        data_dir: Path,
        log_dir: Path,
        api_key_line: str,
        quota: int,
        queue: str = "mer",
    ) -> None:
        """Describe the stack; :meth:`start` launches it."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.runner, self.workers, self.queue = runner, workers, queue
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            "MER_DATA_DIR": str(data_dir),
            "MER_AUTH_ENABLED": "true",
            "MER_API_KEYS": api_key_line,
            "MER_API_KEYS_FILE": "",
            "MER_RATE_LIMIT": "none",
            "MER_SUBMIT_RATE_LIMIT": "none",
            "MER_MAX_CONCURRENT_JOBS_PER_KEY": str(quota),
            "MER_LOG_LEVEL": "WARNING",
            "MER_BROKER_URL": "",
            "MER_REDIS_URL": "",
        }
        if runner == "celery":
            if not redis_url:
                raise SystemExit("--runner celery needs --redis-url")
            self.env.update({"MER_BROKER_URL": redis_url, "MER_REDIS_URL": redis_url})
        else:
            self.env["MER_EMBEDDED_WORKERS"] = str(workers)
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(
        self, cmd: list[str], name: str, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env={**self.env, **(env or {})}, stdout=fh,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        return proc, log

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the workers (Celery) and the API; wait until all are ready."""
        deadline = time.monotonic() + timeout_s
        logs = []
        if self.runner == "celery":
            for i in range(self.workers):
                cmd = [
                    sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
                    "--pool=solo", "--concurrency=1", "-Q", self.queue, "--loglevel=INFO",
                    "--hostname", f"load{i}-{os.getpid()}@%h", "--without-gossip",
                    "--without-mingle", "--without-heartbeat",
                ]  # fmt: skip
                # INFO: the worker's "ready." line is how we know it consumes
                logs.append(self._spawn(cmd, f"worker{i}", {"MER_LOG_LEVEL": "INFO"}))
        api_cmd = [
            sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1",
            "--port", str(self.port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        api, api_log = self._spawn(api_cmd, "api")
        for proc, log in logs:
            while "ready." not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a worker did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            if api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start:\n{api_log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM everything, SIGKILL what lingers."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_load(
    base_url: str,
    api_key: str,
    video: bytes,
    *,
    uploads: int,
    clients: int,
    timeout_s: float,
) -> dict[str, Any]:
    """Upload ``video`` ``uploads`` times from ``clients`` threads, wait for every job.

    Returns:
        A summary: counts, ``enqueue_latency_ms`` (p50, p95, max: from sending the upload
        to its 202, retries included), ``jobs_per_s`` (finished jobs over the time from the
        first upload to the last job's end), final states, ``lost`` (accepted jobs that are
        gone or never finished) and ``rejected`` uploads by code.
    """
    run_id = secrets.token_hex(4)
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    job_ids: list[str] = []
    rejected: Counter[str] = Counter()
    retries = 0
    headers = {"X-API-Key": api_key}
    deadline = time.monotonic() + timeout_s

    def client_loop() -> None:
        nonlocal retries
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            while (i := next(counter)) < uploads:
                t0 = time.perf_counter()
                response = None
                while time.monotonic() < deadline:
                    try:
                        response = client.post(
                            "/v1/analyze",
                            files={"file": (f"clip{i}.mp4", video, "video/mp4")},
                            headers={"Idempotency-Key": f"load-{run_id}-{i}"},
                        )
                    except httpx.TransportError:
                        time.sleep(0.5)  # safe to resend: same Idempotency-Key
                        continue
                    if response.status_code in (429, 503):
                        with lock:
                            retries += 1
                        time.sleep(float(response.headers.get("retry-after", "1")))
                        continue
                    break
                elapsed = time.perf_counter() - t0
                with lock:
                    if response is not None and response.status_code == 202:
                        latencies.append(elapsed)
                        job_ids.append(response.json()["job_id"])
                    else:
                        code = "timeout" if response is None else response.json().get("code")
                        rejected[str(code)] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    enqueued = time.perf_counter()

    states: dict[str, str] = {}
    lost: list[str] = []
    pending = list(job_ids)
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        while pending and time.monotonic() < deadline:
            still = []
            for job_id in pending:
                r = client.get(f"/v1/jobs/{job_id}")
                if r.status_code in (404, 410):
                    lost.append(job_id)
                elif r.status_code == 200 and r.json()["state"] in TERMINAL:
                    states[job_id] = r.json()["state"]
                else:
                    still.append(job_id)
            pending = still
            if pending:
                time.sleep(0.2)
        finished = time.perf_counter()
        metrics = client.get("/metrics").text
    lost.extend(pending)
    outcome_lines = [line for line in metrics.splitlines() if line.startswith("mer_jobs_finished")]
    return {
        "uploads": uploads,
        "clients": clients,
        "accepted": len(job_ids),
        "duplicate_job_ids": len(job_ids) - len(set(job_ids)),
        "rejected": dict(rejected),
        "retries_429_503": retries,
        "enqueue_latency_ms": {
            "p50": round(percentile(latencies, 0.5) * 1000, 1),
            "p95": round(percentile(latencies, 0.95) * 1000, 1),
            "max": round(max(latencies, default=float("nan")) * 1000, 1),
            "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        },
        "enqueue_s": round(enqueued - started, 2),
        "total_s": round(finished - started, 2),
        "jobs_per_s": round(len(states) / (finished - started), 2) if states else 0.0,
        "uploads_per_s": round(len(job_ids) / (enqueued - started), 2),
        "states": dict(Counter(states.values())),
        "lost": len(lost),
        "lost_ids": lost[:10],
        "metrics_outcomes": outcome_lines,
    }


@contextlib.contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    if keep:
        yield Path(tempfile.mkdtemp(prefix="mer-load-"))
    else:
        with tempfile.TemporaryDirectory(prefix="mer-load-") as tmp:
            yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--runner", choices=["embedded", "celery"], default="embedded")
    parser.add_argument("--workers", type=int, default=2, help="embedded threads or Celery workers")
    parser.add_argument(
        "--redis-url", default=None, help="broker and job store for --runner celery"
    )
    parser.add_argument("--video", type=Path, default=None, help="clip to upload (default: made)")
    parser.add_argument("--quota", type=int, default=None, help="concurrent jobs per key")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--keep", action="store_true", help="keep the data and logs")
    args = parser.parse_args(argv)
    if not 1 <= args.uploads <= 5000 or not 1 <= args.clients <= 64:
        parser.error("--uploads must be 1..5000 and --clients 1..64 (a bounded test)")

    from service.auth import hash_key

    with _workspace(args.keep) as work:
        video = args.video or make_clip(DEFAULT_SOURCE, work / "clip.mp4")
        api_key = "load-" + secrets.token_urlsafe(16)
        stack = Stack(
            runner=args.runner,
            workers=args.workers,
            redis_url=args.redis_url,
            data_dir=work / "data",
            log_dir=work,
            api_key_line=f"load:{hash_key(api_key)}",
            quota=args.quota or args.uploads + 1,
        )
        with stack:
            summary = run_load(
                stack.base_url,
                api_key,
                video.read_bytes(),
                uploads=args.uploads,
                clients=args.clients,
                timeout_s=args.timeout,
            )
        summary.update(
            {"runner": args.runner, "workers": args.workers, "video_bytes": video.stat().st_size}
        )
        if args.keep:
            summary["workdir"] = str(work)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    lat = summary["enqueue_latency_ms"]
    print(
        f"\n{summary['accepted']}/{summary['uploads']} accepted from {summary['clients']} clients; "
        f"enqueue latency p50 {lat['p50']} ms, p95 {lat['p95']} ms; "
        f"{summary['jobs_per_s']} jobs/s; states {summary['states']}; lost {summary['lost']}",
        file=sys.stderr,
    )
    ok = (
        summary["accepted"] == args.uploads
        and summary["lost"] == 0
        and summary["states"].get("succeeded", 0) == args.uploads
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

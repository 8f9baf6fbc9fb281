"""In-process vs TorchServe inference: clips/s and p50/p95 latency over a batch-size sweep,
measured in one run, printed as figures and TorchServe/in-process ratios.

    .venv/bin/python bench/backends.py [--model-dir model_store] [--batch-sizes 1,8,32,64]
        [--repeats 20] [--device cpu|cuda] [--json OUT]

For each batch size ``B`` and each model, one *call* is what a worker does: ``B`` samples
through :class:`~mer.inference.InferenceBackend` (SMA-STN: ``B`` interval clips' DSSI; AU
detector: ``B`` frame pairs).

- in-process: :class:`mer.inference.InProcessBackend` with ``batch_size=B`` on ``--device``
  (``cpu``, ``cuda``): one forward pass of ``B``.
- TorchServe: the model re-registered with ``batch_size=B`` and ``max_batch_delay``
  (``--delay-ms``); :class:`workers.inference.TorchServeBackend` sends the ``B`` samples as
  ``B`` concurrent requests and TorchServe's dynamic batching groups them. The batch sizes
  TorchServe actually formed are reported (mean per response).

Throughput = samples / summed time of the calls; latency = wall time of one call (the
worker waits for all ``B``). In-process and TorchServe calls alternate, so load from
elsewhere on the machine weighs on both alike. TorchServe runs on this machine, bound to
127.0.0.1, so it shares the cores with the client: the ratios measure the serving
overhead, not the gain of a separate GPU host. Weights: the checkpoints in
``--model-dir`` when present, else random weights of the shipped architectures (speed does
not depend on the values).
Prints figures; asserts nothing (no timed assertions).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from mer.inference import AU_FILE, EMOTION_FILE, MODEL_SIZE, InProcessBackend, load_model
from mer.models.cards import write_random_checkpoints
from mer.serving import (
    SERVED,
    ServeConfig,
    build_archives,
    start_torchserve,
)
from workers.inference import TorchServeBackend


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _stats(lat: list[float], n: int) -> dict[str, float]:
    return {
        "clips_per_s": n * len(lat) / sum(lat),
        "p50_ms": _pct(lat, 50) * 1000,
        "p95_ms": _pct(lat, 95) * 1000,
    }


def _measure_pair(fa: Any, fb: Any, x: np.ndarray, repeats: int) -> tuple[dict, dict]:
    """Time calls of ``fa`` and ``fb`` on ``x``, interleaved (a, b, a, b, ...), so that
    load from elsewhere on the machine affects both alike."""
    fa(x), fb(x)  # warm-up (allocations, connections, first batch)
    la: list[float] = []
    lb: list[float] = []
    for _ in range(repeats):
        for fn, lat in ((fa, la), (fb, lb)):
            t = time.perf_counter()
            fn(x)
            lat.append(time.perf_counter() - t)
    return _stats(la, len(x)), _stats(lb, len(x))


def _register(mgmt: str, name: str, batch: int, delay_ms: int) -> None:
    """Re-register ``name`` with TorchServe batch size ``batch`` (one worker)."""
    httpx.delete(f"{mgmt}/models/{name}", timeout=120)
    r = httpx.post(f"{mgmt}/models", timeout=300, params={
        "url": f"{name}.mar", "batch_size": batch, "max_batch_delay": delay_ms,
        "initial_workers": 1, "synchronous": "true",
    })  # fmt: skip
    r.raise_for_status()


def _device_line(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(0)
        return f"{name} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return (f"CPU {cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads in-process)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=Path("model_store"))
    ap.add_argument("--batch-sizes", default="1,8,32,64")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--delay-ms", type=int, default=5, help="TorchServe max_batch_delay")
    ap.add_argument("--device", default="cpu", help="in-process device: cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="in-process torch threads (0: torch's)")
    ap.add_argument(
        "--ts-threads",
        type=int,
        default=0,
        help="torch threads per TorchServe worker (0: the handler's default)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="mer-bench-ts-"))
    model_dir = args.model_dir
    weights = f"checkpoints in {model_dir}"
    if not ((model_dir / EMOTION_FILE).is_file() and (model_dir / AU_FILE).is_file()):
        model_dir = write_random_checkpoints(work / "weights")
        weights = "random weights of the shipped architectures (no checkpoints installed)"
    emo_lm, au_lm = load_model(model_dir / EMOTION_FILE), load_model(model_dir / AU_FILE)
    build_archives(model_dir, work / "store")
    cfg = ServeConfig(
        model_store=work / "store", inference_port=0, management_port=0, metrics_port=0,
        grpc_inference_port=0, grpc_management_port=0, worker_port=0,
        models={n: f"{n}.mar" for n in SERVED},
    )  # fmt: skip
    rng = np.random.default_rng(0)
    s1 = int(emo_lm.meta.dssi.get("n_segments", 3)) + 1
    c_emo = int(emo_lm.meta.input_size[0])
    k_au = 4 if au_lm.meta.pair.get("flow", False) else 2  # frame, reference (, flow u, v)
    m, n = MODEL_SIZE, max(sizes)
    inputs = {
        "sma_stn": rng.integers(0, 256, (n, s1, c_emo, m, m), np.uint8),
        "au_detector": rng.integers(0, 256, (n, k_au, 1, m, m), np.uint8),
    }
    env = {"MER_TS_TORCH_THREADS": str(args.ts_threads)} if args.ts_threads else None
    ts = start_torchserve(cfg, work / "run", env=env)
    rows: list[dict[str, Any]] = []
    try:
        ts.wait_ready(SERVED, timeout_s=180)
        client = TorchServeBackend(ts.inference_url, ts.management_url, concurrency=max(sizes),
                                   timeout_s=120)  # fmt: skip
        for b in sizes:
            local: Any = InProcessBackend(emo_lm, au_lm, batch_size=b, device=args.device)
            for name in SERVED:
                _register(ts.management_url, name, b, args.delay_ms)
            client.ensure_ready()
            for name, fn_local, fn_ts in (
                ("sma_stn", local.predict_emotion, client.predict_emotion),
                ("au_detector", local.predict_au, client.predict_au),
            ):
                x = inputs[name][:b]
                client.reset_stats()
                inproc, served = _measure_pair(fn_local, fn_ts, x, args.repeats)
                hist = client.batch_sizes()
                formed = sum(k * v for k, v in hist.items()) / max(1, sum(hist.values()))
                rows.append({"model": name, "batch": b, "inprocess": inproc,
                             "torchserve": served, "formed_batch": formed})  # fmt: skip
        client.close()
        desc = httpx.get(f"{ts.management_url}/models/au_detector", params={"customized": "true"},
                         timeout=30).json()[0]  # fmt: skip
        meta = desc["customizedMetadata"]
        meta = json.loads(meta) if isinstance(meta, str) else meta
        ts_device = f"{meta['device']}, {meta['threads']} torch threads per worker"
    finally:
        ts.stop()

    device = _device_line(args.device)
    print(f"device: {device}\nTorchServe: 0.12 on this machine ({ts_device}), "
          f"max_batch_delay {args.delay_ms} ms, 1 worker per model\nweights: {weights}\n"
          f"repeats per cell: {args.repeats}\n")  # fmt: skip
    head = (f"{'model':<12}{'B':>4} | {'in-process clips/s':>18}{'p50 ms':>9}{'p95 ms':>9} | "
            f"{'TorchServe clips/s':>18}{'p50 ms':>9}{'p95 ms':>9}{'formed':>8} | "
            f"{'TS/in-proc: clips/s':>19}{'p50':>7}{'p95':>7}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in rows:
        a, t = r["inprocess"], r["torchserve"]
        print(f"{r['model']:<12}{r['batch']:>4} | {a['clips_per_s']:>18.1f}{a['p50_ms']:>9.2f}"
              f"{a['p95_ms']:>9.2f} | {t['clips_per_s']:>18.1f}{t['p50_ms']:>9.2f}"
              f"{t['p95_ms']:>9.2f}{r['formed_batch']:>8.1f} | "
              f"{t['clips_per_s'] / a['clips_per_s']:>19.2f}{t['p50_ms'] / a['p50_ms']:>7.2f}"
              f"{t['p95_ms'] / a['p95_ms']:>7.2f}")  # fmt: skip
    print("\n(clips = samples: SMA-STN interval clips, AU detector frame pairs; 'formed' = mean "
          "batch size TorchServe formed; ratios > 1 for clips/s and < 1 for latency favour "
          "TorchServe)")  # fmt: skip
    med = statistics.median(r["torchserve"]["clips_per_s"] / r["inprocess"]["clips_per_s"]
                            for r in rows)  # fmt: skip
    print(f"median throughput ratio TorchServe/in-process: {med:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"device": device, "torchserve_device": ts_device,
                                         "weights": weights, "rows": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

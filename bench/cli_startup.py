"""Start-up of the ``mer`` command: wall time of fresh processes, beside ``python -c pass``
measured in the same run, and where an analysis's time goes (imports vs stages).

    .venv/bin/python bench/cli_startup.py [--video V] [--repeat N] [--versus CHECKOUT]

Each figure is the median over ``--repeat`` fresh processes; the commands are interleaved
(one round runs every command once) so that machine load hits them alike.
``--versus`` runs the same commands with another checkout's ``mer`` package first on
``PYTHONPATH`` (e.g. ``git worktree add /tmp/mer-before <commit>``) and prints the ratio.
Then one more process measures, in order, the import of each heavy dependency chain and
the stages of one ``analyze_video`` (``timings_ms``).

Prints figures and ratios; asserts nothing (no timed assertions in tests).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = ROOT / "samples" / "single_face.mp4"

#: Imports of one ``mer analyze`` in the order they happen (each timed after the former).
IMPORT_CHAIN = (
    ("mer.cli (typer, rich)", "import mer.cli"),
    ("numpy, pydantic", "import numpy, pydantic, pydantic_settings"),
    ("av (PyAV)", "import av"),
    ("cv2 (OpenCV)", "import cv2"),
    ("scipy.ndimage", "import scipy.ndimage"),
    ("scipy.signal", "import scipy.signal"),
    ("mediapipe (+ matplotlib)", "import mediapipe"),
    ("mer.pipeline (rest)", "import mer.pipeline"),
    ("torch + mer.models", "import torch, mer.models"),
)

_BREAKDOWN = """
import json, sys, time
out = {}
t0 = time.perf_counter()
for name, stmt in json.loads(sys.argv[1]):
    exec(stmt)
    t = time.perf_counter(); out[name] = (t - t0) * 1000; t0 = t
from mer.pipeline import analyze_video
t0 = time.perf_counter()
r = analyze_video(sys.argv[2])
out["analyze_video (wall)"] = (time.perf_counter() - t0) * 1000
out["stages"] = r.timings_ms
print(json.dumps(out))
"""


#: Runs ``mer.cli`` (or imports it) from the checkout in argv[1]: the editable install's
#: finder, which would map ``mer`` to this checkout whatever ``sys.path`` says, is dropped.
_LAUNCH = """
import runpy, sys
checkout, what = sys.argv[1], sys.argv[2]
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path.insert(0, checkout)
sys.argv = ["mer", *sys.argv[3:]]
if what == "import":
    import mer.cli
else:
    runpy.run_module("mer.cli", run_name="__main__")
"""


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--versus", type=Path, default=None, help="another checkout")
    args = ap.parse_args()
    py = sys.executable
    checkouts = {"this": ROOT}
    if args.versus is not None:
        checkouts["versus"] = args.versus.resolve()

    def launch(checkout: Path, *rest: str) -> list[str]:
        return [py, "-c", _LAUNCH, str(checkout), *rest]

    commands = {
        "python -c pass (baseline)": lambda c: [py, "-c", "pass"],
        "python -c 'import mer.cli'": lambda c: launch(c, "import"),
        "mer --help": lambda c: launch(c, "run", "--help"),
        "mer analyze -q (72 frames)": lambda c: launch(c, "run", "analyze", str(args.video), "-q"),
    }
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            for which, checkout in checkouts.items():
                times.setdefault((name, which), []).append(_time(cmd(checkout)))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med[("python -c pass (baseline)", "this")]
    print(f"{os.cpu_count()} CPU cores; load {os.getloadavg()[0]:.2f}; median of "
          f"{args.repeat} fresh processes each, interleaved")  # fmt: skip
    head = f"{'command':<30} {'this ms':>9} {'- python':>9}"
    if "versus" in checkouts:
        head += f" {'versus ms':>10} {'- python':>9} {'this/versus':>12}"
    print(head)
    for name in commands:
        this = med[(name, "this")]
        line = f"{name:<30} {this:9.0f} {this - base:9.0f}"
        if "versus" in checkouts:
            other = med[(name, "versus")]
            vbase = med[("python -c pass (baseline)", "versus")]
            line += f" {other:10.0f} {other - vbase:9.0f} {this / other:12.2f}"
        print(line)

    r = subprocess.run(
        [py, "-c", _BREAKDOWN, json.dumps(IMPORT_CHAIN), str(args.video)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    data = json.loads(r.stdout.strip().splitlines()[-1])
    stages = data.pop("stages")
    imports = sum(v for k, v in data.items() if k != "analyze_video (wall)")
    print(f"\none process, this checkout: imports {imports:.0f} ms, then analyze_video "
          f"{data['analyze_video (wall)']:.0f} ms")  # fmt: skip
    for name, ms in data.items():
        print(f"  {name:<28} {ms:8.0f} ms")
    print("  stages (timings_ms): " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))


if __name__ == "__main__":
    main()

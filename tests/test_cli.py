"""The ``mer`` command line as a user runs it (subprocesses, the shipped sample clip):
every command listed, quiet means quiet, no science imported to start up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mer.cli import app

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Heavy modules no command needs just to start (each command imports its own).
HEAVY = ("numpy", "cv2", "av", "torch", "mediapipe", "scipy", "httpx", "mer.pipeline")


def _run(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
        env=None if env is None else os.environ | env,
    )


def _command_names() -> set[str]:
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    return names | {g.name for g in app.registered_groups if g.name}


def test_help_lists_every_command() -> None:
    names = _command_names()
    assert {"analyze", "submit", "train", "evaluate", "synth", "model-store"} <= names
    for entry in (("-m", "mer.cli", "--help"), ("-c", "from mer.cli import app; app()", "--help")):
        r = _run(*entry, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        shown = r.stdout.decode()
        missing = [n for n in names if f" {n} " not in shown]
        assert not missing, f"{entry}: {missing} not in\n{shown}"


def test_importing_the_cli_imports_no_science() -> None:
    code = f"import sys, mer.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    r = _run("-c", code, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == "[]"


@pytest.mark.slow
def test_quiet_means_quiet(sample_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = _run("-m", "mer.cli", "analyze", str(sample_video), "-q", "--json", str(out))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"", r.stderr.decode()
    assert r.stdout == b""
    result = json.loads(out.read_text())
    assert result["video"]["frame_count"] == 72 and result["apex"] is not None
    # without -q, as on a terminal (Rich's TTY_COMPATIBLE): the progress bar and the
    # summary, still no native log lines (they need --verbose)
    r = _run("-m", "mer.cli", "analyze", str(sample_video), env={"TTY_COMPATIBLE": "1"})
    assert r.returncode == 0, r.stderr.decode()
    assert b"apex frame" in r.stdout
    assert b"landmarks" in r.stderr and b"100%" in r.stderr, r.stderr.decode()
    for noise in (b"absl::InitializeLog", b"TensorFlow Lite", b"W0000"):
        assert noise not in r.stderr, r.stderr.decode()


def test_quiet_error_is_still_reported(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 20)
    r = _run("-m", "mer.cli", "analyze", str(bad), "-q", timeout=120)
    assert r.returncode == 2
    assert b"invalid_video" in r.stderr


@pytest.mark.slow
def test_analyze_reports_blendshapes_when_asked(sample_video: Path, tmp_path: Path) -> None:
    out, table = tmp_path / "r.json", tmp_path / "r.csv"
    args = ("analyze", str(sample_video), "-q", "--json", str(out), "--csv", str(table))
    r = _run("-m", "mer.cli", *args, "--blendshapes")
    assert r.returncode == 0, r.stderr.decode()
    frames = json.loads(out.read_text())["frames"]
    assert len(frames[40]["blendshapes"]) == 52
    assert frames[40]["blendshapes"]["mouthSmileLeft"] > 0.5  # inside the smile
    assert frames[5]["blendshapes"]["mouthSmileLeft"] < 0.2  # at rest
    rows = table.read_text().splitlines()
    header = rows[0].split(",")
    assert header[:2] == ["frame", "timestamp"] and "mouthSmileLeft" in header
    assert len(rows[41].split(",")) == len(header)
    # without the option: no blendshapes in either
    r = _run("-m", "mer.cli", *args)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(out.read_text())["frames"][40]["blendshapes"] is None
    assert "mouthSmileLeft" not in table.read_text().splitlines()[0]

#!/usr/bin/env bash
# Install the project into .venv (CPU only, offline-capable models).
#   bash scripts/install.sh
# torch: the local CPU build (pip install torch==2.13.0); never a CUDA build in CI.
# mediapipe 0.10.21 (last release that ships its face models) pins numpy<2 in its metadata
# although it runs with numpy 2, so it is installed with --no-deps; its real runtime needs
# (absl-py, attrs, flatbuffers, protobuf<5, matplotlib, opencv) are in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
# serve: torchserve + torch-model-archiver 0.12 (pure Python, Java 17 at run time; they
# do not pull torch), so the TorchServe integration test runs in CI
.venv/bin/python -m pip install -q -e ".[dev,serve]"
.venv/bin/python -m pip install -q --no-deps "mediapipe==0.10.21"
.venv/bin/python -c "import mediapipe, torch, av, cv2, ai_edge_litert; print('installed: torch', torch.__version__, '| mediapipe', mediapipe.__version__, '| av', av.__version__, '| opencv', cv2.__version__, '| ai-edge-litert', ai_edge_litert.__version__)"

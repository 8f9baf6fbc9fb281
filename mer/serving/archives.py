"""TorchServe archives (``.mar``) of the checkpoints: ``mer model-store build``.

One archive per checkpoint in the model directory, with its handler, the shared handler
code and ``model-config.yaml`` (``batchSize``, ``maxBatchDelay``, workers). Archives are
built, never committed. torch-model-archiver is imported only when an archive is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mer.errors import ModelUnavailableError
from mer.inference import load_model
from mer.serving.spec import CONFIG_DIR, HANDLER_BASE, HANDLERS_DIR, SERVED


def _archiver() -> Any:
    try:
        from model_archiver.model_archiver_config import ModelArchiverConfig
        from model_archiver.model_packaging import generate_model_archive
    except ImportError as exc:
        raise RuntimeError(
            "torch-model-archiver is not installed: pip install -e '.[serve]'"
        ) from exc
    return ModelArchiverConfig, generate_model_archive


def build_archives(
    model_dir: Path,
    out_dir: Path,
    names: Iterable[str] | None = None,
    config_dir: Path | None = None,
    handlers_dir: Path | None = None,
) -> list[Path]:
    """Build one TorchServe archive (``{name}.mar``) per checkpoint found in ``model_dir``.

    Each archive holds the checkpoint as its serialized file, the model's handler and
    :data:`HANDLER_BASE`, and ``config_dir/{name}.yaml`` as its model config; its
    version is the card's. Existing archives are overwritten.

    Args:
        model_dir: where ``sma_stn.pt`` / ``au_detector.pt`` are.
        out_dir: where the ``.mar`` files go (created).
        names: models to build (:data:`SERVED` keys); default all whose checkpoint exists.
        config_dir: the model configs; default ``model_dir/config`` when it exists (a
            copied ``model_store/``, as in the images), else :data:`CONFIG_DIR`.
        handlers_dir: the handlers; default ``model_dir/handlers`` when it exists, else
            :data:`HANDLERS_DIR`.

    Returns:
        The archives written, in :data:`SERVED` order.

    Raises:
        ModelUnavailableError: no checkpoint to build from (or a named one is missing or
            unreadable).
        RuntimeError: torch-model-archiver is not installed.
    """
    config_cls, generate = _archiver()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if handlers_dir is None:
        local = model_dir / "handlers"
        handlers_dir = local if (local / HANDLER_BASE).is_file() else HANDLERS_DIR
    if config_dir is None:
        local = model_dir / "config"
        config_dir = local if local.is_dir() else CONFIG_DIR
    wanted = list(names) if names is not None else None
    built: list[Path] = []
    for spec in SERVED.values():
        if wanted is not None and spec.name not in wanted:
            continue
        ckpt = model_dir / spec.checkpoint
        if not ckpt.is_file():
            if wanted is not None:
                raise ModelUnavailableError(f"{ckpt} does not exist")
            continue
        meta = load_model(ckpt).meta  # validates the checkpoint before packing it
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg = config_cls(
            model_name=spec.name,
            handler=str(Path(handlers_dir) / spec.handler),
            version=str(meta.version),
            serialized_file=str(ckpt),
            extra_files=str(Path(handlers_dir) / HANDLER_BASE),
            export_path=str(out_dir),
            config_file=str(Path(config_dir) / f"{spec.name}.yaml"),
            force=True,
        )
        generate(cfg)
        built.append(out_dir / f"{spec.name}.mar")
    if not built:
        raise ModelUnavailableError(
            f"no checkpoint ({', '.join(s.checkpoint for s in SERVED.values())}) in {model_dir}"
        )
    return built

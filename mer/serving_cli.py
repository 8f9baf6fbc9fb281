"""``mer model-store build|serve``: TorchServe archives of the shipped weights.

Kept apart from :mod:`mer.serving` so that ``mer --help`` and the other commands do not
import it (NumPy, OpenCV, the model code): each command imports it when it runs.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

#: The shipped checkpoints and the archives built from them (``mer.serving``'s
#: ``MODEL_STORE_DIR``; not imported from there to keep this module light).
MODEL_STORE_DIR = Path(__file__).resolve().parent.parent / "model_store"

model_store_app = typer.Typer(
    help="TorchServe archives of the shipped weights (needs the 'serve' extra).",
    no_args_is_help=True,
)


@model_store_app.command("build")
def build_cmd(
    model_dir: Annotated[
        Path, typer.Option(help="Folder with sma_stn.pt / au_detector.pt.")
    ] = MODEL_STORE_DIR,
    out: Annotated[Path, typer.Option(help="Where the .mar archives go.")] = MODEL_STORE_DIR,
    model: Annotated[
        list[str] | None, typer.Option(help="Only this model (repeatable): sma_stn, au_detector.")
    ] = None,
) -> None:
    """Build one TorchServe archive (.mar) per shipped checkpoint (built, not committed)."""
    from mer.errors import ModelUnavailableError
    from mer.serving import build_archives

    try:
        built = build_archives(model_dir, out, model or None)
    except (ModelUnavailableError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    for p in built:
        typer.echo(f"{p} ({p.stat().st_size / 1e6:.2f} MB)")


@model_store_app.command("serve")
def serve_cmd(
    model_dir: Annotated[Path, typer.Option(help="Folder with the checkpoints.")] = MODEL_STORE_DIR,
    store: Annotated[Path, typer.Option(help="Where the archives are built.")] = MODEL_STORE_DIR,
    workdir: Annotated[Path, typer.Option(help="Logs and temp files.")] = Path("var/torchserve"),
    host: Annotated[str, typer.Option(help="Bind address of every API.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Inference port; management = port + 1, metrics = port + 2.")
    ] = 8080,  # fmt: skip
    build: Annotated[bool, typer.Option(help="Build the archives first.")] = True,
) -> None:
    """Build the archives and run TorchServe in the foreground until Ctrl-C or SIGTERM
    (then TorchServe and its workers are stopped); exits with TorchServe's status."""
    from mer.errors import ModelUnavailableError
    from mer.serving import ServeConfig, build_archives, start_torchserve

    try:
        archives = build_archives(model_dir, store) if build else sorted(store.glob("*.mar"))
    except (ModelUnavailableError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    cfg = ServeConfig(
        model_store=store, host=host, inference_port=port, management_port=port + 1,
        metrics_port=port + 2, models={a.stem: a.name for a in archives},
    )  # fmt: skip
    try:
        ts = start_torchserve(cfg, workdir, console=True)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # docker stop: clean shutdown
    typer.echo(f"TorchServe: inference {cfg.inference_url}, management {cfg.management_url}; "
               f"logs in {ts.workdir}")  # fmt: skip
    code = 0
    try:
        ts.wait_ready([a.stem for a in archives], timeout_s=180)
        typer.echo("ready: " + ", ".join(a.stem for a in archives))
        code = ts.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        ts.stop()
    if code:
        raise typer.Exit(code=code)

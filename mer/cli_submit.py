"""``mer submit VIDEO... --url URL [--key KEY] [--wait] [--json OUT] [--csv OUT]``: send
videos to a running service with :mod:`mer.client`, a Rich progress bar per file.

Kept apart from :mod:`mer.cli` so that the command imports httpx only when it runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

err = Console(stderr=True)


#: ``--neutral START:END`` of ``mer analyze`` and ``mer submit``
NeutralOption = Annotated[
    str | None,
    typer.Option(
        "--neutral",
        metavar="START:END",
        help="Seconds (timestamps, both included) where the face is neutral, e.g. 0:0.5: AUs "
        "are read against this stretch instead of an estimated neutral.",
    ),
]


def parse_neutral_s(text: str) -> tuple[float, float]:
    """``--neutral START:END`` (seconds) as ``(start, end)``.

    Raises:
        ValueError: not two numbers separated by a colon (the message says what is expected).
    """
    try:
        start, end = (float(p) for p in text.split(":"))
    except ValueError:
        raise ValueError(
            f"--neutral takes START:END in seconds (e.g. 0:0.5), got {text!r}"
        ) from None
    return start, end


def _out_path(out: Path, video: Path, suffix: str, many: bool) -> Path:
    """``out`` itself for one video; ``out/<video stem><suffix>`` for several."""
    if not many:
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{video.stem}{suffix}"


def submit(
    videos: Annotated[list[Path], typer.Argument(help="Video files to analyse.")],
    url: Annotated[
        str, typer.Option(envvar="MER_URL", help="The service's base URL.")
    ] = "http://127.0.0.1:8000",
    key: Annotated[
        str | None,
        typer.Option(envvar="MER_API_KEY", help="API key (sent as Authorization: Bearer)."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every job finishes.")] = False,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the result JSON here (implies --wait; '-' = stdout; a folder for "
            "several videos: <folder>/<stem>.json).",
        ),
    ] = None,
    csv_out: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write the per-frame CSV here (implies --wait; a folder for several videos).",
        ),
    ] = None,
    timeout_s: Annotated[float, typer.Option(help="Give up waiting after this long (s).")] = 600,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
    blendshapes: Annotated[
        bool, typer.Option("--blendshapes", help="Also report the 52 blendshapes per frame.")
    ] = False,
    neutral: NeutralOption = None,
) -> None:
    """Upload VIDEO(s) to a running service; print job ids, or wait and save the results.

    Exit code 0 when every job was accepted (and, when waiting, succeeded), 1 when a job
    failed, 2 when a video was refused or the service could not be reached.
    """
    from mer.client import Client, ServiceError

    many = len(videos) > 1
    if json_out is not None and str(json_out) == "-" and many:
        err.print("[red]error[/red] --json - writes one result; give a folder for several videos")
        raise typer.Exit(code=2)
    neutral_s = None
    if neutral is not None:
        try:
            neutral_s = parse_neutral_s(neutral)
        except ValueError as exc:
            err.print(f"[red]error[/red] {exc}")
            raise typer.Exit(code=2) from None
    wait = wait or json_out is not None or csv_out is not None
    show = not quiet and err.is_terminal
    refused = False
    jobs: dict[Path, str] = {}
    client = Client(url, key)
    with (
        client,
        Progress(
            TextColumn("[bold]{task.fields[name]:<24.24}"),
            TextColumn("{task.description:<10}"),
            BarColumn(),
            TaskProgressColumn(),
            console=err,
            disable=not show,
        ) as bar,
    ):
        tasks: dict[Path, TaskID] = {
            v: bar.add_task("waiting", total=100, name=v.name) for v in videos
        }
        for video in videos:
            task = tasks[video]

            def uploaded(sent: int, total: int, task: TaskID = task) -> None:
                bar.update(task, description="upload", completed=100 * sent / max(1, total))

            try:
                accepted = client.submit(
                    video, on_upload=uploaded, include_blendshapes=blendshapes, neutral_s=neutral_s
                )
            except (ServiceError, OSError) as exc:
                refused = True
                bar.update(task, description="refused")
                err.print(f"[red]error[/red] {video}: {_message(exc)}")
                continue
            jobs[video] = accepted["job_id"]
            bar.update(task, description=accepted["state"], completed=0)
            if not wait:
                sys.stdout.write(f"{accepted['job_id']}\t{video}\n")
        if not wait:
            raise typer.Exit(code=2 if refused else 0)
        finished: dict[Path, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while len(finished) < len(jobs) and time.monotonic() < deadline:
            for video, job_id in jobs.items():
                if video in finished:
                    continue
                try:
                    status = client.job(job_id)
                except ServiceError as exc:
                    if exc.code == "rate_limited":
                        continue
                    status = {"state": "failed", "error": {"code": exc.code,
                                                           "message": exc.message}}  # fmt: skip
                progress = status.get("progress") or {}
                bar.update(
                    tasks[video],
                    description=progress.get("stage", status["state"]),
                    completed=progress.get("percent", 0.0),
                )
                if status["state"] in ("succeeded", "failed", "cancelled"):
                    finished[video] = status
            if len(finished) < len(jobs):
                time.sleep(0.5)
        bar.stop()
        failed = _report(client, jobs, finished, json_out, csv_out, quiet, timeout_s)
    raise typer.Exit(code=2 if refused else 1 if failed else 0)


def _report(
    client: Any,
    jobs: dict[Path, str],
    finished: dict[Path, dict[str, Any]],
    json_out: Path | None,
    csv_out: Path | None,
    quiet: bool,
    timeout_s: float,
) -> bool:
    """Save and summarise the finished jobs; ``True`` if one did not succeed."""
    from mer.client import ServiceError

    failed = False
    many = len(jobs) > 1
    for video, job_id in jobs.items():
        status = finished.get(video)
        if status is None:
            failed = True
            err.print(f"[red]timeout[/red] {video}: job {job_id} not finished in {timeout_s} s")
            continue
        if status["state"] != "succeeded":
            failed = True
            e = status.get("error") or {}
            err.print(
                f"[red]{status['state']}[/red] {video}: job {job_id}: "
                f"{e.get('code', '?')}: {e.get('message', '')}"
            )
            continue
        try:
            _save(client, video, job_id, status, json_out, csv_out, many)
        except ServiceError as exc:
            failed = True
            err.print(f"[red]error[/red] {video}: job {job_id}: {_message(exc)}")
            continue
        if not quiet:
            _summary(video, job_id, status["result"], to_stderr=str(json_out) == "-")
    return failed


def _message(exc: Exception) -> str:
    code = getattr(exc, "code", exc.__class__.__name__)
    return f"{code}: {getattr(exc, 'message', str(exc))}"


def _save(
    client: Any,
    video: Path,
    job_id: str,
    status: dict[str, Any],
    json_out: Path | None,
    csv_out: Path | None,
    many: bool,
) -> None:
    """Write the job's result JSON (as ``mer analyze --json``) and its service-made CSV."""
    from mer.schemas import AnalysisResult

    if json_out is not None:
        payload = AnalysisResult.model_validate(status["result"]).model_dump_json(indent=2)
        if str(json_out) == "-":
            sys.stdout.write(payload + "\n")
        else:
            _out_path(json_out, video, ".json", many).write_text(payload)
    if csv_out is not None:
        _out_path(csv_out, video, ".csv", many).write_text(client.result_csv(job_id))


def _summary(video: Path, job_id: str, result: dict[str, Any], to_stderr: bool) -> None:
    out = Console(stderr=to_stderr)
    apex = result.get("apex") or {}
    emotion = result.get("emotion") or {}
    out.print(
        f"[bold]{video.name}[/bold]: job {job_id} succeeded; "
        f"{result['video']['frame_count']} frames, {len(result['intervals'])} interval(s)"
        + (f", apex frame {apex['frame']} at {apex['timestamp_s']:.3f} s" if apex else "")
        + (f", emotion {emotion['label']} ({emotion['score']:.2f})" if emotion else "")
    )
    for warning in result.get("warnings", []):
        out.print(f"[yellow]warning[/yellow] {warning}")

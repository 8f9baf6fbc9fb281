"""``python -m mer.synth OUT_DIR --clips 2000 --seed 0``: the ``mer synth`` command
(:func:`mer.cli_synth.synth`, same options and defaults) under another name.

Kept for the commands written before ``mer synth`` had every option. Their list options
took several values after one flag (``--fps 30 60``, ``--identities 001 002``,
``--emotions happiness surprise``); those are handed on as repeated flags.
"""

from __future__ import annotations

import sys

#: Options that took several values after one flag (argparse ``nargs="+"``).
_LISTS = ("--fps", "--identities", "--emotions")


def repeat_list_flags(argv: list[str]) -> list[str]:
    """``["--fps", "30", "60"]`` -> ``["--fps", "30", "--fps", "60"]`` for the options in
    ``_LISTS``; every other argument unchanged and in order."""
    out: list[str] = []
    flag: str | None = None
    for arg in argv:
        if arg.startswith("-"):
            flag = arg if arg in _LISTS else None
            out.append(arg)
        elif flag is not None and out[-1] != flag:
            out += [flag, arg]
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``mer synth`` with ``argv`` (default ``sys.argv[1:]``). Returns the exit status."""
    import typer

    from mer.cli_synth import synth

    app = typer.Typer(add_completion=False)
    app.command()(synth)
    args = repeat_list_flags(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="python -m mer.synth", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

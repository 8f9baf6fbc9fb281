"""``report.json``, ``report.md`` and one PNG per clip of :func:`evaluate_real`.

Each PNG (matplotlib, 80 dpi) shows, over the frame index, the labelled events as bands
coloured by kind, the per-frame apex score, the spotted intervals (bars coloured by kind,
labelled with their emotion; matched ones solid, false positives hatched) and the AU curves
of the AUs labelled in the clip plus AU12, with the 0.5 threshold.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mer.evaluation.scoring import AU_THRESHOLD, is_expression

if TYPE_CHECKING:
    from mer.evaluation.real import ClipRun, RealReport

#: Band colours of labelled event kinds (expression bands get the emotion's colour).
KIND_COLOURS = {"speech": "tab:grey", "gaze": "tab:cyan", "head_turn": "tab:brown",
                "eyes": "tab:olive", "mouth_shape": "tab:purple"}  # fmt: skip
EMOTION_COLOURS = {"positive": "tab:green", "negative": "tab:red", "surprise": "tab:orange",
                   "other": "tab:blue"}  # fmt: skip
#: Bar colours of spotted interval kinds.
INTERVAL_COLOURS = {"micro": "tab:blue", "macro": "navy", "speech": "tab:grey",
                    "blink": "tab:olive", "head": "tab:brown", "gaze": "tab:cyan"}  # fmt: skip
DPI = 80


def write_report(report: RealReport, out_dir: Path, *, plots: bool = True) -> None:
    """Write ``report.json``, ``report.md`` and (``plots``) ``<clip stem>.png`` per clip."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = report.to_json()
    pngs = {}
    if plots:
        for run in report.runs:
            name = plot_name(run.clip.name)
            plot_clip(run, out_dir / name)
            pngs[run.clip.name] = name
    for c in payload["clips"]:
        c["plot"] = pngs.get(c["clip"])
    (out_dir / "report.json").write_text(json.dumps(payload, indent=1) + "\n")
    (out_dir / "report.md").write_text(markdown(payload))


def plot_name(clip: str) -> str:
    """PNG file name of a clip: its name with unsafe characters replaced, plus ``.png``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", clip) + ".png"


def _f(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def summary_lines(p: dict) -> list[str]:
    """The headline figures of a ``report.json`` payload (Markdown list items)."""
    s, a, au, sm, emo = p["spotting"], p["apex"], p["au"], p["au12_smiles"], p["emotion"]
    ne = p["non_expression"]
    lines = [
        f"- **spotting** (MEGC, IoU >= {s['iou_threshold']}): precision {_f(s['precision'])}, "
        f"recall {_f(s['recall'])}, **F1 {_f(s['f1'])}** — {s['tp']} of {s['n_events']} "
        f"expression events matched, {s['fp']} false intervals of {s['n_intervals']}",
        f"- **apex** hit (in apex_range or within {a['tolerance_frames']} frames): "
        f"{a['hits']} of {a['n_matched']} matched events with a scoreable apex "
        f"({_f(a['share'])})",
        *_micro_apex_line(a.get("micro")),
        f"- **AUs** at {au['n_apexes']} labelled apexes (confidence "
        f"{'/'.join(au['confidences'])}, present >= {au['threshold']}): **macro-F1 "
        f"{_f(au.get('macro_f1'))}** over {', '.join(au.get('scored_aus', []))}",
        f"- **AU12 at smiles**: rises at {sm['n_rise']} of {sm['n']} labelled smiles "
        f"(apex >= {sm['apex_min']} and rise >= {sm['rise_min']}); at every smile: "
        f"**{'yes' if sm['rises_at_every_smile'] else 'no'}**",
    ]  # fmt: skip
    if emo["n"]:
        hm = emo["high_medium"]
        lines.append(
            f"- **emotion** of the most-overlapping micro/macro interval: right for "
            f"{emo['correct']} of {emo['n']} events (accuracy {_f(emo['accuracy'])}, UAR "
            f"{_f(emo['uar'])} over {', '.join(emo['truth_classes'])}; high/medium confidence: "
            f"{hm['correct']} of {hm['n']}); predicted none: {emo['predicted_none']}"
        )
    oth = ne["other_kind_intervals"]
    lines += [
        f"- **non-expression events** ({ne['n_events']}: "
        + ", ".join(f"{k} {v}" for k, v in ne["by_kind"].items())
        + f"): {ne['with_emotional_interval']} overlapped by an emotional interval (errors)",
        f"- non-expression intervals predicted: {oth['n']}"
        + (f" ({', '.join(f'{k} {v}' for k, v in oth['by_kind'].items())}; "
           f"{oth['overlapping_labelled']} overlap a labelled non-expression event)"
           if oth["n"] else ""),
    ]  # fmt: skip
    return lines


def _micro_apex_line(m: dict | None) -> list[str]:
    """The micro apex error line (none for payloads without it or without micro events)."""
    if not m or not m["n_events"]:
        return []
    if not m["n_matched"]:
        return [f"- **micro apex error**: none of {m['n_events']} labelled micro events matched"]
    return [
        f"- **micro apex error** (|predicted - labelled apex| / (offset - onset + 1)): mean "
        f"**{100 * m['mae_rel']:.1f} %**, median {100 * m['median_rel']:.1f} %, "
        f"{_f(m['mae_frames'])} frames, over {m['n_matched']} matched of {m['n_events']} "
        "labelled micro events (<= 0.5 s)"
    ]


def markdown(p: dict) -> str:
    """The human report of a ``report.json`` payload."""
    au, sm, emo, ne = p["au"], p["au12_smiles"], p["emotion"], p["non_expression"]
    lines = [
        "# Real-video evaluation (hand-labelled clips)", "",
        f"Labels: {', '.join(p['label_files'])}; {p['n_clips']} clips, {p['frames']} frames "
        f"in {p['seconds']:.0f} s ({_f(p['frames_per_s'], 1)} frames/s wall time on "
        f"{p['host'].get('cpus')} CPUs, 1-min load average "
        f"{' -> '.join(map(str, p['host'].get('load_avg_1min', [])))})."
        + (f" **Failed: {', '.join(p['failed'])}**" if p["failed"] else ""), "",
        *(["Neutral: each clip with a labelled `rest_frames` was analysed against that "
           "stretch as the person's neutral (`--neutral-from-labels`); the others with the "
           "estimated neutral.", ""] if p.get("neutral_from_labels") else []),
        "Models: " + ", ".join(f"{m['name']} {m['version']} ({m['task']}, {m['method']})"
                               for m in p["models"]), "",
        "## Summary", "", *summary_lines(p), "",
    ]  # fmt: skip
    if "f1" in au:
        names = au["scored_aus"]
        lines += ["## AUs at the labelled apexes", "",
                  "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
                  "| F1 | " + " | ".join(_f(au["f1"][n]) for n in names) + " |",
                  "| labelled | " + " | ".join(str(au["support"][n]) for n in names) + " |",
                  "| predicted | " + " | ".join(str(au["predicted_positive"][n]) for n in names)
                  + " |", ""]  # fmt: skip
    if sm["rows"]:
        lines += ["## AU12 at labelled smiles", "",
                  "| clip | event | AU12 apex | baseline (from) | rise | rises |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['clip']} | {r['name']} | {_f(r['au12_apex'])} | "
                  f"{_f(r['au12_baseline'])} ({r['baseline_from']}) | {_f(r['rise'])} | "
                  f"{'yes' if r['au12_rises'] else '**no**'} |" for r in sm["rows"]]  # fmt: skip
        lines.append("")
    if emo["n"]:
        cls = emo["classes"]
        lines += ["## Emotion", "", "Confusion (rows: label, columns: predicted):", "",
                  "| | " + " | ".join(cls) + " |", "|---" * (len(cls) + 1) + "|"]  # fmt: skip
        lines += [f"| {c} | " + " | ".join(map(str, row)) + " |"
                  for c, row in zip(cls, emo["confusion"], strict=False)]  # fmt: skip
        lines += ["", "| clip | event | conf. | label (alt) | predicted | interval | model |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in emo["rows"]:
            mark = "" if r["predicted"] == r["label"] else "**"
            lines.append(
                f"| {r['clip']} | {r['name']} | {r['confidence']} | {r['label']}"
                f"{' (' + r['label_alt'] + ')' if r['label_alt'] else ''} | "
                f"{mark}{r['predicted']}{mark} | "
                f"{r['interval'] if r['interval'] is not None else '-'}"
                f" | {r['model'] or '-'}{' / ' + r['method'] if r['method'] else ''} |"
            )
        lines.append("")
    if ne["rows"]:
        lines += ["## Non-expression events", "",
                  "| clip | event | emotional intervals over it | other intervals over it |",
                  "|---|---|---|---|"]  # fmt: skip
        for r in ne["rows"]:
            emo_iv = ", ".join(f"#{x['interval']} {x['kind']} {x['emotion']}"
                               for x in r["emotional_intervals"])  # fmt: skip
            other = ", ".join(f"#{x['interval']} {x['kind']}" for x in r["other_intervals"])
            lines.append(
                f"| {r['clip']} | {r['name']} | "
                f"{'**' + emo_iv + '**' if emo_iv else '-'} | {other or '-'} |"
            )
        lines.append("")
    lines += ["## Per clip", "",
              "| clip | frames | s | frames/s | expr. events | matched | intervals "
              "(onset-apex-offset kind emotion -> event, IoU) |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in p["clips"]:
        ivs = "; ".join(
            f"{i['onset']}-{i['apex']}-{i['offset']} {i['kind']} {i['emotion']}"
            + (f" -> #{i['matched_event']} ({i['iou']:.2f}{', apex hit' if i['apex_hit'] else ''})"
               if i["matched_event"] is not None else " (FP)" if i["kind"] in ("micro", "macro")
               else "")
            for i in c["intervals"]
        ) or "-"  # fmt: skip
        name = f"[{c['clip']}]({c['plot']})" if c.get("plot") else c["clip"]
        if c["error"]:
            ivs = f"**failed: {c['error']}**"
        lines.append(f"| {name} | {c['frames'] or '-'} | {c['seconds']:.1f} | "
                     f"{_f(c['frames_per_s'], 1)} | {c['n_expression_events']} | {c['matched']} | "
                     f"{ivs} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_clip(run: ClipRun, path: Path) -> None:
    """One clip's PNG: labelled bands, apex score and spotted intervals on top, AU curves
    below (labelled AUs of the clip + AU12), frame index on x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    lab, res = run.clip.labels, run.result
    n = res.video.frame_count if res else lab.frames
    fig, (ax, ax_au) = plt.subplots(
        2, 1, figsize=(10, 5.2), sharex=True, gridspec_kw={"height_ratios": [1.15, 1]}
    )
    handles = []
    for axis in (ax, ax_au):
        for e in lab.events:
            colour = EMOTION_COLOURS[e.emotion] if e.kind == "expression" else KIND_COLOURS[e.kind]
            axis.axvspan(e.onset - 0.5, e.offset + 0.5, color=colour, alpha=0.18, lw=0)
            axis.axvline(e.apex, color=colour, ls="--", lw=1)
        for a, b in lab.no_face_frames:
            axis.axvspan(a - 0.5, b + 0.5, color="k", alpha=0.12, lw=0, hatch="//")
    seen = set()
    for e in lab.events:
        key = f"{e.kind} {e.emotion}" if e.kind == "expression" else e.kind
        if key not in seen:
            seen.add(key)
            colour = EMOTION_COLOURS[e.emotion] if e.kind == "expression" else KIND_COLOURS[e.kind]
            handles.append(Patch(color=colour, alpha=0.35, label=f"label: {key}"))
    for e in lab.events:  # name each band at its top (bands of kinds may overlap)
        key = e.emotion if e.kind == "expression" else e.kind
        ax.text(e.onset, 1.07 if e.kind == "expression" else 1.0, key, fontsize=7,
                va="bottom" if e.kind == "expression" else "top")  # fmt: skip
    if lab.no_face_frames:
        handles.append(Patch(color="k", alpha=0.12, hatch="//", label="label: no face"))
    if lab.rest_frames:
        a, b = lab.rest_frames
        ax.axvspan(a - 0.5, b + 0.5, ymin=0.93, ymax=1.0, color="k", alpha=0.5, lw=0)
        handles.append(Patch(color="k", alpha=0.5, label="rest frames"))

    matched = {m.interval: m for m in run.score.matches}
    if res is not None:
        frames = np.array([f.frame for f in res.frames])
        ax.plot(frames, [f.apex_score for f in res.frames], color="k", lw=1.2,
                label="apex score")  # fmt: skip
        for i, iv in enumerate(res.intervals):
            y = -0.12 - 0.1 * (i % 3)
            colour = INTERVAL_COLOURS.get(iv.kind, "tab:pink")
            ok = i in matched
            solid = ok or not is_expression(iv)
            ax.barh(y, iv.offset - iv.onset + 1, left=iv.onset - 0.5, height=0.08, color=colour,
                    alpha=0.9 if solid else 0.35, hatch=None if solid else "xx",
                    edgecolor=colour)  # fmt: skip
            ax.plot([iv.apex], [y], marker="v", color="w", ms=5, mec="k")
            tag = iv.kind if not is_expression(iv) else (
                f"{iv.kind}, emotion {iv.emotion.label if iv.emotion else 'null'}, "
                + (f"match IoU {matched[i].iou:.2f}" if ok else "FP"))  # fmt: skip
            ax.text(iv.offset + 1, y, tag, va="center", fontsize=7)
            if iv.kind not in seen:
                seen.add(iv.kind)
                handles.append(Patch(color=colour, label=f"spotted: {iv.kind}"))
        aus = list(dict.fromkeys([a for e in lab.events for a in e.aus] + ["AU12"]))
        cmap = plt.get_cmap("tab10")
        for k, au in enumerate(aus):
            ax_au.plot(frames, [f.au.get(au, np.nan) for f in res.frames], lw=1.6 if
                       au == "AU12" else 1.0, color=cmap(k % 10), label=au)  # fmt: skip
        no_face = frames[[not f.face for f in res.frames]]
        if len(no_face):
            ax.plot(no_face, np.full(len(no_face), 1.02), "|", color="k", ms=4,
                    label="no face (result)")  # fmt: skip
    else:
        ax.text(0.5, 0.5, f"analysis failed: {run.score.error}", transform=ax.transAxes,
                ha="center", color="r")  # fmt: skip
    ax_au.axhline(AU_THRESHOLD, color="k", lw=0.6, ls=":")
    for e in lab.events:
        if e.kind == "expression" and e.aus:
            ax_au.text(e.apex, 1.02, " ".join(e.aus), fontsize=7, ha="center", va="bottom")
    s = run.score
    ax.set_title(
        f"{run.clip.name}: {s.tp}/{s.n_expression_events} expression events matched, "
        f"{s.n_expression_intervals - s.tp} false intervals"
        + (f" — {run.score.error}" if run.score.error else ""),
        fontsize=9,
    )
    ax.set_ylim(-0.45, 1.16)
    ax.set_ylabel("apex score")
    ax.legend(handles=ax.get_legend_handles_labels()[0] + handles, fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    ax_au.set_ylim(-0.02, 1.12)
    ax_au.set_ylabel("AU score")
    ax_au.set_xlabel("frame (bars: spotted intervals, hatched = false positive; "
                     "dashed: labelled apex)")  # fmt: skip
    ax_au.set_xlim(-0.5, n - 0.5)
    if res is not None:
        ax_au.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)

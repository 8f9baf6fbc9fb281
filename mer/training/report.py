"""The evaluation report of ``mer evaluate``: ``report.json``, ``report.md``, ``report.png``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Report:
    """An evaluation report: the main result, ablations and apex MAE."""

    dataset: str
    main: dict
    ablations: dict[str, dict] = field(default_factory=dict)
    apex: dict = field(default_factory=dict)
    device: str = "cpu"

    def write(self, out_dir: Path) -> None:
        """Write ``report.json``, ``report.md`` and ``report.png`` to ``out_dir``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").write_text(json.dumps(asdict(self), indent=2))
        m = self.main
        emotion = "uf1" in m  # absent with ``mer evaluate --only au``
        lines = [f"# Evaluation on {self.dataset}", "",
                 f"Protocol: subject-grouped CV, {m['folds']} folds, metrics pooled over folds; "
                 f"device {self.device}.", ""]  # fmt: skip
        if emotion:
            lines.append(
                f"- emotion UF1 **{m['uf1']:.4f}**, UAR **{m['uar']:.4f}** "
                f"({m['n_test_clips']} test clips, classes {', '.join(m['classes'])})"
            )
        if "emotional" in m:
            e = m["emotional"]
            lines.append(
                f"- MEGC 3-class (emotional clips only, most probable emotion): UF1 "
                f"**{e['uf1']:.4f}**, UAR **{e['uar']:.4f}** ({e['n_test_clips']} clips)"
            )
        if "au_macro_f1" in m:
            lines.append(
                f"- AU macro-F1 **{m['au_macro_f1']:.4f}**: "
                + ", ".join(f"{k} {v:.2f}" for k, v in m["au_f1"].items())
            )
        if self.apex:
            lines.append(
                f"- apex MAE {self.apex['mae_frames']:.2f} frames = "
                f"{100 * self.apex['mae_rel']:.1f} % of onset-to-offset "
                + (
                    f"(median {100 * self.apex['median_rel']:.1f} %) "
                    if "median_rel" in self.apex
                    else ""
                )
                + f"({self.apex['n']} clips"
                + (
                    f"; AU detector: {self.apex['au_detector']}"
                    if "au_detector" in self.apex
                    else ""
                )
                + ")"
            )
        if emotion:
            lines += ["", "Confusion (rows truth):", "",
                      "| | " + " | ".join(m["classes"]) + " |",
                      "|---" * (len(m["classes"]) + 1) + "|"]  # fmt: skip
            for c, row in zip(m["classes"], m["confusion"], strict=True):
                lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        if self.ablations:
            lines += ["", "## Ablations", "",
                      "| variant | UF1 | UAR | 3-class UF1 | 3-class UAR | AU macro-F1 |",
                      "|---|---|---|---|---|---|"]  # fmt: skip

            def num(v: float | None) -> str:
                return "-" if v is None else f"{v:.4f}"

            for name, r in self.ablations.items():
                e = r.get("emotional") or {}
                cells = [r.get("uf1"), r.get("uar"), e.get("uf1"), e.get("uar"),
                         r.get("au_macro_f1")]  # fmt: skip
                lines.append(f"| {name} | " + " | ".join(num(v) for v in cells) + " |")
        (out_dir / "report.md").write_text("\n".join(lines) + "\n")
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        if emotion:
            axes[0].imshow(np.array(m["confusion"]), cmap="Blues")
            axes[0].set_xticks(range(len(m["classes"])), m["classes"])
            axes[0].set_yticks(range(len(m["classes"])), m["classes"])
            axes[0].set_title(f"UF1 {m['uf1']:.3f} UAR {m['uar']:.3f}")
        else:
            axes[0].set_axis_off()
        if "au_f1" in m:
            axes[1].bar(list(m["au_f1"]), list(m["au_f1"].values()))
            axes[1].set_ylim(0, 1)
            axes[1].tick_params(axis="x", rotation=60)
            axes[1].set_title(f"AU F1 (macro {m['au_macro_f1']:.3f})")
        fig.tight_layout()
        fig.savefig(out_dir / "report.png", dpi=90)
        plt.close(fig)


def device_description() -> str:
    """The training device as the reports and model cards name it, e.g.
    ``"cpu (x86_64, 2 threads)"`` (torch's intra-op thread count)."""
    import platform

    import torch

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"

"""Accuracy by round, one image per variant, for docs/results.md (called by scripts/experiments.ts).

    .venv/bin/python scripts/plot_experiments.py RESULTS.json OUT_DIR

RESULTS.json: {"variant": {"label": str, "rounds": [{"round": int, "direct": [..per seed..],
"refine": [..], "oracle": [..]}]}}. Writes OUT_DIR/experiments-<variant>.png: held-out direct
accuracy, accuracy after the last refinement and (when measured) the oracle's "any step right",
mean over seeds with the seeds' spread as error bars.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    results = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for variant, data in results.items():
        fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=120)
        rounds = [r["round"] for r in data["rounds"]]
        for key, label, style in (("direct", "direct", "o-"), ("refine", data.get("refineLabel", "refine@K"), "s-"), ("oracle", "any step right (oracle)", "^--")):
            series = [r.get(key) or [] for r in data["rounds"]]
            if not all(series):
                continue
            means = [100 * statistics.mean(s) for s in series]
            sds = [100 * statistics.stdev(s) if len(s) > 1 else 0 for s in series]
            ax.errorbar(rounds, means, yerr=sds, fmt=style, capsize=3, label=label)
        ax.set_xticks(rounds)
        ax.set_xlabel("round (0 = the starting model)")
        ax.set_ylabel("held-out accuracy, %")
        ax.set_ylim(0, 100)
        ax.set_title(data["label"], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        fig.savefig(out / f"experiments-{variant}.png")
        plt.close(fig)
        print(out / f"experiments-{variant}.png")


if __name__ == "__main__":
    main()

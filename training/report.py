"""A readable evaluation report: REPORT.md with tables and PNG plots (matplotlib, Agg backend).

Plots: the calibration curve (nominal vs. observed coverage of the range), and the error by
charge family, by province and by number of defendants.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sentencing.case import Case
from training.evaluate import Record, breakdown
from training.predictor import RangePredictor

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def calibration_curve(predictor: RangePredictor, cases: Sequence[Case]) -> list[tuple[float, float]]:
    """(nominal, observed) coverage over held-out term defendants, for each level in LEVELS."""
    rows: list[tuple[np.ndarray, int]] = []
    for case in cases:
        blind = case.before_judgment()
        X, _, _ = predictor.features(blind)
        for i, d in enumerate(case.defendants):
            if d.sentence is not None and d.sentence.term_months >= 0:
                rows.append((X[i], d.sentence.term_months))
    if not rows:
        return []
    X = np.vstack([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    out = []
    for level in LEVELS:
        months, _ = predictor.predict_matrix(X, confidence=level)
        out.append((level, float(np.mean((months[:, 0] <= y) & (y <= months[:, 2])))))
    return out


def _bar(path: Path, title: str, table: dict[str, dict[str, float]], metric: str, top: int = 15) -> None:
    items = list(table.items())[:top]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(items) + 1.5))
    names = [f"{k} (n={int(v['n_defendants'])})" for k, v in items]
    ax.barh(names[::-1], [v.get(metric, math.nan) for _, v in items][::-1], color="#4c72b0")
    ax.set_xlabel(metric)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _table(table: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| group | n | CAIL | MAE (months) | coverage | width (months) | guideline CAIL |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, v in table.items():
        lines.append(
            f"| {k} | {int(v['n_defendants'])} | {v['cail_score']:.1f} | {v['mae_months']:.1f} | "
            f"{v.get('coverage', math.nan):.1%} | {v.get('mean_width_months', math.nan):.1f} | "
            f"{v['guideline_cail_score']:.1f} |"
        )
    return lines


def write_report(out_dir: Path, summary: dict[str, Any], records: Sequence[Record], predictor: RangePredictor,
                 cases: Sequence[Case]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Chinese labels need a CJK font; without one matplotlib draws boxes but still works.
    plt.rcParams["font.sans-serif"] = ["WenQuanYi Zen Hei", "Noto Sans CJK SC", "DejaVu Sans"]
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    curve = calibration_curve(predictor, cases)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0.4, 1.0], [0.4, 1.0], "--", color="grey", label="ideal")
    if curve:
        ax.plot([c[0] for c in curve], [c[1] for c in curve], "o-", label="observed")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.set_title("Range calibration")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "calibration.png", dpi=100)
    plt.close(fig)
    by_charge = breakdown(records, lambda r: r.charge)
    by_province = breakdown(records, lambda r: r.province)
    by_defs = breakdown(records, lambda r: str(min(r.n_defendants, 4)) + ("+" if r.n_defendants >= 4 else ""))
    by_family = breakdown(records, lambda r: r.family)
    _bar(out_dir / "error_by_charge.png", "MAE by charge", by_charge, "mae_months")
    _bar(out_dir / "error_by_province.png", "MAE by province", by_province, "mae_months")
    _bar(out_dir / "error_by_defendants.png", "MAE by number of defendants", by_defs, "mae_months")
    b = summary["baselines"]
    lines = [
        f"# Evaluation report: model `{summary.get('model_version', '?')}`",
        "",
        f"{summary['n_defendants']} sentenced defendants, each case seen before judgment only (held-out figures "
        "only if these cases were not in the model's training data: see its MODEL_CARD.md).",
        "",
        "| method | CAIL score | MAE (months) | within ±25% | coverage | mean width (months) |",
        "|---|---|---|---|---|---|",
        f"| model | {summary['cail_score']:.1f} | {summary['mae_months']:.2f} | {summary['within_25pct']:.1%} | "
        f"{summary.get('coverage', math.nan):.1%} | {summary.get('mean_width_months', math.nan):.1f} |",
    ]
    for name, m in b.items():
        lines.append(
            f"| {name} | {m['cail_score']:.1f} | {m['mae_months']:.2f} | {m['within_25pct']:.1%} | "
            f"{m.get('coverage', math.nan):.1%} | {m.get('mean_width_months', math.nan):.1f} |"
        )
    lines += [
        "",
        f"Custody accuracy: model {summary['custody_accuracy']:.1%}, guideline "
        f"{b['guideline'].get('custody_accuracy', math.nan):.1%} (defendants whose source records the form).",
        "",
        f"Role consistency before enforcement: {summary.get('role_consistency', {})}",
        "",
        "## Calibration",
        "![calibration](calibration.png)",
        "",
        "| nominal | observed |",
        "|---|---|",
        *[f"| {a:.0%} | {o:.1%} |" for a, o in curve],
        "",
        "## By charge family",
        *_table(by_family),
        "",
        "## By charge",
        "![by charge](error_by_charge.png)",
        "",
        *_table(by_charge),
        "",
        "## By province",
        "![by province](error_by_province.png)",
        "",
        *_table(by_province),
        "",
        "## By number of defendants",
        "![by defendants](error_by_defendants.png)",
        "",
        *_table(by_defs),
        "",
    ]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

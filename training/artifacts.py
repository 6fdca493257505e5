"""The model directory: what a trained model is on disk, written atomically, read with validation.

Layout (``manifest.json`` names everything else)::

    manifest.json         version, rule-set version, training-data hash, files, training metrics
    feature_spec.json     the FeatureSpec the models were trained on
    calibration.json      the conformal scores (CQR)
    baselines.json        per-charge median terms of the training data
    models/<name>.txt     native LightGBM boosters (explanations, retraining)
    models/<name>.onnx    the same boosters as ONNX (serving)
    MODEL_CARD.md         what the model is, what it was trained on, how well it did, its limits
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnxruntime

from sentencing.atomic import replace_dir
from training.calibration import MIN_GROUP
from training.models import CUSTODY_CLASSES, QUANTILE_NAMES, SEVERITY_CLASSES
from training.onnx_export import booster_to_onnx

if TYPE_CHECKING:  # serving imports this module: the lightgbm package would bring sklearn, pandas…
    import lightgbm as lgb

FORMAT_VERSION = "2"
"""2: the form's stage 1 holds non-custodial (training.models.SEVERITY_CLASSES), stage 2 probation/custody."""
MANIFEST = "manifest.json"


def _booster_entries(fitted: Any) -> dict[str, tuple[lgb.Booster | None, dict[str, Any]]]:
    rm, fc = fitted.range_model, fitted.form_classifier
    out: dict[str, tuple[lgb.Booster | None, dict[str, Any]]] = {}
    for name, alpha in zip(QUANTILE_NAMES, rm.quantiles, strict=True):
        out[f"term_{name}"] = (rm.boosters_[name], {"kind": "quantile", "alpha": alpha, "init": rm.init_[name]})
    for name, clf, classes in (("form_severity", fc.severity_, SEVERITY_CLASSES),
                               ("form_custody", fc.custody_, CUSTODY_CLASSES)):
        out[name] = (clf.booster_, {"kind": "multiclass", "classes": list(classes), "present": clf.present_})
    return out


def write_model_dir(fitted: Any, ds: Any, out_dir: Path) -> Path:
    """Write a complete model directory next to ``out_dir`` and move it into place."""
    import lightgbm as lgb
    import onnxmltools

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "models").mkdir()
        spec = fitted.spec
        models: dict[str, Any] = {}
        for name, (booster, meta) in _booster_entries(fitted).items():
            entry = dict(meta)
            if booster is not None:
                booster.save_model(str(tmp / "models" / f"{name}.txt"))
                (tmp / "models" / f"{name}.onnx").write_bytes(booster_to_onnx(booster, spec.n_features, name))
                entry |= {"native": f"models/{name}.txt", "onnx": f"models/{name}.onnx"}
            models[name] = entry
        if fitted.text is not None:
            fitted.text.save(tmp)
        (tmp / "feature_spec.json").write_text(spec.model_dump_json(indent=1), encoding="utf-8")
        (tmp / "calibration.json").write_text(fitted.calibration.model_dump_json(), encoding="utf-8")
        (tmp / "baselines.json").write_text(
            json.dumps({"charge_median_months": fitted.charge_medians}, ensure_ascii=False, indent=1),
            encoding="utf-8",
        )
        created = dt.datetime.now(dt.UTC).replace(microsecond=0)
        n_cases = len(set(ds.groups.tolist()))
        version_hash = hashlib.sha256(
            (ds.data_hash + fitted.config.model_dump_json() + spec.ruleset_version).encode()
        ).hexdigest()[:10]
        manifest = {
            "format_version": FORMAT_VERSION,
            "version": f"{created:%Y%m%dT%H%M%SZ}-{version_hash}",
            "created": created.isoformat(),
            "ruleset_version": spec.ruleset_version,
            "feature_spec_version": spec.version,
            "data_hash": ds.data_hash,
            "training": {
                "cases": n_cases,
                "defendants": len(ds),
                "defendants_with_term": int(ds.has_term.sum()),
                "sources": {s: ds.sources.count(s) for s in sorted(set(ds.sources))},
                "synthetic_share": (sum(s == "synthetic" for s in ds.sources) / len(ds)) if len(ds) else 0.0,
            },
            "config": fitted.config.model_dump(),
            "range": {
                "target": fitted.range_model.target,
                "offset_column": fitted.range_model.offset_column,
                "offset_fallback": fitted.range_model.offset_fallback_,
                "guideline_weight": fitted.range_model.guideline_weight_,
                "confidence": fitted.calibration.confidence,
            },
            "models": models,
            "text_model": fitted.text is not None,
            "metrics": fitted.oof_metrics,
            "timings_s": {k: round(v, 3) for k, v in fitted.timings_s.items()},
            "libraries": {
                "lightgbm": lgb.__version__, "onnxruntime": onnxruntime.__version__,
                "onnxmltools": onnxmltools.__version__,
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        (tmp / "MODEL_CARD.md").write_text(model_card(manifest, fitted), encoding="utf-8")
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def model_card(manifest: dict[str, Any], fitted: Any) -> str:
    tr = manifest["training"]
    m = manifest["metrics"]
    cfg = manifest["config"]
    lines = [
        f"# Model card: liangxing term range and form model `{manifest['version']}`",
        "",
        "## What it does",
        "For each defendant of a case, before judgment: a range of the custodial term (months) with a "
        f"nominal {cfg['confidence']:.0%} confidence, a point inside it, the probabilities of the sentence form "
        "(非监禁刑 / 缓刑 / 实刑 / 无期徒刑 / 死刑), and per-feature contributions in months. It assists a "
        "prosecutor; it never decides (see DOMAIN.md §6).",
        "",
        "## How",
        f"- LightGBM quantile boosters ({', '.join(f'{q:.2f}' for q in fitted.range_model.quantiles)}) on "
        f"ln(1 + months), target `{manifest['range']['target']}` (residual = over the guideline engine's point), "
        f"{'with' if cfg['monotone'] else 'without'} legal-direction monotone constraints.",
        f"- The range is drawn toward the guideline engine's point by {fitted.range_model.guideline_weight_:.0%} "
        "of the point's distance to it (" + ("set in the training config" if cfg.get("guideline_weight") is not None
                                             else "the weight whose out-of-fold points scored best on the CAIL log "
                                             "score: " + ", ".join(f"{float(w):.1f} → {v:.1f}" for w, v in
                                                                   m.get("oof_cail_by_guideline_weight", {}).items()))
        + ").",
        "- Conformalised quantile regression: the range is widened by the "
        f"{cfg['confidence']:.0%} quantile of held-out conformity scores ({fitted.calibration.source}, "
        f"n = {fitted.calibration.n}; margin {m.get('calibration_margin_log', float('nan')):+.3f} on the log scale)"
        + ("; charge families with at least "
           f"{MIN_GROUP} held-out defendants get their own margin: "
           + ", ".join(f"{g} {fitted.calibration.margin(group=g):+.3f}" for g in fitted.calibration.group_scores)
           if fitted.calibration.group_scores else "") + ".",
        "- Form: a severity classifier (a term / non-custodial / life / death) on all defendants, and a custody "
        "classifier (probation / custody, given a term) on defendants whose source records whether the term was "
        "suspended.",
        "- Served through onnxruntime; explanations are the point booster's decision-path credits, summed by "
        "group and scaled to months (the guideline's pull credited to the guideline group).",
        "",
        "## Trained on",
        f"- {tr['cases']} cases, {tr['defendants']} defendants ({tr['defendants_with_term']} with a term); "
        f"sources: {', '.join(f'{k} {v}' for k, v in tr['sources'].items())}; synthetic share "
        f"{tr['synthetic_share']:.0%}.",
        f"- Training-data hash `{manifest['data_hash']}`; rule set `{manifest['ruleset_version']}`; "
        f"feature spec v{manifest['feature_spec_version']}.",
        "",
        "## Held-out figures (out-of-fold on the training data)",
        f"- MAE {m.get('oof_mae_months', float('nan')):.2f} months over {m.get('oof_defendants', 0)} defendants; "
        f"coverage of the {cfg['confidence']:.0%} range: raw {m.get('oof_coverage_raw', float('nan')):.1%}, "
        f"calibrated {m.get('oof_coverage_calibrated', float('nan')):.1%} (in-sample for the calibration itself).",
        "- For an honest figure on real judgments run `sentencing evaluate` or `benchmarks/eval_models.py`.",
        "",
        "## Limits",
        "- A model trained on the synthetic demo corpus has learned the generator, not courts: its ranges "
        "say nothing about real sentencing practice." if tr["synthetic_share"] > 0.5 else
        "- About 650 real labelled cases exist for development: charges rare in them get the guideline prior "
        "and wide ranges.",
        "- Inputs are the extracted facts; an extraction error (missed 自首, wrong amount) moves the range.",
        "- Protected attributes (ethnicity, sex, household registration) are not inputs; regional disparity is "
        "a feature (province) and should be reported, not hidden.",
        "",
    ]
    return "\n".join(lines)


def read_manifest(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8"))

"""The served rule set's charges as the API shows them, and the check of stated tiers against them."""

from __future__ import annotations

from sentencing.charges import ChargeCatalogue
from sentencing.guideline import tier_text
from serve.schemas import CaseInput, ChargeOut, TierOut


def charge_out(catalogue: ChargeCatalogue, name: str) -> ChargeOut | None:
    """A charge and its tiers as the API shows them; None when the catalogue does not know the name."""
    spec = catalogue.resolve(name)
    if spec is None:
        return None
    tiers = [TierOut(label=t.label, range_text=tier_text(t), min_months=t.min_months, max_months=t.max_months,
                     min_kind=t.min_kind, max_kind=t.max_kind,
                     selected_by="facts" if t.when else "default" if i == spec.default_tier else "statement")
             for i, t in enumerate(spec.tiers)]
    return ChargeOut(name=spec.name, article=spec.article, statutory_source=spec.statutory_source,
                     ruleset_version=catalogue.version, tiers=tiers)


def tier_errors(catalogue: ChargeCatalogue, case_input: CaseInput) -> list[tuple[str, str]]:
    """(field, problem) for each stated tier (``tiers``) that is not a tier of its charge in ``catalogue``."""
    out = []
    for i, d in enumerate(case_input.defendants):
        for charge, label in (d.tiers or {}).items():
            spec = catalogue.resolve(charge)
            field = f"defendants.{i}.tiers.{charge}"
            if spec is None:
                out.append((field, f"罪名“{charge}”不在罪名目录（{catalogue.version}）中，不能指定法定刑幅度"))
            elif all(t.label != label for t in spec.tiers):
                labels = "、".join(f"“{t.label}”" for t in spec.tiers)
                out.append((field, f"“{label}”不是{spec.label}的法定刑幅度；可选：{labels}"))
    return out

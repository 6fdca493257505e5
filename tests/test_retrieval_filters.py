"""Filters composed from per-charge and per-province bitmaps select exactly the rows the column
comparison selects, for every charge, province and scope, after deletions and additions too."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from retrieval.index import FilterBases, RowFilter, pack_rows
from retrieval.search import RetrievalIndex, RowSelection
from sentencing.config import Settings
from tests.retrieval_cases import make_cases


def _compare_all(index: RetrievalIndex) -> int:
    """Every (charge, province, scope) the index knows, plus unknown ones: composed == compared."""
    checked = 0
    charges = [*index.vocab["charges"].values, "不存在的罪名"]
    provinces = [*index.vocab["provinces"].values, "XX"]
    profile = index.profile(*_any_defendant(index))
    for charge in charges:
        for province in provinces:
            p = dataclasses.replace(profile, charges=(charge,), province=province)
            for scope in ("other", "own", "any"):
                for same_charge in (True, False):
                    selection = RowSelection(scope=scope, same_charge=same_charge)
                    composed = index._row_filter(p, selection)
                    mask = index._filter(p, selection)
                    assert composed.n_allowed == int(mask.sum()), (charge, province, scope, same_charge)
                    assert np.array_equal(composed.mask, mask), (charge, province, scope, same_charge)
                    assert np.array_equal(composed.bitmap[: -(-len(mask) // 8)],
                                          np.packbits(mask, bitorder="little"))
                    checked += 1
    return checked


_CASES = make_cases(160, seed=21)
# some judgments name no court or province: "other provinces" must not take them in
_CASES[5:160:9] = [c.model_copy(update={"province": None, "court": None}) for c in _CASES[5:160:9]]


def _any_defendant(index: RetrievalIndex):
    case = _CASES[0]
    return case, case.defendants[0]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> RetrievalIndex:
    out = tmp_path_factory.mktemp("filters") / "idx"
    return RetrievalIndex.build(iter(_CASES[:120]), out, settings=Settings(retrieval_epochs=0, retrieval_dim=16))


def test_composed_filters_equal_the_column_comparison(index: RetrievalIndex) -> None:
    assert len(index.vocab["provinces"].values) > 3 and len(index.vocab["charges"].values) > 3
    assert (np.asarray(index.meta["province"]) < 0).any()
    assert _compare_all(index) > 100


def test_after_deletions_and_additions(index: RetrievalIndex, tmp_path: Path) -> None:
    index.delete([c.id for c in _CASES[:30:3]])
    index.add(_CASES[120:])
    assert int(np.asarray(index.meta["deleted"]).sum()) > 0
    _compare_all(index)
    index.save()
    again = RetrievalIndex.load(index.directory, settings=index.settings)
    _compare_all(again)


def test_bitmaps_are_read_only_and_counted_by_words() -> None:
    mask = np.zeros(77, dtype=bool)
    mask[[0, 7, 8, 63, 64, 76]] = True
    bitmap = pack_rows(mask)
    assert len(bitmap) % 8 == 0 and np.array_equal(bitmap[:10], np.packbits(mask, bitorder="little"))
    flt = RowFilter.packed(bitmap, len(mask), 6)
    assert np.array_equal(flt.mask, mask)
    with pytest.raises(ValueError):
        flt.bitmap[0] = 1
    assert FilterBases.__doc__

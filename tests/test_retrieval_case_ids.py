"""Row → case id, memory-mapped: the same ids as the list it replaces, through saves, loads and adds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.case_ids import CaseIds

_IDS = st.lists(st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), min_size=1,
                        max_size=30), max_size=40)


@settings(max_examples=200, deadline=None)
@given(loaded=_IDS, added=_IDS)
def test_round_trip_with_appends(tmp_path_factory: pytest.TempPathFactory, loaded: list[str],
                                 added: list[str]) -> None:
    path = tmp_path_factory.mktemp("ids") / "case_ids.txt"
    CaseIds.of(loaded).save(path)
    ids = CaseIds.load(path)
    assert list(ids) == loaded and len(ids) == len(loaded)
    ids.extend(added)
    expected = loaded + added
    assert [ids[i] for i in range(len(ids))] == expected
    assert list(ids) == expected and ids == expected
    if expected:
        assert ids[-1] == expected[-1] and ids[1:3] == expected[1:3]
    for start in range(len(expected) + 1):  # slices within, across and beyond the mapped ids
        assert ids[start:] == expected[start:]
        assert ids[:start] == expected[:start]
        assert ids[start : start + 3] == expected[start : start + 3]
    assert ids[::2] == expected[::2] and ids[5:2] == []
    again = tmp_path_factory.mktemp("ids") / "case_ids.txt"
    ids.save(again)
    assert list(CaseIds.load(again)) == expected
    # the file format is unchanged: one id per line
    assert again.read_bytes() == "".join(c + "\n" for c in expected).encode("utf-8")


def test_a_last_line_without_newline_and_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "case_ids.txt"
    path.write_text("甲-1\nB2\n（2020）苏01刑初3号", encoding="utf-8")
    assert list(CaseIds.load(path)) == ["甲-1", "B2", "（2020）苏01刑初3号"]
    path.write_bytes(b"")
    empty = CaseIds.load(path)
    assert len(empty) == 0 and list(empty) == []
    empty.append("x")
    assert empty[0] == "x"


def test_out_of_range(tmp_path: Path) -> None:
    ids = CaseIds.of(["a", "b"])
    with pytest.raises(IndexError, match="row 2"):
        ids[2]
    with pytest.raises(IndexError):
        ids[-3]


def test_an_index_keeps_its_case_ids_through_add_save_and_mapped_load(tmp_path: Path) -> None:
    from retrieval.search import RetrievalIndex
    from sentencing.config import Settings
    from tests.retrieval_cases import make_cases

    cases = make_cases(30, seed=11)
    settings = Settings(retrieval_epochs=0, retrieval_dim=16)
    built = RetrievalIndex.build(iter(cases[:20]), tmp_path / "idx", settings=settings)
    expected = [c.id for c in cases[:20] for d in c.defendants if d.sentence is not None]
    assert isinstance(built.case_ids, CaseIds) and list(built.case_ids) == expected
    loaded = RetrievalIndex.load(tmp_path / "idx", settings=settings)
    loaded.add(cases[20:])
    expected += [c.id for c in cases[20:] for d in c.defendants if d.sentence is not None]
    assert list(loaded.case_ids) == expected
    # a replaced case: its old rows are found by id and tombstoned
    assert loaded.delete([cases[3].id]) == sum(d.sentence is not None for d in cases[3].defendants)
    loaded.save()
    again = RetrievalIndex.load(tmp_path / "idx", settings=settings)
    assert list(again.case_ids) == expected
    assert again.delete([cases[25].id]) == sum(d.sentence is not None for d in cases[25].defendants)

"""The SQLite case store: idempotent imports, updates with new sequence numbers, streaming, atomicity."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentencing.case import Case, Defendant
from sentencing.cli import main
from sentencing.sentence import Sentence, SentenceKind
from sentencing.store import CaseStore


def _case(i: int, *, facts: str = "事实", source: str = "judge", synthetic: bool = False) -> Case:
    return Case(
        id=f"{source}:{i}", source=source, synthetic=synthetic, province="JS", facts=f"{facts}{i}",
        defendants=[Defendant(name="张某", sentence=Sentence(kind=SentenceKind.FIXED_TERM, months=6 + i % 30))],
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CaseStore]:
    with CaseStore(tmp_path / "cases.sqlite") as s:
        yield s


def test_add_get_and_skip_duplicates(store: CaseStore) -> None:
    report = store.add(_case(i) for i in range(5))
    assert (report.added, report.updated, report.unchanged, report.last_seq) == (5, 0, 0, 5)
    assert store.get("judge:3") == _case(3)
    assert store.get("judge:99") is None
    again = store.add(_case(i) for i in range(5))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 5)
    assert store.count() == 5 and store.max_seq() == 5


def test_changed_content_updates_and_gets_a_new_sequence_number(store: CaseStore) -> None:
    store.add(_case(i) for i in range(3))
    assert store.seq_of("judge:0") == 1
    report = store.add([_case(0, facts="更正后的事实")])
    assert (report.added, report.updated) == (0, 1)
    assert store.get("judge:0").facts == "更正后的事实0"
    assert store.seq_of("judge:0") == 4 and store.count() == 3
    # "added or changed since version 3" is exactly that case.
    assert [c.id for c in store.iter_cases(after_rowid=3)] == ["judge:0"]


def test_iter_cases_streams_in_sequence_order_with_filters(store: CaseStore) -> None:
    store.add([_case(i) for i in range(7)] + [_case(i, source="synthetic", synthetic=True) for i in range(4)])
    assert [c.id for c in store.iter_cases(batch_size=3)] == [f"judge:{i}" for i in range(7)] + [
        f"synthetic:{i}" for i in range(4)]
    assert store.count(synthetic=True) == 4 and store.count(source="judge") == 7
    assert [c.id for c in store.iter_cases(batch_size=2, synthetic=True)] == [f"synthetic:{i}" for i in range(4)]
    assert [s.seq for s in store.iter_stored(batch_size=2, source="judge", after_rowid=5)] == [6, 7]
    with pytest.raises(ValueError, match="batch_size"):
        list(store.iter_cases(batch_size=0))


def test_get_many_keeps_the_order_asked(store: CaseStore) -> None:
    store.add(_case(i) for i in range(4))
    found = store.get_many(["judge:2", "judge:9", "judge:0", "judge:2"])
    assert [c.id for c in found] == ["judge:2", "judge:0", "judge:2"]


def test_delete(store: CaseStore) -> None:
    store.add(_case(i) for i in range(2))
    assert store.delete("judge:1") is True and store.delete("judge:1") is False
    assert store.count() == 1
    store.add([_case(1)])
    assert store.seq_of("judge:1") == 3  # sequence numbers are never reused


def test_a_failing_import_stores_nothing(store: CaseStore) -> None:
    store.add([_case(0)])

    def cases() -> Iterator[Case]:
        yield _case(1)
        yield _case(0, facts="改")
        raise ValueError("bad line 3")

    with pytest.raises(ValueError, match="bad line 3"):
        store.add(cases())
    assert store.count() == 1 and store.get("judge:0") == _case(0) and store.max_seq() == 1


def test_store_file_is_wal_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with CaseStore(path) as s:
        s.add([_case(1)])
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT id, province, primary_charge FROM cases").fetchall() == [("judge:1", "JS", None)]
    with CaseStore(path) as s:
        assert s.get("judge:1") == _case(1)


def _judge_line(text_id: str) -> str:
    fd = ("某某人民法院 刑事判决书 （2018）苏0106刑初1号 公诉机关某某人民检察院。 被告人张某，男。 "
          "某某人民检察院以某检诉〔2018〕1号起诉书指控被告人张某犯盗窃罪，向本院提起公诉。现已审理终结。 "
          "公诉机关指控：被告人张某窃得手机一部。 本院认为，被告人张某构成盗窃罪。判决如下： "
          "被告人张某犯盗窃罪，判处拘役三个月。 如不服本判决，可上诉。")
    return json.dumps({"text_id": text_id, "text": "x", "la": [264], "fd": fd}, ensure_ascii=False)


def test_cli_parse_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(_judge_line("a") + "\n" + _judge_line("b") + "\n", encoding="utf-8")
    assert main(["parse", "--format", "judge", str(good)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [Case.model_validate_json(line).id for line in lines] == ["judge:a", "judge:b"]

    db = tmp_path / "cases.sqlite"
    assert main(["import", "--format", "judge", str(good), "--store", str(db)]) == 0
    assert "added 2, updated 0, duplicates skipped 0, errors 0" in capsys.readouterr().out
    assert main(["import", "--format", "judge", str(good), "--store", str(db)]) == 0
    assert "added 0, updated 0, duplicates skipped 2" in capsys.readouterr().out

    bad = tmp_path / "bad.jsonl"
    bad.write_text(_judge_line("c") + "\n{oops\n", encoding="utf-8")
    assert main(["import", "--format", "judge", str(bad), "--store", str(db)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: <line>: not JSON" in err and "nothing stored" in err
    with CaseStore(db) as s:
        assert s.count() == 2  # all or nothing: judge:c did not land
    assert main(["import", "--format", "judge", str(bad), "--store", str(db), "--keep-going"]) == 1
    assert "added 1" in capsys.readouterr().out
    assert main(["import", "--format", "judge", str(tmp_path / "missing.jsonl"), "--store", str(db)]) == 2

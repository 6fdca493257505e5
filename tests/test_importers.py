"""Importers: JuDGE, LawBench, CAIL2018 and the project's own JSON lines; errors name file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentencing.case import Case, Defendant
from sentencing.importers import IMPORTERS, CaseFormatError, read_cases, read_cases_parallel
from sentencing.sentence import Sentence, SentenceKind

JUDGMENT = (
    "浙江省温岭市人民法院 刑事判决书 （2018）浙1081刑初1047号 公诉机关温岭市人民检察院。 "
    "被告人姚某，男，1990年1月1日出生。 温岭市人民检察院以温检刑诉〔2018〕1号起诉书指控被告人姚某犯盗窃罪，"
    "于2018年9月1日向本院提起公诉。现已审理终结。 "
    "公诉机关指控：2018年5月1日，被告人姚某窃得被害人手机一部，价值人民币3000元。"
    "公诉机关建议判处被告人姚某拘役五个月。 本院认为，被告人姚某的行为已构成盗窃罪。被告人姚某到案后如实供述，系坦白。"
    "依照《中华人民共和国刑法》第二百六十四条之规定，判决如下： "
    "被告人姚某犯盗窃罪，判处拘役四个月，并处罚金人民币二千元。 "
    "如不服本判决，可在接到判决书的第二日起十日内提出上诉。 审判员某某 二〇一八年十月九日"
)


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_registry_names() -> None:
    assert set(IMPORTERS) == {"judge", "lawbench", "cail2018", "cases"}
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        list(read_cases("xml", []))


def test_judge_importer(tmp_path: Path) -> None:
    path = _write(tmp_path, "j.jsonl", [
        json.dumps({"text_id": "a1", "text": "事实", "la": [264], "fd": JUDGMENT}, ensure_ascii=False),
        json.dumps({"text_id": "s1", "text": "事实", "fd": JUDGMENT, "synthetic": True}, ensure_ascii=False),
    ])
    real, synthetic = read_cases("judge", [path])
    assert (real.id, real.source, real.synthetic, real.province) == ("judge:a1", "judge", False, "ZJ")
    assert (synthetic.id, synthetic.source, synthetic.synthetic) == ("synthetic:s1", "synthetic", True)
    (d,) = real.defendants
    assert d.sentence == Sentence(kind=SentenceKind.DETENTION, months=4, fine_yuan=2000)
    assert "拘役五个月" not in real.facts


def test_lawbench_importer(tmp_path: Path) -> None:
    question = (
        "事实:公诉机关指控：被告人颜某盗窃人民币3723元。建议判处被告人颜某拘役四个月。\r\n罪名:盗窃。法条:刑法第264条"
    )
    path = _write(tmp_path, "l.jsonl", [
        json.dumps({"id": "lawbench-3-4-0", "question": question, "answer": "刑期:4个月"}, ensure_ascii=False),
        json.dumps({"id": "lawbench-3-4-1", "question": question, "answer": "刑期:无期"}, ensure_ascii=False),
    ])
    first, second = read_cases("lawbench", [path])
    assert first.id == "lawbench:lawbench-3-4-0" and first.province is None
    (d,) = first.defendants
    assert d.name == "颜某" and d.charge_names == ["盗窃"]
    assert d.sentence == Sentence(kind=SentenceKind.DETENTION, months=4)
    assert "建议判处" not in first.facts
    assert second.defendants[0].sentence == Sentence(kind=SentenceKind.LIFE)


def test_lawbench_charges_split_at_semicolons_only(tmp_path: Path) -> None:
    """LawBench separates charges with ";"; "、" is part of a charge's name, not a separator."""
    question = "事实:被告人于某销售工业盐。\r\n罪名:生产、销售不符合安全标准的食品;非法经营。法条:刑法第143条"
    path = _write(tmp_path, "l.jsonl", [
        json.dumps({"id": "lawbench-3-4-9", "question": question, "answer": "刑期:12个月"}, ensure_ascii=False),
    ])
    (case,) = read_cases("lawbench", [path])
    assert case.defendants[0].charge_names == ["生产、销售不符合安全标准的食品", "非法经营"]


def _cail(**meta_overrides: object) -> str:
    meta = {
        "accusation": ["盗窃"], "relevant_articles": [264], "criminals": ["张某"],
        "term_of_imprisonment": {"death_penalty": False, "life_imprisonment": False, "imprisonment": 10},
        "punish_of_money": 2000,
    } | meta_overrides
    return json.dumps({"fact": "被告人张某盗窃财物价值人民币5000元。", "meta": meta}, ensure_ascii=False)


def test_cail2018_importer(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.jsonl", [
        _cail(),
        _cail(term_of_imprisonment={"death_penalty": True, "life_imprisonment": False, "imprisonment": 0}),
        _cail(term_of_imprisonment={"death_penalty": False, "life_imprisonment": False, "imprisonment": 0}),
    ])
    term, death, fine = read_cases("cail2018", [path])
    assert term.id.startswith("cail2018:") and len({term.id, death.id, fine.id}) == 3
    assert term.defendants[0].sentence == Sentence(kind=SentenceKind.FIXED_TERM, months=10, fine_yuan=2000)
    assert death.defendants[0].sentence.kind is SentenceKind.DEATH
    assert fine.defendants[0].sentence == Sentence(kind=SentenceKind.FINE_ONLY, fine_yuan=2000)
    assert term.defendants[0].quantities.amount_yuan.value == 5000
    # Stable ids: the same line gives the same id on every read.
    assert next(read_cases("cail2018", [path])).id == term.id


def test_project_cases_round_trip(tmp_path: Path) -> None:
    exempt = Sentence(kind=SentenceKind.EXEMPT)
    case = Case(id="x:1", facts="事实", defendants=[Defendant(name="张某", sentence=exempt)])
    path = _write(tmp_path, "cases.jsonl", [case.to_json_line()])
    (back,) = read_cases("cases", [path])
    assert back == case


@pytest.mark.parametrize(
    ("fmt", "line", "field"),
    [
        ("judge", "{not json", "<line>"),
        ("judge", json.dumps({"text": "x", "fd": "y"}), "text_id"),
        ("judge", json.dumps({"text_id": "a", "fd": 3}), "fd"),
        ("lawbench", json.dumps({"id": "a", "question": "no facts", "answer": "刑期:3个月"}), "question"),
        ("lawbench", json.dumps({"id": "a", "question": "事实:x\r\n罪名:盗窃。法条:刑法第264条", "answer": "三个月"}),
         "answer"),
        ("cail2018", _cail(criminals=[]), "meta.criminals"),
        ("cail2018", _cail(criminals=["甲", "乙"]), "meta.criminals"),
        ("cail2018", _cail(term_of_imprisonment={"imprisonment": -3}), "meta.term_of_imprisonment.imprisonment"),
        ("cail2018", _cail(punish_of_money="lots"), "meta.punish_of_money"),
        ("cases", json.dumps({"id": "", "facts": "x"}), "id"),
        ("cases", json.dumps({"id": "a", "defendants": [{"name": "张某", "sentence": {"kind": "fixed_term"}}]}),
         "defendants.0.sentence"),
    ],
)
def test_malformed_line_names_file_line_and_field(tmp_path: Path, fmt: str, line: str, field: str) -> None:
    good = {"judge": json.dumps({"text_id": "ok", "text": "被告人张某盗窃。"}, ensure_ascii=False),
            "lawbench": json.dumps({"id": "ok", "question": "事实:被告人张某盗窃。\r\n罪名:盗窃。法条:刑法第264条",
                                    "answer": "刑期:6个月"}, ensure_ascii=False),
            "cail2018": _cail(),
            "cases": Case(id="ok", facts="x").to_json_line()}[fmt]
    path = _write(tmp_path, "bad.jsonl", [good, line])
    with pytest.raises(CaseFormatError) as info:
        list(read_cases(fmt, [path]))
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), 2, field)
    assert str(err).startswith(f"{path}:2: {field}:")
    errors: list[CaseFormatError] = []
    assert [c.id for c in read_cases(fmt, [path], errors)] != [] and len(errors) == 1


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        list(read_cases("judge", [tmp_path / "nope.jsonl"]))


@pytest.mark.real_data
def test_real_files_import_with_unique_ids(shared_data: Path) -> None:
    judge = list(read_cases("judge", [shared_data / "judge" / "judgments.jsonl"]))
    lawbench = list(read_cases("lawbench", [shared_data / "lawbench" / "term_prediction.jsonl"]))
    assert (len(judge), len(lawbench)) == (292, 349)
    ids = [c.id for c in judge + lawbench]
    assert len(set(ids)) == len(ids)
    assert all(len(c.defendants) == 1 and c.defendants[0].sentence for c in lawbench)
    assert all("建议判处" not in c.facts for c in judge + lawbench)
    charges = {ch.name for c in lawbench for ch in c.defendants[0].charges}
    fragments = {"生产", "组织", "伪造", "贩卖", "运输", "弹药", "儿童", "容留", "引诱"}  # what a split at "、" made
    assert not charges & fragments, sorted(charges & fragments)


def test_parallel_reading_gives_the_same_cases_in_order(tmp_path: Path) -> None:
    lines = [_cail(criminals=[f"张{i}某"]) for i in range(300)] + ["{bad"]
    path = _write(tmp_path, "many.jsonl", lines)
    errors: list[CaseFormatError] = []
    serial = list(read_cases("cail2018", [path], []))
    parallel = list(read_cases_parallel("cail2018", [path], errors, workers=2))
    assert parallel == serial and len(parallel) == 300
    assert [(e.line, e.field) for e in errors] == [(301, "<line>")]


def test_lawbench_and_cail2018_amounts_masked_as_names_are_read_again(tmp_path: Path) -> None:
    """The data sets' name masking turned 万元 into 万某 after a number (463 times in 23 LawBench records):
    read as 万元 again; 万某 the person (no digit before) is left alone."""
    facts = "被告人郭某利用职务便利，收受被害人万某所送现金18万某，另收受他人财物60多万某、十余万某。"
    question = f"事实:{facts}\r\n罪名:受贿罪。法条:刑法第383条"
    lawbench = _write(tmp_path, "l.jsonl", [
        json.dumps({"id": "lawbench-3-4-44", "question": question, "answer": "刑期:48个月"}, ensure_ascii=False)])
    cail = _write(tmp_path, "c.jsonl", [json.dumps({"fact": facts, "meta": {
        "accusation": ["受贿"], "criminals": ["郭某"], "term_of_imprisonment": {
            "imprisonment": 48, "life_imprisonment": False, "death_penalty": False}}}, ensure_ascii=False)])
    for fmt, path in (("lawbench", lawbench), ("cail2018", cail)):
        (case,) = read_cases(fmt, [path])
        assert "收受被害人万某所送现金18万元" in case.facts and "60多万元、十余万元" in case.facts, fmt
        assert case.defendants[0].quantities.amount_yuan.value == 600000, fmt  # the largest stated

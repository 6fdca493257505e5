"""``sentencing guideline`` and ``sentencing charges`` on files written here (no real data copied)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sentencing import guideline_commands

# A LawBench-format line written for this test: a theft of 8,000 yuan, with surrender, and the
# prosecutor's recommendation (which the importer strips, and the guideline must not see).
LINE = {
    "id": "t-1",
    "instruction": "",
    "question": (
        "事实:公诉机关指控：2020年5月1日，被告人王某在某商场盗窃他人手机一部，价值人民币8000元。"
        "案发后，被告人王某主动投案，如实供述自己的罪行。建议判处有期徒刑一年。\r\n罪名:盗窃。法条:刑法第264条"
    ),
    "answer": "刑期:8个月",
}


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sentencing")
    guideline_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def lawbench_file(tmp_path: Path) -> Path:
    path = tmp_path / "term.jsonl"
    path.write_text(json.dumps(LINE, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def test_guideline_prints_one_json_line_per_defendant(lawbench_file: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["guideline", "--format", "lawbench", str(lawbench_file)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert row["case_id"] == "lawbench:t-1"
    assert row["charges"] == ["盗窃"]
    assert row["ruleset_version"].startswith("liangxing-guideline-")
    assert row["low_months"] < row["point_months"] < row["high_months"]
    assert any(step["stage"] == "starting_point" for step in row["steps"])


def test_guideline_text(lawbench_file: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["guideline", "-f", "lawbench", "--text", str(lawbench_file)]) == 0
    out = capsys.readouterr().out
    assert "# lawbench:t-1" in out and "量刑起点" in out and "规则集版本" in out


def test_guideline_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["guideline", "-f", "lawbench", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert run(["guideline", "-f", "nosuchformat", str(tmp_path)]) == 2
    assert "--format" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "question": "no facts here", "answer": "刑期:8个月"}\n', encoding="utf-8")
    assert run(["guideline", "-f", "lawbench", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl:1" in err and "question" in err
    broken = tmp_path / "rules.toml"
    broken.write_text("version = ", encoding="utf-8")
    assert run(["guideline", "-f", "lawbench", "--ruleset", str(broken), str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_charges_lists_and_resolves(capsys: pytest.CaptureFixture) -> None:
    assert run(["charges", "贩卖毒品", "盗窃罪"]) == 0
    out = capsys.readouterr().out
    assert "→ 走私、贩卖、运输、制造毒品" in out and "→ 盗窃" in out
    assert run(["charges", "外星人入侵"]) == 1
    assert run(["charges"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("\n") > 200


def test_charges_derive(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    articles = tmp_path / "articles.jsonl"
    text = (
        "抢劫公私财物的，处三年以上十年以下有期徒刑，并处罚金；"
        "有下列情形之一的，处十年以上有期徒刑、无期徒刑或者死刑，并处罚金或者没收财产。"
    )
    articles.write_text(json.dumps({"text_id": "263", "name": "中华人民共和国刑法第二百六十三条", "text": text}) + "\n")
    assert run(["charges", "--derive", str(articles), "--article", "263"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    tiers = [(r["floor"], r["ceiling"], r["fine"]) for r in rows]
    assert tiers == [(36, 120, "mandatory"), (120, "death", "mandatory")]
    assert run(["charges", "--derive", str(articles), "--article", "999"]) == 1

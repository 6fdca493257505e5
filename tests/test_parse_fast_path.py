"""The bulk parse/import fast path: workers hand back finished JSON lines and store rows.

What is checked: the same output, byte for byte, as the one-process path (JSON lines, store rows and
content hashes); errors still name file, line and field; the store's import stays all or nothing
and idempotent when fed rows. Also the speed-ups inside the parser that replaced a regular
expression scan are checked against that scan.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sentencing import importers
from sentencing.case import Case, Defendant, Measure, Quantities
from sentencing.cli import main
from sentencing.importers import CaseFormatError, read_cases, read_encoded_parallel, write_json_lines
from sentencing.numerals import NumeralError, parse_number
from sentencing.parsing import document
from sentencing.parsing.mentions import with_first_char_filter
from sentencing.store import CaseRow, CaseStore, case_row

N_CASES = 300  # several worker jobs (chunks of lines) per file


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic JuDGE-format judgments (several defendants in some), with one malformed line inside."""
    from sentencing.demo_corpus.generate import write_corpus

    folder = tmp_path_factory.mktemp("fast")
    clean = folder / "clean.jsonl"
    write_corpus(clean, N_CASES, 11)
    lines = clean.read_text(encoding="utf-8").splitlines()
    lines.insert(270, '{"text_id": 5, "fd": 7}')  # line 271: fd is not a string
    path = folder / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT seq, id, content_hash, source, synthetic, province, date, primary_charge, defendants, body"
            " FROM cases ORDER BY seq"
        ).fetchall()


def test_parallel_json_lines_equal_the_serial_ones(corpus: Path) -> None:
    serial_errors: list[CaseFormatError] = []
    serial = [c.to_json_line() for c in read_cases("judge", [corpus], serial_errors)]
    errors: list[CaseFormatError] = []
    parallel = list(read_encoded_parallel("judge", [corpus], Case.to_json_line, errors, workers=2))
    assert parallel == serial and len(parallel) == N_CASES
    assert [(e.line, e.field) for e in errors] == [(e.line, e.field) for e in serial_errors] == [(271, "fd")]


@pytest.mark.parametrize("block_bytes", [1 << 12, 1 << 18])
def test_written_json_lines_equal_the_serial_ones(
    corpus: Path, block_bytes: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``sentencing parse``'s writer: blocks of joined lines from the workers, the same bytes as one process."""
    monkeypatch.setattr(importers, "_BLOCK_BYTES", block_bytes)  # 4 KB: a line or two per block
    serial = "".join(c.to_json_line() + "\n" for c in read_cases("judge", [corpus], [])).encode()
    errors: list[CaseFormatError] = []
    out = io.BytesIO()
    assert write_json_lines("judge", [corpus], out, errors, workers=2) == N_CASES
    assert out.getvalue() == serial
    assert [(e.line, e.field) for e in errors] == [(271, "fd")]
    with pytest.raises(CaseFormatError, match=":271: fd: "):
        write_json_lines("judge", [corpus], io.BytesIO(), workers=2)
    target = tmp_path / "out.jsonl"  # a real file: the kernel copies the spooled blocks (sendfile)
    with open(target, "wb") as fh:
        fh.write(b"# buffered before\n")
        assert write_json_lines("judge", [corpus], fh, [], workers=2) == N_CASES
        fh.write(b"# buffered after\n")
    assert target.read_bytes() == b"# buffered before\n" + serial + b"# buffered after\n"


def test_parallel_reading_raises_the_first_error_without_an_error_list(corpus: Path) -> None:
    with pytest.raises(CaseFormatError, match=rf"{re.escape(str(corpus))}:271: fd: expected a string"):
        list(read_encoded_parallel("judge", [corpus], case_row, workers=2))


def test_cli_parse_with_workers_prints_the_same_lines(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "-f", "judge", str(corpus)]) == 1
    serial = capsys.readouterr()
    assert main(["parse", "-f", "judge", "--workers", "2", str(corpus)]) == 1
    parallel = capsys.readouterr()
    assert parallel.out == serial.out and len(parallel.out.splitlines()) == N_CASES
    assert f"{corpus}:271: fd:" in parallel.err and parallel.err == serial.err


def test_parallel_import_stores_what_the_serial_import_stores(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serial_db, parallel_db = tmp_path / "serial.sqlite", tmp_path / "parallel.sqlite"
    parallel = ["import", "-f", "judge", str(corpus), "--store", str(parallel_db), "--keep-going", "--workers", "2"]
    assert main(["import", "-f", "judge", str(corpus), "--store", str(serial_db), "--keep-going"]) == 1
    assert main(parallel) == 1
    out = capsys.readouterr()
    assert out.out.count(f"added {N_CASES}, updated 0") == 2
    assert out.err.count(f"{corpus}:271: fd:") == 2
    rows = _rows(parallel_db)
    assert rows == _rows(serial_db) and len(rows) == N_CASES
    # The hash a worker computed is the case's own content hash.
    cases = list(read_cases("judge", [corpus], []))
    assert [r[2] for r in rows] == [c.content_hash() for c in cases]
    with CaseStore(parallel_db) as store:
        assert store.get(cases[5].id) == cases[5]
    # Importing again is idempotent: every row is a duplicate.
    assert main(parallel) == 1
    assert f"added 0, updated 0, duplicates skipped {N_CASES}" in capsys.readouterr().out
    assert _rows(parallel_db) == rows


def test_a_malformed_line_in_a_parallel_import_stores_nothing(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cases.sqlite"
    with CaseStore(db) as store:
        store.add([Case(id="kept:1", facts="之前已有的案件")])
    assert main(["import", "-f", "judge", str(corpus), "--store", str(db), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert f"error: {corpus}:271: fd: expected a string, got int" in err and "nothing stored" in err
    with CaseStore(db) as store:
        assert list(store.ids()) == ["kept:1"]


def test_store_takes_rows_as_it_takes_cases(tmp_path: Path) -> None:
    a, b = Case(id="x:1", facts="被告人张某盗窃。"), Case(id="x:2", facts="被告人李某诈骗。", province="JS")
    with CaseStore(tmp_path / "s.sqlite") as store:
        report = store.add([case_row(a), b])
        assert (report.added, report.unchanged) == (2, 0)
        assert store.add([a, case_row(b)]).unchanged == 2  # a row and its case have one hash
        changed = a.model_copy(update={"facts": "被告人张某盗窃，系累犯。"})
        assert store.add([case_row(changed)]).updated == 1
        assert store.get("x:1") == changed and store.get("x:2") == b
        with pytest.raises(TypeError, match="Case objects or CaseRow rows, got dict"):
            store.add([case_row(Case(id="x:3")), {"id": "x:4"}])  # type: ignore[list-item]
        assert store.get("x:3") is None  # all or nothing

        def failing():
            yield case_row(Case(id="x:5"))
            raise CaseFormatError("f.jsonl", 9, "fd", "broken")

        with pytest.raises(CaseFormatError):
            store.add(failing())
        assert store.count() == 2
    row = case_row(b)
    assert isinstance(row, CaseRow) and row.content_hash == b.content_hash()
    assert (row.province, row.synthetic, row.defendants) == ("JS", 0, 0)


# --------------------------------------------------------------------------- parser speed-ups


def test_number_cache_still_raises_every_time() -> None:
    for _ in range(2):
        with pytest.raises(NumeralError):
            parse_number("三点")
    assert parse_number("一万五千") == parse_number("一万五千") == 15000.0


_DATE_ALPHABET = "0123456789〇○零一二三四五六七八九十年月日，。本院认为 ：:\n甲乙"


def _dates_by_scanning(text: str, start: int, end: int) -> list[tuple[int, int, tuple[int, int, int]]]:
    """The dates as the date pattern finds them scanning every position (the reference)."""
    out = []
    for m in document._DATE.finditer(text, start, end):
        try:
            y, mo, d = (int(g) if g.isascii() else document.parse_int(g) for g in m.group("y", "m", "d"))
        except ValueError:
            continue
        if 1900 <= y <= 2100 and 1 <= mo <= 12 and 1 <= d <= 31:
            out.append((m.start(), m.end(), (y, mo, d)))
    return out


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_DATE_ALPHABET, max_size=80), st.integers(0, 90), st.integers(0, 90))
def test_find_dates_matches_a_scan_of_every_position(text: str, start: int, end: int) -> None:
    text = text.replace("甲", "2017年4月28日").replace("乙", "二〇一七年六月二十八日")
    assert list(document.find_dates(text, start, end)) == _dates_by_scanning(text, start, end)
    assert list(document.find_dates(text)) == _dates_by_scanning(text, 0, len(text))


def test_find_dates_reads_both_numeral_styles() -> None:
    text = "被告人于2017年4月28日出生，二〇一八年十月九日判决，2018年13月1日不是日期。"
    assert [d for _, _, d in document.find_dates(text)] == [(2017, 4, 28), (2018, 10, 9)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="本院认为。：: \n\u3000x", max_size=40), st.integers(0, 45))
def test_reasoning_start_matches_its_pattern(text: str, before: int) -> None:
    pattern = re.compile(r"(?:^|[\s。：:])(?P<marker>本院认为)")
    m = pattern.search(text, 0, before)
    assert document._reasoning_start(text, before) == (m.start("marker") if m else -1)


_FILTER_ALPHABET = "辩护意见人提出认为称上诉被告共计合数额自首动主投案坦白如实供述重大立功前科核，。x"
_FILTERED = [
    r"辩护意见|辩护人(?:提出|认为|称)|辩称|上诉称|被告人[^，,。]{0,8}提出",  # literal first: left as it is
    r"(?:共计|合计|数额)[^，,。]{0,8}$",
    r"(?P<a>自首|(?:自动|主动)[^。]{0,4}投案)|(?P<b>坦白|如实供述)",  # groups first: behind a lookahead
    r"(?<!重大)立功|前科(?!核实)",
]


@pytest.mark.parametrize("pattern", _FILTERED)
@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=_FILTER_ALPHABET, max_size=40))
def test_first_char_filter_finds_what_the_plain_pattern_finds(pattern: str, text: str) -> None:
    plain, filtered = re.compile(pattern), with_first_char_filter(pattern)
    assert [(m.span(), m.lastgroup) for m in filtered.finditer(text)] == [
        (m.span(), m.lastgroup) for m in plain.finditer(text)
    ]


_LINE_PIECES = st.lists(
    st.tuples(
        st.text(alphabet=st.sampled_from(list('ab 中文{}":\t\u2028\x0b')), max_size=12),
        st.sampled_from(["\n", "\r\n", "\r"]),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(pieces=_LINE_PIECES, tail=st.text(alphabet="ab中", max_size=3), bom=st.booleans(), block=st.integers(1, 9))
def test_byte_blocks_give_the_lines_and_numbers_of_text_mode(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[tuple[str, str]], tail: str, bom: bool, block: int
) -> None:
    """Workers read their own byte ranges: together they must see what one text-mode reader sees."""
    path = tmp_path_factory.mktemp("blocks") / "f.jsonl"
    path.write_bytes(("\ufeff" if bom else "").encode() + ("".join(a + b for a, b in pieces) + tail).encode())
    expected = list(importers._lines(path))
    old = importers._BLOCK_BYTES
    importers._BLOCK_BYTES = block  # several blocks per line, a line per block, lines longer than a block
    try:
        got = [line for b in importers._blocks([path]) for line in b.lines()]
    finally:
        importers._BLOCK_BYTES = old
    assert got == expected


def _reference_json_line(case: Case) -> str:
    return json.dumps(case.model_dump(mode="json", exclude_none=True), ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=4),
    facts=st.text(max_size=30) | st.just("\ud800 a lone surrogate"),
)
@example(values=[1e-05, float("nan")], facts="\ud800")
def test_json_line_is_the_canonical_dump(values: list[float], facts: str) -> None:
    """``to_json_line`` takes pydantic's serialiser where it writes what ``json.dumps`` writes, and only there."""
    quantities = Quantities(
        amount_yuan=Measure(value=values[0]),
        drug_grams={f"d{i}": Measure(value=v) for i, v in enumerate(values[1:])},
    )
    case = Case(id="c", facts=facts, defendants=[Defendant(name="甲", quantities=quantities)])
    assert case.to_json_line() == _reference_json_line(case)
    assert case.to_json_bytes() == (_reference_json_line(case) + "\n").encode("utf-8", "backslashreplace")


def test_spooled_blocks_stay_few_when_the_reader_is_slow(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers run at most a few jobs ahead: a slow reader (a pipe) never fills the spool (/dev/shm)."""
    import time

    monkeypatch.setattr(importers, "_BLOCK_BYTES", 1 << 12)  # about one judgment per job: hundreds of jobs
    root = Path(importers._spool_root() or tempfile.gettempdir())

    class SlowReader(io.RawIOBase):
        most = 0

        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            spooled = sum(1 for d in root.glob("liangxing-parse-*") for _ in d.iterdir())
            SlowReader.most = max(SlowReader.most, spooled)
            time.sleep(0.002)
            return len(data)

    assert write_json_lines("judge", [corpus], SlowReader(), [], workers=2) == N_CASES
    assert 0 < SlowReader.most <= importers._JOBS_AHEAD * 2 + 2  # the jobs handed out, not the whole file

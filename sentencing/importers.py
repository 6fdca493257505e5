"""Importers: judgment corpora in their published formats → :class:`~sentencing.case.Case`.

Formats: ``judge`` (JuDGE judgments.jsonl, also the synthetic demo corpus), ``lawbench`` (LawBench
term prediction), ``cail2018`` (CAIL2018 JSON lines) and ``cases`` (this project's own
``Case.to_json_line()``). Each reads one file lazily, one case per line; a malformed line raises
:class:`CaseFormatError` naming the file, the line and the field (or is collected, with ``errors``).
Case ids are stable: ``judge:<text_id>``, ``lawbench:<id>``, ``cail2018:<hash of the line>``.
Bulk reading spreads the parsing over processes (:func:`read_encoded_parallel`), each handing back
what the consumer writes (a JSON line, a store row) rather than the Case object.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from pydantic import ValidationError

from sentencing.case import Case, Charge, Defendant
from sentencing.parsing import extract_defendant_facts, parse_judgment_document, strip_recommendation
from sentencing.sentence import Sentence, SentenceKind, sentence_from_term_months


class CaseFormatError(ValueError):
    """A line that is not a case in the expected format."""

    def __init__(self, path: Path | str, line: int, field: str, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}:{line}: {field}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, int, str, str]]:
        # Crosses process boundaries (read_cases_parallel): rebuild from the four fields.
        return (CaseFormatError, (self.path, self.line, self.field, self.problem))


Importer = Callable[..., Iterator[Case]]
T = TypeVar("T")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8-sig") as fh:
        yield from _numbered(fh, 1)


def _numbered(lines: Iterable[str], first: int) -> Iterator[tuple[int, str]]:
    """The non-blank lines with their line numbers, counting from ``first``."""
    for number, line in enumerate(lines, first):
        if line.strip():
            yield number, line


def _json(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CaseFormatError(path, number, "<line>", f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise CaseFormatError(path, number, "<line>", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], path: Path, number: int) -> Any:
    if name not in obj or obj[name] is None:
        raise CaseFormatError(path, number, name, "missing")
    value = obj[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        expected = getattr(kind, "__name__", kind)
        raise CaseFormatError(path, number, name, f"expected {expected}, got {type(value).__name__}")
    return value


def _each(
    path: Path | str, parse: Callable[[Path, int, str], Case], errors: list[CaseFormatError] | None
) -> Iterator[Case]:
    path = Path(path)
    for number, line in _lines(path):
        try:
            yield parse(path, number, line)
        except CaseFormatError as exc:
            if errors is None:
                raise
            errors.append(exc)
        except (ValidationError, ValueError) as exc:
            err = CaseFormatError(path, number, _validation_field(exc), _first_line(exc))
            if errors is None:
                raise err from exc
            errors.append(err)


def _validation_field(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        return ".".join(str(p) for p in exc.errors()[0]["loc"]) or "<case>"
    return "<case>"


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        return exc.errors()[0]["msg"]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --------------------------------------------------------------------------- judge


def _judge_line(path: Path, number: int, line: str) -> Case:
    obj = _json(path, number, line)
    text_id = _field(obj, "text_id", (str, int), path, number)
    if not str(text_id).strip():
        raise CaseFormatError(path, number, "text_id", "empty")
    synthetic = obj.get("synthetic", False)
    if not isinstance(synthetic, bool):
        raise CaseFormatError(path, number, "synthetic", "expected true or false")
    source = "synthetic" if synthetic else "judge"
    case_id = f"{source}:{text_id}"
    fd = obj.get("fd")
    if fd is not None and not isinstance(fd, str):
        raise CaseFormatError(path, number, "fd", f"expected a string, got {type(fd).__name__}")
    if fd and fd.strip():
        return parse_judgment_document(fd, case_id=case_id, source=source, synthetic=synthetic)
    text = _field(obj, "text", str, path, number)
    if not text.strip():
        raise CaseFormatError(path, number, "text", "neither fd nor text has content")
    case = Case(id=case_id, source=source, synthetic=synthetic, facts=strip_recommendation(text))
    return extract_defendant_facts(case)


def iter_judge(path: Path | str, errors: list[CaseFormatError] | None = None) -> Iterator[Case]:
    """JuDGE ``judgments.jsonl``: ``text_id``, ``text`` (facts), ``la`` (articles), ``fd`` (full document)."""
    return _each(path, _judge_line, errors)


# --------------------------------------------------------------------------- lawbench

_LAWBENCH_Q = re.compile(
    r"^\s*事实[:：](?P<facts>.*)罪名[:：](?P<charges>[^\n]*?)[。.]?\s*法条[:：](?P<articles>.*)$", re.S
)
_LAWBENCH_A = re.compile(r"^\s*刑期[:：]\s*(?:(?P<months>\d+)\s*个?月|(?P<life>无期(?:徒刑)?)|(?P<death>死刑))\s*$")
# Names in these data sets are mostly masked (``颜某``, ``张某某``, ``王某甲``, ``朱×``).
_MASKED_NAME = re.compile(r"被告人(?![犯的])(?P<name>[\u4e00-\u9fff]{1,2}?[0-9]?(?:某某|某|×+|X+)[甲乙丙丁戊0-9]?)")
_DEFENDANT_NAME = re.compile(
    r"被告人(?![犯的])(?P<name>[^\s，,。、；;：:（(]{1,6}?)(?=[，,。、；;：:（(在于因为伙同将从向以与和到驾明等趁先后多次共]|$)"
)


# These data sets' name masking also caught the 元 of 万元 (``索取刘某20万某``, ``38万某用于…``: 463 times in
# 23 of LawBench's 349 records). After a digit, 万某 is no name: it is read as 万元 again.
_MASKED_WAN = re.compile(r"(?<=[0-9０-９一二三四五六七八九十])(余|多)?万某(?!某)")


def _unmask_amounts(facts: str) -> str:
    return _MASKED_WAN.sub(lambda m: f"{m.group(1) or ''}万元", facts) if "万某" in facts else facts


def _lawbench_line(path: Path, number: int, line: str) -> Case:
    obj = _json(path, number, line)
    record_id = _field(obj, "id", (str, int), path, number)
    question = _field(obj, "question", str, path, number)
    answer = _field(obj, "answer", str, path, number)
    q = _LAWBENCH_Q.match(question)
    if not q:
        raise CaseFormatError(path, number, "question", "expected '事实:<facts>\\r\\n罪名:<charge>。法条:<articles>'")
    a = _LAWBENCH_A.match(answer)
    if not a:
        raise CaseFormatError(path, number, "answer", f"expected '刑期:N个月', got {answer[:30]!r}")
    if a.group("months") is not None:
        sentence = sentence_from_term_months(int(a.group("months")))
    elif a.group("life"):
        sentence = Sentence(kind=SentenceKind.LIFE)
    else:
        sentence = Sentence(kind=SentenceKind.DEATH)
    facts = _unmask_amounts(strip_recommendation(q.group("facts").strip()))
    # Several charges are separated by ";"; "、" belongs inside a charge's name (生产、销售不符合安全标准的食品).
    names = re.split(r"[;；]", q.group("charges"))
    charges = [Charge(name=c.strip().removesuffix("罪")) for c in names if c.strip()]
    m = _MASKED_NAME.search(facts) or _DEFENDANT_NAME.search(facts)
    name = m.group("name") if m else "被告人"
    case = Case(
        id=f"lawbench:{record_id}",
        source="lawbench",
        facts=facts,
        defendants=[Defendant(name=name, charges=charges, sentence=sentence)],
    )
    return extract_defendant_facts(case)


def iter_lawbench(path: Path | str, errors: list[CaseFormatError] | None = None) -> Iterator[Case]:
    """LawBench term prediction: one defendant, region masked (province ``None``)."""
    return _each(path, _lawbench_line, errors)


# --------------------------------------------------------------------------- cail2018


def _cail_sentence(meta: dict[str, Any], path: Path, number: int) -> Sentence:
    term = meta.get("term_of_imprisonment")
    if not isinstance(term, dict):
        raise CaseFormatError(path, number, "meta.term_of_imprisonment", "missing or not an object")
    money = meta.get("punish_of_money", 0) or 0
    if not isinstance(money, int | float) or isinstance(money, bool) or money < 0:
        raise CaseFormatError(path, number, "meta.punish_of_money", "expected a non-negative number")
    fine = round(money) if money else None
    if term.get("death_penalty") is True:
        return Sentence(kind=SentenceKind.DEATH, fine_yuan=fine)
    if term.get("life_imprisonment") is True:
        return Sentence(kind=SentenceKind.LIFE, fine_yuan=fine)
    months = term.get("imprisonment")
    if not isinstance(months, int) or isinstance(months, bool) or months < 0:
        field = "meta.term_of_imprisonment.imprisonment"
        raise CaseFormatError(path, number, field, "expected months (an integer ≥ 0)")
    if months == 0:
        return Sentence(kind=SentenceKind.FINE_ONLY if fine else SentenceKind.EXEMPT, fine_yuan=fine)
    base = sentence_from_term_months(months)
    return Sentence(kind=base.kind, months=base.months, fine_yuan=fine)


def _cail_line(path: Path, number: int, line: str) -> Case:
    obj = _json(path, number, line)
    fact = _field(obj, "fact", str, path, number)
    meta = _field(obj, "meta", dict, path, number)
    accusations = _field(meta, "accusation", list, path, number) if "accusation" in meta else None
    if accusations is None:
        raise CaseFormatError(path, number, "meta.accusation", "missing")
    criminals = meta.get("criminals")
    if not isinstance(criminals, list) or not criminals or not all(isinstance(c, str) and c.strip() for c in criminals):
        raise CaseFormatError(path, number, "meta.criminals", "expected a non-empty list of names")
    if len(criminals) > 1:
        raise CaseFormatError(path, number, "meta.criminals", f"{len(criminals)} defendants but one term label")
    sentence = _cail_sentence(meta, path, number)
    charges = []
    for a in accusations:
        if not isinstance(a, str) or not a.strip("[] "):
            raise CaseFormatError(path, number, "meta.accusation", f"not a charge name: {a!r}")
        charges.append(Charge(name=a.strip("[] ").removesuffix("罪")))
    digest = hashlib.sha256(line.strip().encode()).hexdigest()[:20]
    case = Case(
        id=f"cail2018:{digest}",
        source="cail2018",
        facts=_unmask_amounts(strip_recommendation(fact.strip())),
        defendants=[Defendant(name=criminals[0].strip(), charges=charges, sentence=sentence)],
    )
    return extract_defendant_facts(case)


def iter_cail2018(path: Path | str, errors: list[CaseFormatError] | None = None) -> Iterator[Case]:
    """CAIL2018 JSON lines (``fact`` and ``meta``); the id is a hash of the line."""
    return _each(path, _cail_line, errors)


# --------------------------------------------------------------------------- cases


def _cases_line(path: Path, number: int, line: str) -> Case:
    try:
        return Case.model_validate_json(line)
    except ValidationError as exc:
        raise CaseFormatError(path, number, _validation_field(exc), _first_line(exc)) from None


def iter_project_cases(path: Path | str, errors: list[CaseFormatError] | None = None) -> Iterator[Case]:
    """This project's own JSON lines (``Case.to_json_line()``)."""
    return _each(path, _cases_line, errors)


_LINE_PARSERS: dict[str, Callable[[Path, int, str], Case]] = {
    "judge": _judge_line,
    "lawbench": _lawbench_line,
    "cail2018": _cail_line,
    "cases": _cases_line,
}

IMPORTERS: dict[str, Importer] = {
    "judge": iter_judge,
    "lawbench": iter_lawbench,
    "cail2018": iter_cail2018,
    "cases": iter_project_cases,
}


def read_cases(
    fmt: str, paths: Iterable[Path | str], errors: list[CaseFormatError] | None = None
) -> Iterator[Case]:
    """Cases from files of one format, in order; with ``errors``, bad lines are collected, not raised."""
    try:
        importer = IMPORTERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(IMPORTERS)}") from None
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
        yield from importer(path, errors)


# --------------------------------------------------------------------------- parallel reading

def _parse_chunk(job: tuple[str, str, list[tuple[int, str]]]) -> list[Case | CaseFormatError]:
    fmt, path, lines = job
    parse = _LINE_PARSERS[fmt]
    file = Path(path)
    out: list[Case | CaseFormatError] = []
    for number, line in lines:
        try:
            out.append(parse(file, number, line))
        except CaseFormatError as exc:
            out.append(exc)
        except (ValidationError, ValueError) as exc:
            out.append(CaseFormatError(path, number, _validation_field(exc), _first_line(exc)))
    return out


def _encode_block(job: tuple[str, _FileBlock, Callable[[Case], T] | None]) -> list[T | CaseFormatError]:
    """The block's lines parsed, then ``encode`` on each case, in the worker (``None``: the cases themselves)."""
    fmt, block, encode = job
    parsed = _parse_chunk((fmt, block.path, list(block.lines())))
    if encode is None:
        return parsed  # type: ignore[return-value]
    return [item if isinstance(item, CaseFormatError) else encode(item) for item in parsed]


_BLOCK_BYTES = 1 << 20  # bytes per worker job (≈ 240 synthetic judgments): few jobs, none long at the end


@dataclass(frozen=True, slots=True)
class _FileBlock:
    """Whole lines of a file, by byte range: the worker reads and decodes them itself.

    Sending the decoded lines through the pool's pipe cost this process about a tenth of all the
    CPU of a parallel parse (issue #2); a byte range costs nothing to send.
    """

    path: str
    start: int
    end: int
    first_line: int

    def lines(self) -> Iterator[tuple[int, str]]:
        """As :func:`_lines` yields them for the same part of the file (numbers, BOM, universal newlines)."""
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            data = fh.read(self.end - self.start)
        encoding = "utf-8-sig" if self.start == 0 else "utf-8"
        yield from _numbered(io.TextIOWrapper(io.BytesIO(data), encoding=encoding), self.first_line)


def _line_breaks(data: bytes, end: int) -> int:
    """Lines ended in ``data[:end]`` as text mode counts them: ``\\n``, ``\\r\\n`` and a lone ``\\r``."""
    breaks = data.count(b"\n", 0, end)
    if data.find(b"\r", 0, end) >= 0:  # rare: a one-byte search spares the slower two-byte count
        breaks += data.count(b"\r", 0, end) - data.count(b"\r\n", 0, end)
    return breaks


def _blocks(paths: Iterable[Path | str]) -> Iterator[_FileBlock]:
    """Each file cut into blocks of whole lines, each ending just after a ``\\n`` (or at the end of the file)."""
    for path in paths:
        with open(path, "rb") as fh:
            start, line, pending = 0, 1, b""
            while True:
                chunk = fh.read(_BLOCK_BYTES)
                data = pending + chunk
                cut = data.rfind(b"\n") + 1 if chunk else len(data)
                if cut:
                    yield _FileBlock(str(path), start, start + cut, line)
                    line += _line_breaks(data, cut)
                    start += cut
                pending = data[cut:]
                if not chunk:
                    break


def read_cases_parallel(
    fmt: str, paths: Iterable[Path | str], errors: list[CaseFormatError] | None = None, *, workers: int = 2
) -> Iterator[Case]:
    """:func:`read_cases` with the parsing spread over ``workers`` processes, cases in file order.

    Sending a :class:`Case` back costs about 120 µs to pickle in the worker and 360 µs for pydantic
    to rebuild it here (issue #2), so this process becomes the bottleneck: bulk consumers that only
    write the case out should use :func:`read_encoded_parallel`.
    """
    return read_encoded_parallel(fmt, paths, None, errors, workers=workers)


def read_encoded_parallel(
    fmt: str,
    paths: Iterable[Path | str],
    encode: Callable[[Case], T] | None,
    errors: list[CaseFormatError] | None = None,
    *,
    workers: int = 2,
) -> Iterator[T]:
    """``encode(case)`` for every case of the files, in file order, parsed and encoded by ``workers`` processes.

    The worker hands back what the consumer writes (``Case.to_json_line`` for ``sentencing parse``,
    :func:`sentencing.store.case_row` for the store), already serialised: cheap to send, and this
    process is left free to write. ``encode`` must be a module-level function (it is pickled by
    name). ``encode=None`` yields the cases themselves. Errors are as for :func:`read_cases`.
    """
    paths = _checked(fmt, paths)
    if workers <= 1:
        for case in read_cases(fmt, paths, errors):
            yield case if encode is None else encode(case)  # type: ignore[misc]
        return
    for results in _in_workers(_encode_block, ((fmt, block, encode) for block in _blocks(paths)), workers):
        for item in results:
            if isinstance(item, CaseFormatError):
                _report(item, errors)
            else:
                yield item


def write_json_lines(
    fmt: str,
    paths: Iterable[Path | str],
    out: BinaryIO,
    errors: list[CaseFormatError] | None = None,
    *,
    workers: int = 2,
) -> int:
    """Every case of the files as its canonical JSON line (:meth:`Case.to_json_bytes`) on ``out``, in file order.

    What ``sentencing parse`` does. Each worker writes a block's lines to a spool file (in
    ``/dev/shm`` where there is one) and the kernel copies it on to ``out``: passing the lines back
    through the pool cost this process about a tenth of all the CPU of the parse (issue #2).
    Returns the number of cases written; errors are as for :func:`read_cases`.
    """
    paths = _checked(fmt, paths)
    written = 0
    if workers <= 1:
        for case in read_cases(fmt, paths, errors):
            out.write(case.to_json_bytes())
            written += 1
        return written
    with tempfile.TemporaryDirectory(prefix="liangxing-parse-", dir=_spool_root()) as spool:
        jobs = ((fmt, block, os.path.join(spool, str(k))) for k, block in enumerate(_blocks(paths)))
        for results in _in_workers(_json_block, jobs, workers):
            for item in results:
                if isinstance(item, CaseFormatError):
                    _report(item, errors)
                else:
                    lines, spooled = item
                    _move_to(spooled, out)
                    written += lines
    return written


def _json_block(job: tuple[str, _FileBlock, str]) -> list[tuple[int, str] | CaseFormatError]:
    """A block's JSON lines spooled to files, one per run of lines between two errors: (lines, file)."""
    fmt, block, spool = job
    out: list[tuple[int, str] | CaseFormatError] = []
    run: list[bytes] = []

    def flush() -> None:
        path = f"{spool}-{len(out)}"
        with open(path, "wb") as fh:
            fh.write(b"".join(run))
        out.append((len(run), path))
        run.clear()

    for item in _encode_block((fmt, block, Case.to_json_bytes)):
        if isinstance(item, CaseFormatError):
            if run:
                flush()
            out.append(item)
        else:
            run.append(item)
    if run:
        flush()
    return out


def _spool_root() -> str | None:
    """``/dev/shm`` (memory) when this system has it, else the default temporary folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _move_to(path: str, out: BinaryIO) -> None:
    """The file appended to ``out`` (by the kernel when ``out`` is a real file or pipe), then removed."""
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        try:
            fd = out.fileno()
        except (AttributeError, OSError):  # io.UnsupportedOperation is an OSError
            fd = -1
        sent = 0
        if fd >= 0:
            out.flush()  # what was written through ``out`` comes first
            try:
                while sent < size:
                    step = os.sendfile(fd, src.fileno(), sent, size - sent)
                    if step == 0:
                        break
                    sent += step
            except OSError:  # an output sendfile cannot write to: copy the rest
                pass
        if sent < size:
            src.seek(sent)
            out.write(src.read())
    os.unlink(path)


_JOBS_AHEAD = 4
"""Jobs per worker handed out before their results are taken: enough to keep every worker busy,
few enough that finished blocks waiting for a slow reader (a pipe) stay a few MB, in memory or in
the spool (``/dev/shm`` is 64 MB in a default container)."""


def _in_workers(work: Callable[[Any], list[Any]], jobs: Iterator[Any], workers: int) -> Iterator[list[Any]]:
    """``work(job)`` for every job in ``workers`` processes, results in job order, at most
    ``_JOBS_AHEAD`` jobs per worker ahead of the consumer."""
    import multiprocessing

    context = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    with context.Pool(workers) as pool:
        pending: deque[Any] = deque()
        for job in jobs:
            pending.append(pool.apply_async(work, (job,)))
            if len(pending) >= _JOBS_AHEAD * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _report(error: CaseFormatError, errors: list[CaseFormatError] | None) -> None:
    if errors is None:
        raise error
    errors.append(error)


def _checked(fmt: str, paths: Iterable[Path | str]) -> list[Path | str]:
    if fmt not in _LINE_PARSERS:
        raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(IMPORTERS)}")
    paths = list(paths)
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
    return paths

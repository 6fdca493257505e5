"""Parsers of real judgment text: sections, court, defendants, sentences, circumstances, quantities.

Public entry points: :func:`parse_judgment_document` (full judgment → Case),
:func:`extract_defendant_facts` (fill circumstances/quantities/roles from a case's texts) and
:func:`strip_recommendation` (remove the prosecutor's recommended sentence from model input).
"""

from sentencing.parsing.extract import extract_defendant_facts
from sentencing.parsing.judgment_document import parse_judgment_document, strip_sentence_statements
from sentencing.parsing.recommendation import strip_recommendation

__all__ = ["extract_defendant_facts", "parse_judgment_document", "strip_recommendation", "strip_sentence_statements"]

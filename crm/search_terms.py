"""Chinese text as search terms: overlapping character pairs, the same on both databases.

Supervisors look for two-character words (漏水, 电梯, 停电) in transcripts that have no
spaces between words. Neither database's own tokenizing finds them: SQLite's FTS5
trigram tokenizer matches nothing shorter than three characters, and PostgreSQL's
parsers (and pg_trgm) know no Chinese word boundaries and depend on the server's locale.
So the text is cut into terms here, in Python, once for both; the databases only store
and intersect the terms (FTS5 with unicode61 over the terms joined by spaces;
PostgreSQL a ``tsvector`` written as a literal, so no parser or locale is involved).

A run of Han characters becomes its overlapping pairs plus its last character alone
(漏水了 → 漏水 水了 了), so every character starts some term: a one-character query is a
prefix search over them and misses nothing. Spaces inside a run of Han do not break it
(ASR output and typed notes scatter them); punctuation does. Latin words and digit runs
are terms of their own, lower-cased, and letters and digits are always split
(3栋201 → 3 栋 201, B2 → b 2), so no query can produce a term mixing the two: such terms
are free to mark the boundary between two lines (``BOUNDARY``), which keeps a phrase from
matching across turns. Everything is NFKC-normalised first (full-width ３ is 3, Ａ is a).

A query is cut the same way into a phrase (terms in order, adjacent). Its last Han run
gives only its pairs, since the text may go on after it, unless the run is one
character, which becomes a prefix; a Han run followed by more of the query also gives
its last character, as the text's run ended there too.

A change to these rules changes what is stored: it needs a migration that rebuilds the
index (crm/search_index.py ``rebuild``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

# Between two lines (turns, a case's summary and notes): letters and digits together, so
# no query term can equal it.
BOUNDARY = "x0x"

_HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U000323af"
# On normalised text: a run of Han (spaces inside it skipped), of ASCII digits, or of
# other letters and digits (Latin, Cyrillic, kana ...). Anything else separates runs.
_RUN = re.compile(rf"(?P<han>[{_HAN}](?:\s*[{_HAN}])*)|(?P<digits>[0-9]+)|[^\W0-9_{_HAN}]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Term:
    """A term and the characters of the original text it stands for, [start, end)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Phrase:
    """A query as terms in order; ``prefix``: the last term matches any term it starts."""

    terms: tuple[str, ...]
    prefix: bool


@functools.lru_cache(maxsize=65536)
def _normal(char: str) -> str:
    """One character after NFKC and lower-casing (full-width ３ → 3, Ａ → a, ① → 1).

    Normalised a character at a time, so that every character of the result points
    back into the original text (a mark on 1 marks ①); both the index and the marks
    go through here, so they cannot disagree.
    """
    return unicodedata.normalize("NFKC", char).lower()


def _normalised(text: str) -> tuple[str, list[int]]:
    """The normalised text and, per character of it, the index it came from."""
    parts = [_normal(c) for c in text]
    origin = [i for i, part in enumerate(parts) for _ in part]
    return "".join(parts), origin


def _run_terms(match: re.Match[str]) -> Iterator[tuple[str, int, int]]:
    """A run's terms with [start, end) in the normalised text."""
    run = match.group()
    start = match.start()
    if match.lastgroup != "han":
        yield run, start, match.end()
        return
    at = [start + i for i, c in enumerate(run) if not c.isspace()]
    chars = [run[i - start] for i in at]
    for i in range(len(chars) - 1):
        yield chars[i] + chars[i + 1], at[i], at[i + 1] + 1
    yield chars[-1], at[-1], at[-1] + 1


def _line_terms(normal: str) -> list[str]:
    """The terms of a normalised line, without their places (the fast path of the index)."""
    out: list[str] = []
    for match in _RUN.finditer(normal):
        run = match.group()
        if match.lastgroup != "han":
            out.append(run)
            continue
        chars = _SPACE.sub("", run)
        out.extend([chars[i : i + 2] for i in range(len(chars) - 1)])
        out.append(chars[-1])
    return out


@functools.lru_cache(maxsize=65536)
def _cached_terms(line: str) -> tuple[str, ...]:
    """Lines repeat (the greeting, 好的, 请稍等): each is cut once while it stays common."""
    return tuple(_line_terms("".join([_normal(c) for c in line])))


def terms(text: str) -> list[Term]:
    """The terms of one line of text, in order, with the original characters of each."""
    normal, origin = _normalised(text)
    return [
        Term(term, origin[start], origin[end - 1] + 1)
        for match in _RUN.finditer(normal)
        for term, start, end in _run_terms(match)
    ]


def document(lines: Iterable[str]) -> list[str]:
    """The terms of several lines as one document, ``BOUNDARY`` between lines."""
    out: list[str] = []
    for line in lines:
        line_terms = _cached_terms(line)
        if not line_terms:
            continue
        if out:
            out.append(BOUNDARY)
        out.extend(line_terms)
    return out


def phrase(query: str) -> Phrase:
    """The query as a phrase; no terms at all (only punctuation) gives an empty phrase."""
    normal, _ = _normalised(query)
    runs = list(_RUN.finditer(normal))
    out: list[str] = []
    prefix = False
    for position, match in enumerate(runs):
        last_run = position == len(runs) - 1
        found = [term for term, _, _ in _run_terms(match)]
        if match.lastgroup != "han":
            out.extend(found)
        elif len(found) == 1:  # one character
            out.extend(found)
            prefix = last_run
        else:
            out.extend(found if not last_run else found[:-1])
    return Phrase(tuple(out), prefix)


def marks(text: str, query: Phrase) -> list[tuple[int, int]]:
    """Where ``query`` occurs in ``text``: [start, end) character offsets, merged."""
    if not query.terms:
        return []
    line = terms(text)
    wanted = query.terms
    found: list[tuple[int, int]] = []
    for at in range(len(line) - len(wanted) + 1):
        window = line[at : at + len(wanted)]
        if not _same(window, wanted, query.prefix):
            continue
        end = window[-1].end
        if query.prefix and len(window[-1].text) > len(wanted[-1]):
            end = window[-1].start + len(wanted[-1])  # 水 in 水了: only the 水
        found.append((window[0].start, end))
    return _merged(found)


def _same(window: Sequence[Term], wanted: Sequence[str], prefix: bool) -> bool:
    *head, last = wanted
    if any(t.text != w for t, w in zip(window, head, strict=False)):
        return False
    final = window[-1].text
    return final.startswith(last) if prefix else final == last


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged

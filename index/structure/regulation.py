"""Laws and Party regulations: 第X编 > 第X章 > 第X节 are the heading path, the 条 is each paragraph's locator.

Shapes: three or more lines open with `第X条` and a gap (`第十条　国家……`), so a quoted 条 in an article never makes
one; or, where the gaps were lost upstream, five or more paragraphs open `第一条……` `第二条……` in order. Inside a regulation:
- `第X编/章/节` (and a bare `总则` / `附则` / `总纲` / `序言`, which stand where a 章 stands) are headings, at the
  level their word says; every other numbered line (`（一）`, `1.`, `一、`) is an item of its 条: text.
- A `第X条` line opens a paragraph and sets the locator of it and of every paragraph after it, up to the next 条
  or heading, so a long 条 cut into several chunks still cites its number. Once the genre is known, `第十条国家……`
  (the gap lost upstream) opens a 条 too.
- A table of contents is harmless: its `目录` line is dropped by the lines pass, its chapters are headings
  without text.
"""
from __future__ import annotations

import re
from dataclasses import replace

from index.structure.genre import Genre, SegmentView
from index.structure.records import Heading, L, Line
from index.structure.shapes import CLAUSE

_CHAPTER_WORDS = re.compile(r"^(?:总\s*则|附\s*则|总\s*纲|序\s*言|分\s*则)$")
MIN_CLAUSES = 3
MIN_GLUED = 5


class Regulation(Genre):
    name = "regulation"
    title_in_path = False

    def detect(self, view: SegmentView) -> bool:
        n = view.count(L.CLAUSE)
        if n < MIN_CLAUSES:
            n = _glued_run(view)
        return n >= MIN_CLAUSES and (not view.titled or n >= 3 * MIN_CLAUSES)   # an article may quote a few

    def heading(self, h: Heading, ln: Line) -> Heading | None:
        if h.family == "chapter" or (h.family == "md" and h.md_level):
            return h
        if h.family == "kw" and _CHAPTER_WORDS.match(h.text):
            return Heading(h.text, "chapter", 2, h.md_level)
        return None

    def reread(self, ln: Line) -> Line:
        if ln.kind is L.TEXT:
            t = ln.text
            if t[0] == "第" and (m := CLAUSE.match(t)):
                return replace(ln, kind=L.CLAUSE, locator=m.group())
            if len(t) <= 8 and _CHAPTER_WORDS.match(t):
                return replace(ln, kind=L.HEADING, heading=Heading(t, "chapter", 2))
            return ln
        return super().reread(ln)


REGULATION = Regulation()


def _glued_run(view: SegmentView) -> int:
    """Paragraphs that open `第一条……` `第二条……` … in order with no gap (spaces lost upstream): a run of
    `MIN_GLUED` or more counts as that many 条; fewer could be prose (`第一条经验是……`)."""
    expected, run = 1, 0
    for ln in view.lines:
        if ln.kind is L.TEXT and ln.text[:1] == "第" and (m := CLAUSE.match(ln.text)):
            if cn_number(m.group()[1:m.group().index("条")]) == expected:
                expected, run = expected + 1, run + 1
    return run if run >= MIN_GLUED else 0


_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}


def cn_number(text: str) -> int:
    """`一百一十二` -> 112, `十七` -> 17, `45` -> 45; -1 when `text` is not a number."""
    if text.isdigit():
        return int(text)
    total, digit = 0, None
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _UNITS:
            total += (1 if digit is None else digit) * _UNITS[ch]
            digit = None
        else:
            return -1
    return total + (digit or 0)


def locator_range(first: str, last: str) -> str:
    """`第十七条`, or `第十七条至第十九条` for a chunk of several 条."""
    if not first or not last or first == last:
        return first or last
    return f"{first}至{last}"

"""The lines pass: one `Line` per source line with a first guess at its `LineKind`, from the line alone; then the
guesses that need a neighbour (a closing wrapped over two lines, a caption's or DOI's wrapped tail, a heading wrapped over
two lines, a numbered line that turns out to be a wrapped sentence, a dated chronology).

Page furniture (navigation, metadata lines) is marked first by `index.structure.web`, so nothing below sees it.
"""
from __future__ import annotations

import re

from index.normalize import CJK, clean_line, ends_sentence, join_lines
from index.structure.records import Heading, L, Line
from index.structure.shapes import (
    ANY_PUNCT, CAPTION, CLAUSE, TOC, CLOSING, DATE_LINE, LABEL, LABELS, MAX_HEADING, NEWS_MARK, SENT_PUNCT, byline_of,
    heading_of, is_refs, run_in, strip_colon,
)
from index.structure.web import PageMeta, mark_page_lines


def classify(raw_lines: list[str]) -> tuple[list[Line], PageMeta]:
    lines = [Line(i + 1, raw, clean_line(raw)) for i, raw in enumerate(raw_lines)]
    page = mark_page_lines(lines)
    for ln in lines:
        t = ln.text
        if ln.kind is not L.TEXT:
            continue                       # furniture, already marked
        if not t:
            ln.kind = L.BLANK
        elif len(t) <= 24 and TOC.match(t):
            ln.kind = L.JUNK        # `目　　录`: the contents list's chapters are headings without text
        elif t[0] == "第" and (m := CLAUSE.match(t)):
            if len(t) == m.end() or t[m.end()].isspace():    # `第十条　国家……`, not `第一条路径是……`
                ln.kind, ln.locator = L.CLAUSE, m.group()
        elif CLOSING.match(t):
            ln.kind = L.CLOSING
        elif NEWS_MARK.match(t):
            ln.kind = L.NEWS_MARK
        elif m := LABEL.match(t):
            kind = next(k for k, _ in LABELS if m.group(k))
            ln.kind, ln.label, ln.rest = L.LABEL, kind, m.group("rest").strip()
        elif CAPTION.match(t) and len(t) <= 60 and not SENT_PUNCT.search(t):
            ln.kind = L.CAPTION
        elif h := heading_of(ln.raw, t):
            ln.kind, ln.heading = L.HEADING, h
        elif DATE_LINE.match(t):
            ln.kind = L.DATE
        elif byline_of(ln.raw):
            ln.kind = L.BYLINE
        elif h := run_in(t):
            ln.kind, ln.heading = L.RUNIN, h
    closing_tails(lines)
    caption_tails(lines)
    doi_tails(lines)
    refine_headings(lines)
    chronology(lines)
    return lines, page


def chronology(lines: list[Line]) -> None:
    """A page of dated entries (`2016年10月27日` / what happened) is one document: its date lines are headings.

    A lone date line closes a notice (`L.DATE`); three or more, each followed by text, are a chronology.
    """
    dated = [i for i, ln in enumerate(lines) if ln.kind is L.DATE]
    followed = [i for i in dated if (j := nonblank_after(lines, i)) is not None and lines[j].kind in L.TEXTUAL]
    if len(followed) >= 3:
        for i in dated:
            lines[i].kind, lines[i].heading = L.HEADING, Heading(lines[i].text, "date", 0)


_SILENT = (L.BLANK, L.JUNK)     # lines the passes look through


def nonblank_after(lines: list[Line], i: int) -> int | None:
    for j in range(i + 1, len(lines)):
        if lines[j].kind not in _SILENT:
            return j
    return None


def nonblank_before(lines: list[Line], i: int) -> int | None:
    for j in range(i - 1, -1, -1):
        if lines[j].kind not in _SILENT:
            return j
    return None


def closing_tails(lines: list[Line]) -> None:
    # `（作者单位：山西汾河焦煤` / `股份有限公司三交河煤矿）`: the closing line is wrapped until its bracket closes.
    for i, ln in enumerate(lines):
        if ln.kind != L.CLOSING or re.search(r"[）)]$", ln.text):
            continue
        j = i
        for _ in range(2):
            j = nonblank_after(lines, j)
            if j is None or lines[j].kind not in (L.TEXT, L.BLANK):
                break
            lines[j].kind = L.CLOSING
            if re.search(r"[）)]$", lines[j].text):
                break


DOI_TAIL = re.compile(r"^[0-9A-Za-z._\-/()<>;:]+$")


def doi_tails(lines: list[Line]) -> None:
    """`【DOI】 10.12252/j.issn.2096-` / `6288.2020.04.106`: a DOI wrapped by a column. The next line (no blank
    line between) is its rest when it is one unbroken DOI-character token and the DOI line ends where a DOI
    breaks (`-` `.` `/` `_`) or a blank line follows the token."""
    for i, ln in enumerate(lines[:-1]):
        if ln.kind is not L.LABEL or ln.label != "doi":
            continue
        tail = lines[i + 1]
        if tail.kind is not L.TEXT or not DOI_TAIL.match(tail.text) or LABEL.match(tail.text):
            continue
        if re.search(r"[-./_]$", ln.text) or i + 2 >= len(lines) or lines[i + 2].kind is L.BLANK:
            tail.kind, tail.label, tail.rest = L.LABEL, "doi", tail.text


def caption_tails(lines: list[Line]) -> None:
    """`图1 党建与生产经营协同推进机制运行流程` / `图`: a caption wrapped by a narrow column. Its tail is the next
    line with no blank line between, short (at most half the caption) and without a sentence in it, and a blank
    line, a non-text line or the end comes after it (so it is not the first line of the next paragraph)."""
    for i, ln in enumerate(lines[:-1]):
        if ln.kind != L.CAPTION or not CAPTION.match(ln.text):
            continue
        tail = lines[i + 1]
        if tail.kind != L.TEXT or len(tail.text) > len(ln.text) // 2 or SENT_PUNCT.search(tail.text) \
                or len(ln.text) + len(tail.text) > 80:
            continue
        if i + 2 < len(lines) and lines[i + 2].kind in L.TEXTUAL:
            continue
        tail.kind = L.CAPTION


def refine_headings(lines: list[Line]) -> None:
    """Numbered lines that turn out to be wrapped sentences go back to text; wrapped headings get their tails."""
    for i, ln in enumerate(lines):
        h = ln.heading
        if ln.kind != L.HEADING or h is None or h.md_level or h.family in ("kw", "bold"):
            continue
        j = nonblank_after(lines, i)
        nxt = lines[j] if j is not None else None
        if nxt is not None and nxt.kind == L.TEXT and continues_sentence(ln.text, nxt.text):
            ln.kind, ln.heading = L.TEXT, None
            continue
        tails: list[int] = []
        parts = [ln.text]
        while nxt is not None and len(tails) < 2 and nxt.kind == L.TEXT and not ANY_PUNCT.search(nxt.text) \
                and sum(map(len, parts)) + len(nxt.text) <= MAX_HEADING + 10:
            k = nonblank_after(lines, j)
            followed_by_heading = k is not None and lines[k].kind in (L.HEADING, L.RUNIN)
            if not (followed_by_heading or len(nxt.text) <= 0.6 * len(ln.text) or column_wrapped(lines, i, j)):
                break
            tails.append(j)
            parts.append(nxt.text)
            j = k
            nxt = lines[j] if j is not None else None
        if tails and nxt is not None and nxt.kind == L.TEXT and continues_sentence(join_lines(parts), nxt.text):
            ln.kind, ln.heading = L.TEXT, None      # wrapped over more lines, still a sentence: `……法人` /
            continue                                # `和其它组织均` / `可参加竞买。`
        if tails:
            text = join_lines(parts)
            ln.heading = Heading(strip_colon(text), h.family, h.depth, h.md_level, is_refs(text))
            for t in tails:
                lines[t].kind, lines[t].heading = L.CONT, ln.heading   # the tail knows its heading


def column_wrapped(lines: list[Line], i: int, j: int) -> bool:
    """`一、当前国企党建与生产经` / `营工作深度融合现状及存在` / `不足` / (blank): a heading a narrow column wrapped
    into full-width lines. Line `j` is its tail when every line from the heading to it follows the one above
    with no blank line between, and the run of such unpunctuated text lines stops at a blank line (or the
    end, or a heading) within the heading's length: a paragraph straight under a heading has punctuation."""
    if any(lines[t].kind is not L.TEXT for t in range(i + 1, j + 1)):
        return False
    # a column wraps only a full line: each line is as long as the one under it (`四、结束语` over a longer
    # line is a short heading over its paragraph)
    if any(len(lines[t - 1].text) + 1 < len(lines[t].text) for t in range(i + 1, j + 1)):
        return False
    end = j + 1
    while end < len(lines) and end - i <= 2 and lines[end].kind is L.TEXT and not ANY_PUNCT.search(lines[end].text):
        end += 1
    return end >= len(lines) or lines[end].kind in (L.BLANK, L.HEADING)


def continues_sentence(head: str, nxt: str) -> bool:
    # `2、有意竞买者实地查勘……现状` / `后，在规定时间内……`: the next line finishes the numbered line's clause.
    if re.match(rf"^[{CJK}][，。、；：！？]", nxt):
        return True
    return len(head) >= 16 and len(nxt) <= 10 and ends_sentence(nxt) and not ANY_PUNCT.search(nxt[:-1])


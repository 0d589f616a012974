"""Title blocks of journal articles.

- A title block is 1-3 title-like lines followed by a byline: `□ 刘 莹`, `姻<affiliation> <name>` (`姻` is how one
  journal family's byline glyph comes out of the extraction), `作者：张三`, `文/赵六`, or a plain name line when an
  affiliation or `摘要`/`关键词` follows it, the title is a markdown heading, or nothing comes before the title
  (front matter). A name line is never a part word (`目录`, `总则`: `shapes.NOT_NAMES`).
- A wrapped title's short last line (`……融合路径` / `探析`) is shaped like a name: it is the title's tail
  when it sits directly under the title and another name line follows (`title_tail`).
- An English title block (`Cheng Zeng Gengtian Du` under an English title) is found the same way; `segments`
  joins it to its Chinese block.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from index.normalize import join_lines
from index.structure.lines import nonblank_after, nonblank_before
from index.structure.records import L, Line
from index.structure.shapes import byline_of, is_affiliation, plain_names, script_of, title_like


@dataclass(slots=True)
class TitleBlock:
    title_lines: list[int]          # indexes into lines
    byline: int
    authors: tuple[str, ...]
    affiliation: str
    script: str                     # zh / en
    english: "TitleBlock | None" = None   # on a Chinese block: the English title block of the same article
    joined: "TitleBlock | None" = None    # on an English block: the Chinese block it belongs with

    @property
    def first(self) -> int:
        return self.title_lines[0]

    @property
    def last(self) -> int:
        return self.byline

    def title(self, lines: list[Line]) -> str:
        return join_lines([lines[i].text for i in self.title_lines])


def title_blocks(lines: list[Line]) -> list[TitleBlock]:
    blocks: list[TitleBlock] = []
    taken: set[int] = set()
    tails: set[int] = set()         # short lines that finish a wrapped title (`……路径` / `探析`)
    for i, ln in enumerate(lines):
        if ln.kind == L.BYLINE:
            parsed = byline_of(ln.raw)
            assert parsed is not None
            authors, affiliation = parsed
            marked = True
        elif ln.kind == L.TEXT and (authors := plain_names(ln.raw)):
            affiliation, marked = "", False
            if title_tail(lines, i):
                tails.add(i)
                continue
        else:
            continue
        script = "en" if re.match(r"[A-Za-z]", authors[0]) else "zh"
        titles: list[int] = []
        j = nonblank_before(lines, i)
        # an English title wraps into more lines of a column than a Chinese one (at most 300 characters)
        while j is not None and j not in taken and len(titles) < (3 if script == "zh" else 6):
            cand = lines[j]
            md_title = cand.kind == L.HEADING and cand.heading is not None and \
                (cand.heading.family == "bold" or cand.heading.family == "md" and cand.heading.depth <= 2)
            if not (cand.kind == L.TEXT or md_title) or script_of(cand.text) != script \
                    or not (title_like(cand.text, script) or j in tails) \
                    or sum(len(lines[t].text) for t in titles) + len(cand.text) > (80 if script == "zh" else 300):
                break
            titles.insert(0, j)
            j = nonblank_before(lines, j)
        if not titles:
            continue
        if not marked:
            # A bare name line is a byline only in front matter: an affiliation, abstract or keywords follows,
            # the title is a markdown heading, or nothing comes before the title.
            k = nonblank_after(lines, i)
            follows = k is not None and (lines[k].kind == L.LABEL or is_affiliation(lines[k].text)
                                         or wrapped_affiliation(lines, k))
            md_title = lines[titles[0]].kind == L.HEADING
            if not (follows or md_title or nonblank_before(lines, titles[0]) is None):
                continue
        for t in titles:
            lines[t].kind = L.TITLE
        ln.kind = L.BYLINE
        taken.update(titles + [i])
        blocks.append(TitleBlock(titles, i, authors, affiliation, script))
    return blocks



def title_tail(lines: list[Line], i: int) -> bool:
    """A one-word name-shaped line that is the wrapped end of the title above it, not its byline: it sits
    directly under a title-like line (no blank line between, as a column wraps a line) and another name line
    or byline follows it (`国有企业……融合路径` / `探析` / `杨晓炜`). Authors stacked one a line (`张三` /
    `李四` under a title) have no blank line between them, so they stay names."""
    ln = lines[i]
    if i == 0 or len(ln.text.split()) != 1:
        return False
    above = lines[i - 1]
    if above.kind != L.TEXT or script_of(above.text) != "zh" or not title_like(above.text, "zh") \
            or len(above.text) < 2 * len(ln.text):
        return False
    k = nonblank_after(lines, i)
    if k is None or k == i + 1:
        return False
    nxt = lines[k]
    return nxt.kind == L.BYLINE or (nxt.kind == L.TEXT and bool(plain_names(nxt.raw)))


def wrapped_affiliation(lines: list[Line], k: int) -> bool:
    """`北京起重运输机械设计研究院有限公司，中` / `国·北京 100007`: an affiliation a column wrapped (the next line,
    no blank line between, completes it)."""
    if k + 1 >= len(lines):
        return False
    nxt = lines[k + 1]
    return nxt.kind is L.TEXT and nxt.no == lines[k].no + 1 and is_affiliation(lines[k].text + nxt.text)

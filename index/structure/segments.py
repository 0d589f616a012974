"""Segments of a file: where one article (or notice, or news item) ends and the next begins.

- The file is cut into pieces: each title block, and the body runs between title blocks, closings
  (`（作者单位：……）` closes an article), lone date lines (`2025 年 4月 10日` closes a notice) and news marks
  (`（上接1版）` with the line before it opens a news item).
- A title block normally opens the body after it. It closes the body before it instead when that body is open
  (not ended by a closing), has no title, and shares more vocabulary with the title than the body after it
  (`Affinity`, tf-idf of character bigrams); a file that starts with untitled text breaks ties that way (titles
  printed after their articles).
- A title block followed directly by another one was displaced by the layout; it goes to the untitled article
  whose text it matches best.
- An English title block joins the Chinese article whose title block follows it with only English front matter
  between, or else (English matter printed at the end) the Chinese article before it.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from index.normalize import ends_sentence
from index.structure.lines import nonblank_after, nonblank_before
from index.structure.records import L, Line
from index.structure.shapes import CJK_CHAR, NEWS_OPENING, NOT_CJK, NOTICE_WORDS, SENT_PUNCT
from index.structure.titles import TitleBlock


@dataclass(slots=True)
class Piece:
    """A run of lines between cut points: a title block, or body text."""
    first: int
    last: int
    title: TitleBlock | None = None
    closed: bool = False
    news: bool = False
    owner: "TitleBlock | None" = None     # on a body: the title block of its article

    @property
    def is_body(self) -> bool:
        return self.title is None


def cut_pieces(lines: list[Line], tbs: list[TitleBlock]) -> list[Piece]:
    by_first = {tb.first: tb for tb in tbs}
    for i, ln in enumerate(lines):
        if ln.kind == L.NEWS_MARK:
            j = nonblank_before(lines, i)
            if j is not None and lines[j].kind == L.TEXT and len(lines[j].text) <= 80 \
                    and not SENT_PUNCT.search(lines[j].text):
                lines[j].kind = L.HEADLINE
                # a headline a column wrapped: the line right above (no blank line between) is its start when
                # it has no sentence in it and opens a paragraph (nothing but a non-text line or an ended
                # sentence above it)
                h = j - 1
                if h >= 0 and lines[h].kind == L.TEXT and not SENT_PUNCT.search(lines[h].text) \
                        and len(lines[h].text) + len(lines[j].text) <= 80 \
                        and (h == 0 or lines[h - 1].kind not in L.TEXTUAL or ends_sentence(lines[h - 1].text)):
                    lines[h].kind = L.HEADLINE
    pieces: list[Piece] = []
    cur: Piece | None = None
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.kind is L.BLANK or ln.kind is L.JUNK:     # dropped furniture opens no piece
            i += 1
            continue
        if i in by_first:
            tb = by_first[i]
            pieces.append(Piece(tb.first, tb.last, title=tb))
            cur = None
            i = tb.last + 1
            continue
        if cur is None or (ln.kind == L.HEADLINE and (i == 0 or lines[i - 1].kind != L.HEADLINE)):
            cur = Piece(i, i)
            pieces.append(cur)
        cur.last = i
        if ln.kind in (L.NEWS_MARK, L.HEADLINE):
            cur.news = True
        j = nonblank_after(lines, i)
        ends_closing = ln.kind == L.CLOSING and (j is None or lines[j].kind != L.CLOSING)
        if ends_closing or ln.kind == L.DATE:
            cur.closed = ends_closing
            cur = None
        i += 1
    for p in pieces:
        if p.is_body and not p.news:
            first = next((lines[k].text for k in range(p.first, p.last + 1) if lines[k].kind != L.BLANK), "")
            p.news = bool(NEWS_OPENING.match(first))
    return pieces


def bigrams(text: str) -> Counter:
    han = NOT_CJK.sub("", text)
    return Counter(map(str.__add__, han, han[1:]))


class Affinity:
    """How much a title's vocabulary stands out in a body, against the other bodies of the same file (tf-idf).

    Counted lazily: most files never need it (one article, or no title block with a body on both sides).
    """

    def __init__(self, lines: list[Line], bodies: list[Piece]):
        self.lines, self.bodies = lines, bodies
        self._counts: dict[int, Counter] | None = None

    def _prepare(self) -> dict[int, Counter]:
        if self._counts is None:
            lines = self.lines
            self._counts = {id(p): bigrams("".join(ln.text for ln in lines[p.first:p.last + 1]))
                            for p in self.bodies}
            df = Counter(b for c in self._counts.values() for b in c)
            n = len(self.bodies)
            self.idf = {b: math.log((1 + n) / (1 + d)) + 1 for b, d in df.items()}
            self.sizes = {k: max(1, sum(c.values())) for k, c in self._counts.items()}
        return self._counts

    def score(self, title: str, body: Piece) -> float:
        counts = self._prepare().get(id(body), Counter())
        size = self.sizes.get(id(body), 1)
        grams = set(bigrams(title))
        if not grams:
            return 0.0
        total = sum(self.idf.get(b, 1.0) for b in grams)
        return sum(self.idf.get(b, 1.0) * math.log1p(1000 * counts[b] / size) for b in grams) / total


def link_english(lines: list[Line], pieces: list[Piece]) -> None:
    """An English title block joins a Chinese article: the one whose title block follows it with only English
    front matter between, or else (English matter printed at the end) the Chinese article before it."""
    for k, p in enumerate(pieces):
        if p.title is None or p.title.script != "en":
            continue
        nxt = k + 1
        if nxt < len(pieces) and pieces[nxt].is_body and all_english(lines, pieces[nxt]):
            nxt += 1
        target = None
        if nxt < len(pieces) and pieces[nxt].title is not None and pieces[nxt].title.script == "zh":
            target = pieces[nxt].title
        elif nxt == len(pieces) or pieces[nxt].title is not None:
            target = next((q.title for q in reversed(pieces[:k]) if q.title is not None and q.title.script == "zh"),
                          None)
        if target is not None and target.english is None:
            target.english, p.title.joined = p.title, target
            for q in pieces[k + 1:nxt]:
                q.owner = target


def assign_titles(lines: list[Line], pieces: list[Piece]) -> None:
    """Give every body its title block (`owner`) where the layout allows; see the module docstring."""
    link_english(lines, pieces)
    bodies = [p for p in pieces if p.is_body and p.owner is None]
    affinity = Affinity(lines, bodies)
    first_content = next((p for p in pieces if not (p.is_body and p.owner is not None)), None)
    titles_trail = first_content is not None and first_content.is_body and not first_content.news
    own = [(k, p.title) for k, p in enumerate(pieces) if p.title is not None and p.title.joined is None]
    displaced: list[TitleBlock] = []
    for k, tb in own:
        if k + 1 < len(pieces) and pieces[k + 1].title is not None and pieces[k + 1].title.joined is None:
            displaced.append(tb)
            continue
        prev = pieces[k - 1] if k > 0 and is_free(pieces[k - 1]) and not pieces[k - 1].closed else None
        nxt = pieces[k + 1] if k + 1 < len(pieces) and is_free(pieces[k + 1]) else None
        if prev and nxt:
            title = tb.title(lines)
            before, after = affinity.score(title, prev), affinity.score(title, nxt)
            if before > 1.25 * after:
                chosen = prev
            elif after > 1.25 * before:
                chosen = nxt
            else:   # no clear winner: follow the file's habit
                chosen = prev if titles_trail else nxt
        else:
            chosen = prev or nxt
        if chosen is None:
            displaced.append(tb)
        else:
            chosen.owner = tb
    # A displaced title belongs to an article the layout left untitled: the one whose text it matches best.
    for tb in displaced:
        free = [p for p in pieces if is_free(p) and articleish(lines, p)]
        if free:
            title = tb.title(lines)
            max(free, key=lambda p: (affinity.score(title, p), -p.first)).owner = tb


def is_free(p: Piece) -> bool:
    return p.is_body and p.owner is None and not p.news


def all_english(lines: list[Line], p: Piece) -> bool:
    return not any(CJK_CHAR.search(lines[k].text) for k in range(p.first, p.last + 1))


def articleish(lines: list[Line], p: Piece) -> bool:
    span = lines[p.first:p.last + 1]
    return p.closed or any(ln.kind in (L.HEADING, L.RUNIN) for ln in span) or sum(len(ln.text) for ln in span) >= 300


def is_notice(lines: list[Line], p: Piece) -> bool:
    text = "".join(lines[k].text for k in range(p.first, p.last + 1))
    return sum(1 for w in NOTICE_WORDS if w in text) >= 4


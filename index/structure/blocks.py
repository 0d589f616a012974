"""The blocks pass: a segment's lines become `Block`s (paragraphs with their heading path and, in regulations,
their 条), read through the segment's genre (`Genre.reread`).

- Front matter is text too, so "who wrote it / where do they work / what is its DOI" can be answered: the title
  block with the affiliation lines after it is one `front` block (title, then each byline word on a line), as
  are the DOI line and the closing `（作者单位：……）`; abstracts, keywords and `【作者简介】` get their own kinds.
- Lines that are not chunk text (labels, headings, bylines, metadata, dropped furniture) separate blocks
  (`Block.run`): a chunk never spans them, so it never cites a line it does not show.
- An article without a title is shown with its first section heading as a fallback title (`title_is_fallback`),
  else its first sentence; never a 章, a bracketed part name or a date. A markdown `# 标题` opening the text is
  a printed title: it also heads the path of an article, not of a regulation, notice or page.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from index.normalize import clean_meta, ends_sentence, join_lines, line_starts_and_text, split_wrapped
from index.structure.genre import Genre
from index.structure.records import Block, Heading, L, Line
from index.structure.shapes import CAPTION, DOI, LABEL, ORG_END, POSTCODE, REF_ITEM, byline_of, is_affiliation

# Lines that are not chunk text: a chunk citing lines around one would cite text it does not show.
_BARRIERS = (L.LABEL, L.HEADING, L.CONT, L.NEWS_MARK, L.HEADLINE, L.TITLE, L.CLOSING, L.BYLINE, L.META, L.JUNK)


@dataclass(slots=True)
class State:
    genre: Genre
    top: tuple[str, int] | None
    stack: list[Heading] = field(default_factory=list)
    mode: str = "body"
    run: list[tuple[int, str]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    first_heading: str = ""
    md_title: str = ""           # a `# ` heading before any text: the document's printed title
    affiliations: list[str] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)
    front: list[tuple[int, str]] = field(default_factory=list)   # title block lines waiting for affiliations
    doi: str = ""
    stray_authors: tuple[str, ...] = ()
    barrier: int = 0             # bumped at every non-blank line that is not chunk text (label, byline, …)
    locator: str = ""            # the 条 the current paragraph belongs to (regulations)
    open_keywords: bool = False  # a keywords line that ended mid-list: the next line may finish it
    caption: list[tuple[int, str]] = field(default_factory=list)   # the last caption's lines (for its tail)
    doi_lines: list[tuple[int, str]] = field(default_factory=list)  # the last DOI's lines (for its tail)

    def path(self) -> tuple[str, ...]:
        return tuple(h.text for h in self.stack)

    def push(self, h: Heading) -> None:
        self.locator = ""
        if not self.first_heading and h.family not in ("bracket", "chapter", "date"):
            opening = not self.blocks and not self.run and not self.front
            if h.family == "md" and opening and (h.md_level == 1 or not self.genre.title_in_path):
                self.md_title = h.text           # a markdown title opening the text is the printed title
                if not self.genre.title_in_path:
                    return                       # ... and heads no path in genres whose sections are numbered
            self.first_heading = h.text
        if h.family == "kw" or (h.family, h.depth) == self.top:
            self.stack.clear()
        else:
            for k, e in enumerate(self.stack):
                if (e.family == h.family and e.depth >= h.depth) or \
                        (h.family == "md" and e.md_level and e.md_level >= h.depth):
                    del self.stack[k:]
                    break
        self.stack.append(h)
        self.mode = "references" if h.references else "body"

    def emit(self, kind: str, items: list[tuple[int, str]]) -> None:
        starts, pieces = line_starts_and_text([t for _, t in items])
        headings = () if kind in ("front", "abstract", "keywords", "bio") else self.path()
        self.blocks.append(Block(kind, headings, "".join(pieces), tuple(n for n, _ in items), starts, self.barrier,
                                 self.locator if kind == "body" else ""))

    def emit_parts(self, kind: str, parts: list[tuple[int, str]]) -> None:
        """One block whose parts are separate lines of text (`title` / `author` / `affiliation`)."""
        starts, pos = [], 0
        for _, text in parts:
            starts.append(pos)
            pos += len(text) + 1
        self.blocks.append(Block(kind, (), "\n".join(t for _, t in parts), tuple(n for n, _ in parts),
                                 tuple(starts), self.barrier))

    def flush_front(self) -> None:
        if self.front:
            self.emit_parts("front", self.front)
            self.front = []

    def flush(self) -> None:
        self.open_keywords = False
        self.flush_front()
        if not self.run:
            return
        texts = [t for _, t in self.run]
        if self.mode == "references":
            ranges = split_wrapped(texts, breaks_before=lambda s: bool(REF_ITEM.match(s)))
            merged: list[tuple[int, int]] = []
            for a, b in ranges:   # a reference item ends only where the next one starts
                if merged and not REF_ITEM.match(texts[a]):
                    merged[-1] = (merged[-1][0], b)
                else:
                    merged.append((a, b))
            ranges = merged
        else:
            ranges = split_wrapped(texts)
        for a, b in ranges:
            self.emit(self.mode, self.run[a:b])
        self.run.clear()
        if self.mode in ("abstract", "keywords", "bio"):
            self.mode = "body"


def top_family(lines: list[Line]) -> tuple[str, int] | None:
    for ln in lines:
        if ln.kind in (L.HEADING, L.RUNIN) and ln.heading and ln.heading.family != "kw":
            return ln.heading.family, ln.heading.depth
    return None


def body_blocks(lines: list[Line], st: State, front: bool) -> None:
    """Blocks of `lines` (as the genre reads them); `front` when they open right after their title block
    (affiliations allowed)."""
    wrapped = False             # the last affiliation line continues on the next line
    for idx, ln in enumerate(lines):
        kind = ln.kind
        if st.mode == "references" and kind in (L.HEADING, L.RUNIN) and ln.heading is not None \
                and ln.heading.family not in ("kw", "md", "cn", "cn-paren", "chapter"):
            kind = L.TEXT       # `1. 作者. 题名[J]. ……` is the next reference, not a section
        if kind is L.BLANK:
            if st.open_keywords:    # a blank line ends a keywords list wherever its last line ended
                st.flush()
            continue
        if kind in _BARRIERS:
            st.flush()
            st.barrier += 1
        if kind is L.LABEL:
            front = False if ln.label in ("bio",) else front
            if ln.label == "doi":
                if st.doi_lines and st.doi_lines[-1][0] == ln.no - 1 and not LABEL.match(ln.text):
                    st.blocks.pop()         # the DOI's wrapped rest (`lines.doi_tails`): one DOI
                    st.doi_lines.append((ln.no, ln.text))
                    st.doi = ""
                else:
                    st.doi_lines = [(ln.no, ln.text)]
                text = join_lines([t for _, t in st.doi_lines])
                m = DOI.search(text)
                st.doi = st.doi or (m.group().rstrip(".,，。)）") if m else "")
                st.emit("front", st.doi_lines)     # askable: "这篇文章的DOI是多少？"
            elif ln.label != "meta":
                st.mode = ln.label
                if ln.rest:
                    add_text(st, ln.no, ln.rest)
            continue
        if kind is L.HEADING:
            front = False
            assert ln.heading is not None
            st.push(ln.heading)
            continue
        if kind is L.RUNIN:
            st.flush()
            front = False
            assert ln.heading is not None
            st.push(ln.heading)
            add_text(st, ln.no, ln.text)
            continue
        if kind is L.CLAUSE:            # a 条 opens its paragraph and names it and the ones after it
            st.flush()
            front = False
            st.locator = ln.locator
            add_text(st, ln.no, ln.text)
            continue
        if kind is L.CAPTION:
            st.flush()
            if st.caption and not CAPTION.match(ln.text) and st.blocks and st.blocks[-1].kind == "caption":
                st.blocks.pop()          # the caption's wrapped tail (`lines.caption_tails`): one caption
                st.caption.append((ln.no, ln.text))
            else:
                st.caption = [(ln.no, ln.text)]
            st.emit("caption", st.caption)
            continue
        if kind in (L.CONT, L.NEWS_MARK, L.HEADLINE, L.TITLE, L.META, L.JUNK):
            continue
        if kind is L.CLOSING:
            st.closing.append(clean_meta(ln.raw))
            continue
        if kind is L.BYLINE:
            parsed = byline_of(ln.raw)
            if parsed and not st.stray_authors:
                st.stray_authors = parsed[0]
            continue
        if st.open_keywords and not keywords_tail(ln.text):
            st.flush()                   # the list ended: this line is the next paragraph
        wraps = front and st.mode == "body" and wrapped_affiliation(lines, idx)
        if front and st.mode == "body" and (wrapped or wraps or is_affiliation(ln.text)):
            if wrapped:
                tail = clean_meta(ln.raw)                   # the rest of the line above; a postcode stays a word
                prev = st.affiliations[-1]
                st.affiliations[-1] = f"{prev} {tail}" if tail[:1].isdigit() else join_lines([prev, tail])
            else:
                st.affiliations.append(clean_meta(ln.raw))
            wrapped = wraps
            st.front.append((ln.no, ln.text))      # shown with the title and authors, one chunk
            continue
        wrapped = False
        front = front and st.mode != "body"
        add_text(st, ln.no, ln.text)


def wrapped_affiliation(lines: list[Line], i: int) -> bool:
    """`山西西山晋兴能源有限责任公司 山西 太原` / `030000`: an affiliation a column wrapped before its postcode is
    one with the line right under it (no blank line between)."""
    if i + 1 >= len(lines):
        return False
    ln, nxt = lines[i], lines[i + 1]
    ends = POSTCODE.search(ln.text) and not re.search(r"[,，]$", ln.text)    # `…, 100007,` / `China` wraps
    if nxt.no != ln.no + 1 or nxt.kind is not L.TEXT or ends or not is_affiliation(ln.text + nxt.text):
        return False
    # two affiliations stacked one a line (`某某公司` / `某某大学`) stay two
    return not is_affiliation(ln.text) or not ORG_END.search(nxt.text)


def add_text(st: State, no: int, text: str) -> None:
    if st.mode == "references":
        st.run.append((no, text))
        return
    st.run.append((no, text))
    if st.mode in ("abstract", "bio") and ends_sentence(text):
        st.flush()
    elif st.mode == "keywords":
        # A line not ending in a separator ends the list, unless the next line (no blank line between) is its
        # wrapped rest: `国有企业；党建工作；生产经` / `营；深度融合`. `body_blocks` decides at that line.
        st.open_keywords = not re.search(r"[；;,，、]$", text)


def keywords_tail(text: str) -> bool:
    """The wrapped rest of a keywords list: short, no sentence inside (a paragraph would have one)."""
    return len(text) <= 80 and not re.search(r"[。！？!?]", text)


def fallback_title(st: State) -> str:
    """An untitled segment is shown by its first section heading, or its first sentence: never by a 章, a
    bracketed part name (`【案例简介】`) or a date."""
    if st.first_heading:
        return st.first_heading
    text = next((b.text for b in st.blocks if b.kind == "body"), "")
    first = re.split(r"(?<=[。！？；])", text, maxsplit=1)[0]
    return first if len(first) <= 24 else first[:24] + "…"


def closing_affiliation(parts: list[str]) -> str:
    """`（作者单位：山西汾河焦煤` + `股份有限公司三交河煤矿）` -> 山西汾河焦煤股份有限公司三交河煤矿."""
    return re.sub(r"^[（(]\s*(?:作者单位|作者工作单位|单位)\s*[：:]\s*|[）)]\s*$", "", join_lines(parts))


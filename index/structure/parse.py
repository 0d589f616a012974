"""Sequencing the passes: lines -> title blocks -> pieces -> segments (with their genre) -> blocks, and each
segment's metadata (title, authors, date, publisher) from the text first and the document's `DocMeta` after."""
from __future__ import annotations

import re

from index.document import DocMeta
from index.normalize import clean_meta, join_lines
from index.structure.blocks import State, body_blocks, closing_affiliation, fallback_title, top_family
from index.structure.genre import OTHER, Genre, SegmentView
from index.structure.genres import detect
from index.structure.lines import classify
from index.structure.notice import DOCUMENT_TYPE
from index.structure.records import L, Line, Segment
from index.structure.segments import Piece, assign_titles, cut_pieces
from index.structure.shapes import CJK_CHAR, CLAUSE, byline_parts, numbering, title_like
from index.structure.titles import TitleBlock, title_blocks
from index.structure.web import PageMeta

_SILENT = (L.BLANK, L.JUNK)
_DATE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日")
# `（2018年3月20日第十三届全国人民代表大会第一次会议通过）`: when a law or regulation was adopted or revised.
_ADOPTED = re.compile(r"[（(](?:[^（()）]*\d{4}\s*年[^（()）]*(?:通过|发布|修订|修正|施行|印发|公布|批准)[^（()）]*"
                      r"|\s*\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日\s*)[）)]$")
_TITLE_LINE_GENRES = ("regulation", "notice")


def parse_document(text: str, meta: DocMeta | None = None) -> tuple[Segment, ...]:
    """Segments (articles, regulations, notices, pages, news items) of one decoded document, each with its
    blocks in line order. `meta` is what the file states about itself (HTML `<title>`, DOCX/PDF properties):
    a document of one segment takes its title, and its authors and date where the text states none."""
    meta = meta or DocMeta()
    lines, page = classify(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    pieces = cut_pieces(lines, title_blocks(lines))
    assign_titles(lines, pieces)
    # One segment per title block (with the pieces it owns and its English block) or per untitled body.
    groups: dict[int, tuple[TitleBlock | None, list[Piece]]] = {}
    for p in pieces:
        head = (p.title.joined or p.title) if p.title is not None else p.owner
        groups.setdefault(id(head) if head is not None else id(p), (head, []))[1].append(p)
    drafts = []
    for head, members in groups.values():
        members.sort(key=lambda p: p.first)
        bodies = [p for p in members if p.is_body]
        drafts.append(((bodies or members)[0].first, head, members))
    drafts.sort(key=lambda d: d[0])
    doc_meta = meta if len(drafts) == 1 else DocMeta()
    return tuple(build_segment(index, lines, head, members, page, doc_meta)
                 for index, (_, head, members) in enumerate(drafts))


def build_segment(index: int, lines: list[Line], tb: TitleBlock | None, members: list[Piece], page: PageMeta,
                  meta: DocMeta) -> Segment:
    bodies = [p for p in members if p.is_body]
    body_lines = tuple(ln for p in bodies for ln in lines[p.first:p.last + 1])
    md_title = _opening_md_title(body_lines)
    _title_repeated(body_lines, md_title, lines)
    candidate = "" if tb is not None or md_title or meta.title or page.title else _title_line(body_lines, lines)
    view = SegmentView(body_lines, tb is not None, any(p.news for p in bodies), any(p.closed for p in bodies),
                       md_title or meta.title or page.title or candidate, page)
    genre: Genre = OTHER if tb is not None and not bodies else detect(view)
    read = {id(p): [genre.reread(ln) for ln in lines[p.first:p.last + 1]] if genre.rereads
            else lines[p.first:p.last + 1] for p in bodies}
    title_line = candidate if genre.name in _TITLE_LINE_GENRES else ""
    if title_line:    # the line is the title, not text
        first = read[id(bodies[0])]
        k = next(i for i, ln in enumerate(first) if ln.kind not in _SILENT)
        first[k] = Line(first[k].no, first[k].raw, first[k].text, L.TITLE)
    st = State(genre, top_family([ln for p in bodies for ln in read[id(p)]]))
    headline = ""
    after_title = False
    for p in members:
        if not after_title:      # the title block's parts wait for the affiliation lines after it
            st.flush()
        st.barrier += 1          # pieces are cut at title blocks, closings and dates: never one chunk across
        if p.title is not None:
            st.flush_front()
            st.front = title_parts(lines, p.title)
            after_title = True
            continue
        if genre.name == "news":
            for ln in lines[p.first:p.last + 1]:
                if ln.kind is L.HEADLINE and not headline:
                    headline = ln.text
                    st.emit("front", [(ln.no, ln.text)])
        closing_before = len(st.closing)
        body_blocks(read[id(p)], st, front=after_title)
        if len(st.closing) > closing_before:     # `（作者单位：……）` is shown too: "王涛在哪个单位工作？"
            st.flush()
            st.emit("front", [(ln.no, ln.text) for ln in lines[p.first:p.last + 1] if ln.kind is L.CLOSING])
        after_title = False
    st.flush()

    # Title: a markdown title, the document's own metadata, the page's title, a journal title block, a news
    # headline, a title line; else a fallback (first heading or sentence), never a 章 or a line with metadata.
    printed = st.md_title or meta.title or page.title
    if printed:
        title, fallback = _unquote(printed), False
    elif tb is not None:
        title, fallback = tb.title(lines), False
    elif headline or title_line:
        title, fallback = _unquote(headline or title_line), False
    else:
        title, fallback = fallback_title(st), True
    authors = (tb.authors if tb is not None else ()) or page.authors or st.stray_authors or meta.authors
    title_en = tb.english.title(lines) if tb is not None and tb.english is not None else ""
    # The byline's affiliation, else the front matter's (Chinese first), else the closing `（作者单位：……）`.
    front = sorted(st.affiliations, key=lambda a: not CJK_CHAR.search(a))
    affiliation = (clean_meta(tb.affiliation) if tb is not None and tb.affiliation else "") or \
        (front[0] if front else "") or (closing_affiliation(st.closing) if st.closing else "")
    date = page.date or _stated_date(body_lines, st) or meta.date
    publisher = page.source or page.publisher or meta.source
    line_nos = [n + 1 for p in members for n in (p.first, p.last)]
    return Segment(index, genre.name, title, fallback, title_en, tuple(authors), affiliation, st.doi,
                   tuple(sorted(st.blocks, key=lambda b: b.line_start)), min(line_nos), max(line_nos),
                   date, publisher)


def _opening_md_title(body: tuple[Line, ...]) -> str:
    """The text of an unnumbered markdown heading that opens the segment, or ""."""
    first = next((ln for ln in body if ln.kind not in _SILENT), None)
    if first is not None and first.kind is L.HEADING and first.heading is not None \
            and first.heading.family == "md":
        return first.heading.text
    return ""


def _title_repeated(body: tuple[Line, ...], title: str, lines: list[Line]) -> None:
    """`## 中国共产党章程` / `中国共产党章程`: the title printed again under itself is the title, not text."""
    if not title:
        return
    content = [ln for ln in body if ln.kind not in _SILENT][:2]
    if len(content) == 2 and content[1].kind is L.TEXT and content[1].text == title:
        lines[content[1].no - 1].kind = L.TITLE


def _title_line(body: tuple[Line, ...], lines: list[Line]) -> str:
    """A first line that is a title: short, no sentence end, not numbered, naming a document type (`……的通知`,
    `……条例`, `……法`), a blank line after it. Used by the genres that print such titles (notices, regulations)."""
    ln = next((ln for ln in body if ln.kind not in _SILENT), None)
    if ln is None or ln.kind is not L.TEXT or not title_like(ln.text, "zh") or numbering(ln.text) \
            or CLAUSE.match(ln.text) or not (DOCUMENT_TYPE.search(ln.text) or ln.text.endswith("法")) \
            or re.search(r"[，,；;]", ln.text) or ln.no >= len(lines) or lines[ln.no].kind is not L.BLANK:
        return ""
    return ln.text


def _unquote(title: str) -> str:
    """`《关于……的意见》` -> 关于……的意见: a title printed inside book-title marks."""
    if title.startswith("《") and title.endswith("》") and "《" not in title[1:]:
        return title[1:-1]
    return title


def _stated_date(body: tuple[Line, ...], st: State) -> str:
    """The adoption line of a regulation (its last date: the latest revision), else a closing date line."""
    for b in st.blocks[:5]:
        if b.kind == "body" and (m := _ADOPTED.search(b.text)):
            dates = _DATE.findall(m.group())
            if dates:
                return re.sub(r"\s", "", dates[-1])
    closing = [ln.text for ln in body if ln.kind is L.DATE]
    return re.sub(r"\s", "", closing[-1]) if closing else ""


def title_parts(lines: list[Line], tb: TitleBlock) -> list[tuple[int, str]]:
    """The title block as shown: the title, then the byline's affiliation and each author on a line of its own.

    Each part is text of its source line in source order, so the chunk quotes its lines (glyph `□`/`姻` aside).
    """
    title = join_lines([lines[i].text for i in tb.title_lines])
    byline = lines[tb.byline]
    return [(lines[tb.first].no, title), *((byline.no, w) for w in byline_parts(byline.raw, tb.script))]



"""Sequencing the passes: lines -> title blocks -> pieces -> segments (with their genre) -> blocks, and each
segment's metadata (title, authors, date, publisher) from the text first and the document's `DocMeta` after."""
from __future__ import annotations

import re
from dataclasses import replace

from index.document import DocMeta
from index.normalize import CJK, clean_meta, join_lines
from index.structure.blocks import State, body_blocks, closing_affiliation, fallback_title, top_family
from index.structure.genre import OTHER, Genre, SegmentView
from index.structure.genres import detect
from index.structure.lines import classify
from index.structure.notice import DOCUMENT_TYPE
from index.structure.records import L, Line, Segment
from index.structure.segments import Piece, assign_titles, cut_pieces
from index.structure.shapes import CJK_CHAR, CLAUSE, NAME, byline_parts, numbering, title_like
from index.structure.titles import TitleBlock, title_blocks
from index.structure.web import PageMeta

_SILENT = (L.BLANK, L.JUNK)
_DATE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日")
# `（2018年3月20日第十三届全国人民代表大会第一次会议通过）`: when a law or regulation was adopted or revised.
_ADOPTED = re.compile(r"[（(](?:[^（()）]*\d{4}\s*年[^（()）]*(?:通过|发布|修订|修正|施行|印发|公布|批准)[^（()）]*"
                      r"|\s*\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日\s*)[）)]$")
_TITLE_LINE_GENRES = ("regulation", "notice")
# `……2023年12月19日中共中央发布`: the body that issued a regulation, in its adoption line.
_ISSUED_BY = re.compile(rf"日\s*([{CJK}]{{2,24}}?)(?:发布|印发|公布)")
# A signature line: an organisation's name alone on a line (`国务院`, `某某市人民政府办公厅`).
_SIGNATURE = re.compile(rf"^[{CJK}（）()]{{0,30}}(?:国务院|委员会|办公厅|办公室|人民政府|政府|部|局|厅|委|院|会|中心|公司|集团)$")
_ISSUED_TITLE = re.compile(rf"^[{CJK}\s、]{{4,40}}?(?:印发|发布|公布)《([^》]{{2,60}})》$")
_TRAILING_BYLINE = re.compile(r"(?:^|[。！？”])\s*[（(](?:作者[：:]\s*)?(?P<who>[^（()）。！？；：:]{2,40}?)"
                              r"(?:\s*单位[：:]\s*[^（()）。！？；]{2,30})?[）)]$")
_ORG = re.compile(r"(?:室|委|办|部|局|厅|处|院|所|会|社|中心|公司|集团|大学|学院|支部|党委|总支)$")
_NOT_BYLINE = re.compile(r"^(?:试行|草案|节选|摘编|全文|完|待续|续|略|上|下|摘要|未完)$")


def parse_document(text: str, meta: DocMeta | None = None, format: str = "txt") -> tuple[Segment, ...]:
    """Segments (articles, regulations, notices, pages, news items) of one decoded document, each with its
    blocks in line order. `meta` is what the file states about itself (HTML `<title>`, DOCX/PDF properties):
    a document of one segment takes its title, and its authors and date where the text states none. `format`
    is the reader's (a document read from HTML is a web page unless its text is a law or a notice)."""
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
    segments = [build_segment(lines, head, members, page, doc_meta, format) for _, head, members in drafts]
    # A piece of furniture left alone (a print link after a notice's date) holds no text: no segment.
    kept = [seg for seg in segments if seg.blocks] or segments[:1]
    return tuple(replace(seg, index=k) for k, seg in enumerate(kept))


def build_segment(lines: list[Line], tb: TitleBlock | None, members: list[Piece], page: PageMeta, meta: DocMeta,
                  format: str) -> Segment:
    bodies = [p for p in members if p.is_body]
    body_lines = tuple(ln for p in bodies for ln in lines[p.first:p.last + 1])
    md_title = _opening_md_title(body_lines)
    _title_repeated(body_lines, md_title, lines)
    candidate = "" if tb is not None or md_title or meta.title or page.title else _title_line(body_lines, lines)
    view = SegmentView(body_lines, tb is not None, any(p.news for p in bodies), any(p.closed for p in bodies),
                       md_title or meta.title or page.title or candidate, page, format)
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
            if not headline:    # the first headline, over the lines a column wrapped it into
                heads = []
                for ln in lines[p.first:p.last + 1]:
                    if ln.kind is L.HEADLINE:
                        heads.append((ln.no, ln.text))
                    elif heads:
                        break
                if heads:
                    headline = join_lines([t for _, t in heads])
                    st.emit("front", heads)
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
        title, fallback = _unquote(_issued(printed)), False
    elif tb is not None:
        title, fallback = tb.title(lines), False
    elif headline or title_line:
        title, fallback = _unquote(headline or title_line), False
    else:
        title, fallback = fallback_title(st), True
    authors = (tb.authors if tb is not None else ()) or page.authors or st.stray_authors or \
        (_trailing_byline(st) if genre.name in ("article", "web", "news") else ()) or meta.authors
    title_en = tb.english.title(lines) if tb is not None and tb.english is not None else ""
    # The byline's affiliation, else the front matter's (Chinese first), else the closing `（作者单位：……）`.
    front = sorted(st.affiliations, key=lambda a: not CJK_CHAR.search(a))
    affiliation = (clean_meta(tb.affiliation) if tb is not None and tb.affiliation else "") or \
        (front[0] if front else "") or (closing_affiliation(st.closing) if st.closing else "")
    # The document's own date (adoption line, signature date) before the page's 发布时间, then the metadata's.
    date = _stated_date(body_lines, st) or page.date or meta.date
    publisher = _stated_publisher(body_lines, st) or page.publisher or page.source or meta.source
    line_nos = [n + 1 for p in members for n in (p.first, p.last)]
    return Segment(0, genre.name, title, fallback, title_en, tuple(authors), affiliation, st.doi,
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


def _adoption(st: State) -> str:
    """The adoption line of a law or regulation (`（2018年3月20日……通过）`), when one opens the text."""
    for b in st.blocks[:5]:
        if b.kind == "body" and (m := _ADOPTED.search(b.text)):
            return m.group()
    return ""


def _stated_date(body: tuple[Line, ...], st: State) -> str:
    """The adoption line's last date (the latest revision; not an effective date `自……起施行`), else a closing
    date line (a notice's signature date)."""
    if adopted := _adoption(st):
        dates = [m.group() for m in _DATE.finditer(adopted) if not adopted[:m.start()].endswith("自")]
        if dates:
            return re.sub(r"\s", "", dates[-1])
    closing = [ln.text for ln in body if ln.kind is L.DATE]
    return re.sub(r"\s", "", closing[-1]) if closing else ""


def _stated_publisher(body: tuple[Line, ...], st: State) -> str:
    """Who issued it, as the text says: the adoption line's last `……日中共中央发布`, else the signature line
    above a closing date (`国务院` / `2025年8月21日`)."""
    if adopted := _adoption(st):
        issued = _ISSUED_BY.findall(adopted)
        if issued:
            return issued[-1]
    for k, ln in enumerate(body):
        if ln.kind is L.DATE:
            before = next((b for b in reversed(body[:k]) if b.kind not in _SILENT), None)
            if before is not None and before.kind in L.TEXTUAL and _SIGNATURE.match(before.text):
                return before.text
    return ""


def _issued(title: str) -> str:
    """`中共中央办公厅 国务院办公厅印发《党政机关办公用房管理办法》` -> the document it names."""
    m = _ISSUED_TITLE.match(title)
    return m.group(1) if m else title


def _trailing_byline(st: State) -> tuple[str, ...]:
    """Authors named at the end of a news-style article: `……来判断。（束龙）`, `（作者：董开星 单位：上海市纪委监委）`,
    `（中国一汽纪委、国家监委驻中国一汽监察专员办公室）`."""
    last = next((b for b in reversed(st.blocks) if b.kind == "body"), None)
    if last is None or not (m := _TRAILING_BYLINE.search(last.text)):
        return ()
    who = m.group("who").strip()
    parts = [w for w in re.split(r"[、，,\s]+", who) if w]
    if not parts or _NOT_BYLINE.match(who) or not all(NAME.fullmatch(w) or _ORG.search(w) for w in parts):
        return ()
    return tuple(parts)


def title_parts(lines: list[Line], tb: TitleBlock) -> list[tuple[int, str]]:
    """The title block as shown: the title, then the byline's affiliation and each author on a line of its own.

    Each part is text of its source line in source order, so the chunk quotes its lines (glyph `□`/`姻` aside).
    """
    title = join_lines([lines[i].text for i in tb.title_lines])
    byline = lines[tb.byline]
    return [(lines[tb.first].no, title), *((byline.no, w) for w in byline_parts(byline.raw, tb.script))]



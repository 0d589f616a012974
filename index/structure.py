"""Document structure: which lines form which article, its title, authors and affiliation, and the heading path of
every paragraph. `parse_document(text)` is the one entry point; `index.chunk` cuts its blocks into chunks.

The rules describe line *shapes*, never files (each has a test on seeds/ and a synthetic one):
- A title block is 1-3 title-like lines followed by a byline: `□ 刘 莹`, `姻<affiliation> <name>` (`姻` is how this
  journal family's byline glyph comes out of the extraction), or a plain name line when an affiliation or
  `摘要`/`关键词` follows it (front matter). An English title block (`Cheng Zeng Gengtian Du`) goes with the
  Chinese title block after it, or, when the English matter is printed at the end, with the article before it.
- A title block normally opens the body after it. It closes the body before it instead when that body is open
  (not ended by `（作者单位：……）`), has no title, and shares more vocabulary with the title than the body after
  it; a file that starts with untitled text breaks ties that way (titles printed after their articles).
- A title block followed directly by another one was displaced by the layout; it goes to an untitled article.
- `（作者单位：……）` closes an article; `（上接1版）` with the line before it opens a news item; a lone date line
  (`2025 年 4 月 10日`) closes a notice; untitled text full of `拍卖`/`竞买`/`保证金`… is a notice.
- Headings: markdown `#`, numbered (`一、` `（一）` `1、` `1.` `1.1` `3.1.1` `1 引言` `（1）` `①` `第一章`), bare
  `引言`/`结语`/`参考文献`…, whole-line bold. A numbered line is a heading only when it is short and has no
  sentence punctuation; a heading wrapped over two lines gets its tail back; `（一）优势 1.……。` is a run-in
  heading that also stays in its paragraph. Levels follow the numbering style (the order in which styles appear),
  not the markdown level, because extractions assign `###` inconsistently.
- Front matter is text too, so "who wrote it / where do they work / what is its DOI" can be answered: the title
  block with the affiliation lines after it is one `front` block (title, then each byline word on a line),
  as are the DOI line and the closing `（作者单位：……）`; abstracts, keywords and `【作者简介】` get their own kinds.
- An article without a title block is shown with its first heading as a fallback title (`title_is_fallback`),
  except a markdown `# 标题` opening the text, which is a printed title (it also stays in the heading path).
"""
from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field

from index.normalize import (
    CJK, LIST_ITEM, clean_line, clean_meta, collapse_spaces, ends_sentence, join_lines, line_starts_and_text,
    split_wrapped, strip_glyphs,
)

BLOCK_KINDS = ("front", "abstract", "keywords", "body", "caption", "references", "bio")
SEGMENT_KINDS = ("article", "notice", "news", "other")


@dataclass(frozen=True, slots=True)
class Heading:
    text: str          # as displayed: "3.2.1 建立协同推进机制"
    family: str        # numbering style: cn 一、 / cn-paren （一） / dec 1.1 / arabic 1、 / ... / md / bold / kw
    depth: int         # components of a decimal number, the level of an unnumbered markdown heading, else 0
    md_level: int = 0  # markdown level when the heading was written with #, else 0
    references: bool = False


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph (or title, caption, reference item) with its source lines."""
    kind: str                      # one of BLOCK_KINDS
    headings: tuple[str, ...]
    text: str
    line_nos: tuple[int, ...]      # 1-based source line of each joined piece
    starts: tuple[int, ...]        # offset in `text` where each of those pieces starts
    run: int = 0                   # blocks with the same run have only blank lines between them

    @property
    def line_start(self) -> int:
        return self.line_nos[0]

    @property
    def line_end(self) -> int:
        return self.line_nos[-1]

    def lines_of(self, start: int, end: int) -> tuple[int, int]:
        """Source lines spanned by `text[start:end]`."""
        first = self.line_nos[bisect_right(self.starts, start) - 1]
        last = self.line_nos[bisect_right(self.starts, max(start, end - 1)) - 1]
        return first, last


@dataclass(frozen=True, slots=True)
class Segment:
    index: int                     # order in the file (by where its body starts)
    kind: str                      # one of SEGMENT_KINDS
    title: str
    title_is_fallback: bool
    title_en: str
    authors: tuple[str, ...]
    affiliation: str
    doi: str
    blocks: tuple[Block, ...]
    line_start: int
    line_end: int


# ---------------------------------------------------------------------------------------------- line shapes

_SENT_PUNCT = re.compile(r"[。！？；!?;]")
_ANY_PUNCT = re.compile(r"[。！？；，、：!?;,:]")
_NUMBERINGS = (
    ("chapter", re.compile(r"第[一二三四五六七八九十百零〇\d]+[章节篇部分](?![的之])\s*")),
    ("cn", re.compile(r"[一二三四五六七八九十]{1,3}\s*[、．.]\s*")),
    ("cn-paren", re.compile(r"[（(]\s*[一二三四五六七八九十]{1,3}\s*[）)]\s*")),
    ("dec", re.compile(r"\d{1,2}(?:[.．]\d{1,2}){1,4}(?![.．]?\d)\s*")),
    ("arabic", re.compile(r"\d{1,2}\s*[、．.](?![.．\d])\s*")),
    ("dec", re.compile(r"\d{1,2}\s+(?=[^\d\s%])")),           # "1 引言": a section number followed by a space
    ("arabic-paren", re.compile(r"[（(]\s*\d{1,2}\s*[）)]\s*")),
    ("circled", re.compile(r"[①-⑳]\s*")),
)
_KEYWORD_HEADING = re.compile(
    r"^[【\[［]?\s*(?P<kw>引\s*言|前\s*言|绪\s*论|导\s*言|结\s*语|结\s*论|结\s*束\s*语|小\s*结|总\s*结|参\s*考\s*文\s*献|"
    r"致\s*谢|附\s*录|Introduction|Conclusions?|References|Bibliography|Acknowledge?ments?)\s*[】\]］]?\s*[：:]?$",
    re.I)
_REFERENCE_WORDS = re.compile(r"参\s*考\s*文\s*献|References|Bibliography", re.I)
_MAX_HEADING = 40                    # characters after the number; longer numbered lines are sentences
_LABELS = (
    ("abstract", r"摘\s*要|内容摘要|内容提要|提\s*要|Abstract"),
    ("keywords", r"关\s*键\s*[词字]|Key\s*-?\s*words?"),
    ("bio", r"作者简介|作者介绍|通讯作者|About the authors?"),
    ("meta", r"基金项目|收稿日期|修回日期|中图分类号|文献标识码|文章编号|引用格式"),
    ("doi", r"DOI"),
)
_LABEL = re.compile(
    r"^[【\[［(（]?\s*(?P<label>" + "|".join(f"(?P<{k}>{p})" for k, p in _LABELS) + r")\s*"
    r"(?:[】\]］)）]\s*[：:]?\s*|[：:]\s*|\s+|$)(?P<rest>.*)$", re.I)
_DOI = re.compile(r"10\.\d{4,9}/[^\s，。；;、]+")
_CAPTION = re.compile(r"^(?:图|表|Fig\.?|Figure|Table)\s*\d+(?:[-.．]\d+)*(?:\s+|[：:．.]\s*|$)", re.I)
_CLOSING = re.compile(r"^[（(]\s*(?:作者单位|作者工作单位|单位)\s*[：:]")
_NEWS_MARK = re.compile(r"^[（(]\s*(?:上接|接上|下转|转下|紧接)[^）)]{0,12}[）)]$")
_NEWS_OPENING = re.compile(r"^(?:本报讯|新华社|人民网|央视网|中新网|据.{1,10}报道)")
_DATE_LINE = re.compile(r"^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日$")
_BYLINE_START = re.compile(r"[□■◆◇●○▲△★☆▪▫◎姻]|文\s*[/／]|作者\s*[：:]")
_BYLINE_PREFIX = re.compile(r"^(?:文\s*[/／]|作者\s*[：:])\s*")
_NAME = re.compile(rf"[{CJK}]{{2,4}}|[{CJK}]{{1,8}}·[{CJK}]{{1,10}}")
_NAME_MARKS = re.compile(r"[\d*＊†‡¹²³⁴⁵⁶⁷⁸⁹⁰]+$")
_EN_NAMES = re.compile(r"^[A-Z][A-Za-z'’\-]+(?:,?\s+(?:and\s+)?[A-Z][A-Za-z'’\-.]*){1,11}[\d*,\s]*$")
_POSTCODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
_ORG_END = re.compile(r"(?:公司|大学|学院|研究院|研究所|研究中心|中心|集团|委员会|党校|医院|学校|银行|厂|矿|局|处|站"
                      r"|University|Institute|College|Academy|Ltd\.?|Company|Corporation)"
                      r"(?:[\s，,]+[\w·]{2,12}){0,4}$")
_REF_ITEM = re.compile(r"^(?:[\[［]\s*\d{1,3}\s*[\]］]|\d{1,3}[.、．]\s*\S|[（(]\d{1,3}[）)])")
_NOTICE_WORDS = ("拍卖", "竞买", "竞拍", "竞价", "招标", "投标", "中标", "公告", "公示", "启事", "声明", "保证金",
                 "报名", "开户行", "账号", "咨询电话", "联系电话", "监督电话", "联系人")
_CJK_CHAR = re.compile(f"[{CJK}]")
_NOT_CJK = re.compile(f"[^{CJK}]+")


def _numbering(text: str) -> tuple[str, int, str] | None:
    """(family, depth, rest) when `text` starts with a section or item number."""
    for family, pattern in _NUMBERINGS:
        m = pattern.match(text)
        if m and m.end() < len(text):
            depth = len(re.findall(r"\d+", m.group())) if family == "dec" else 0
            return family, depth, text[m.end():]
    return None


def _strip_colon(text: str) -> str:
    return re.sub(r"\s*[：:]$", "", text)


def _heading(raw: str, text: str) -> Heading | None:
    """The heading a whole line makes, or None (run-in headings are found by `_run_in`)."""
    if not text:
        return None
    md = re.match(r"^\s{0,3}(#{1,6})\s+\S", raw)
    bold = re.fullmatch(r"\s*(?:\*\*|__)(.+?)(?:\*\*|__)\s*[：:]?\s*", raw)
    kw = _KEYWORD_HEADING.match(text)
    num = _numbering(text)
    refs = bool(kw and _REFERENCE_WORDS.fullmatch(re.sub(r"\s", "", kw.group("kw"))))
    if md:
        level = len(md.group(1))
        if num:
            return Heading(_strip_colon(text), num[0], num[1], level, _is_refs(num[2]))
        if kw:
            return Heading(_strip_colon(text), "kw", 0, level, refs)
        return Heading(_strip_colon(text), "md", level, level)
    if kw:
        return Heading(_strip_colon(text), "kw", 0, 0, refs)
    if num:
        family, depth, rest = num
        rest = rest.strip()
        if (rest and len(rest) <= _MAX_HEADING and not _SENT_PUNCT.search(rest)
                and not re.search(r"[，,、]$", rest)):
            return Heading(_strip_colon(text), family, depth, 0, _is_refs(rest))
        return None
    if bold and len(text) <= _MAX_HEADING and not _SENT_PUNCT.search(text) and not _LABEL.match(text):
        return Heading(_strip_colon(text), "bold", 0)
    return None


def _is_refs(rest: str) -> bool:
    return bool(_REFERENCE_WORDS.fullmatch(_strip_colon(re.sub(r"\s", "", rest))))


def _run_in(text: str) -> Heading | None:
    """`（一）完善组织体系建设。工会工作……`: a short numbered phrase closed by 。 at the start of a paragraph."""
    num = _numbering(text)
    if not num:
        return None
    family, depth, rest = num
    if family == "chapter":
        return None
    m = re.match(r"^(.{1,24}?)(?:。|\s+(?=" + LIST_ITEM.pattern[1:] + "))", rest)
    if not m or _ANY_PUNCT.search(m.group(1)):
        return None
    return Heading(text[:len(text) - len(rest)] + m.group(1), family, depth)


def _names(tokens: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """(trailing person names, the tokens before them): `刘 莹` -> 刘莹, single characters in a row form one name."""
    merged: list[str] = []
    of_singles = False              # whether merged[-1] was built from single characters only
    for tok in tokens:
        tok = _NAME_MARKS.sub("", tok)
        single = len(tok) == 1 and bool(_CJK_CHAR.fullmatch(tok))
        if single and of_singles:
            merged[-1] += tok
        else:
            merged.append(tok)
            of_singles = single
    k = len(merged)
    while k > 0 and _NAME.fullmatch(merged[k - 1]):
        k -= 1
    return tuple(merged[k:]), merged[:k]


def _split_tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[\s,，、;；]+", text) if t]


def _byline(raw: str) -> tuple[tuple[str, ...], str] | None:
    """(authors, affiliation) of a marked byline: `□ 刘 莹`, `姻平煤神马建工集团建井一处 李宁坡`, `作者：张三`."""
    if not _BYLINE_START.match(raw.lstrip()):      # cheap test first: most lines are not bylines
        return None
    line = clean_meta(raw)
    rest = strip_glyphs(line)
    if rest == line:                               # no glyph: a written prefix, or not a byline
        m = _BYLINE_PREFIX.match(line)
        if not m:
            return None
        rest = line[m.end():]
    if not rest or len(rest) > 50 or _SENT_PUNCT.search(rest):
        return None
    names, before = _names(_split_tokens(rest))
    return (names, " ".join(before)) if names else None


def _byline_parts(raw: str, script: str) -> list[str]:
    """A byline as shown: its words one per line (`平煤神马建工集团建井一处` / `李宁坡`), glyph dropped.

    Words are taken verbatim from the cleaned line, so a chunk quoting them quotes its source.
    """
    text = strip_glyphs(clean_meta(raw))
    if script == "en":
        return [text]
    words: list[str] = []
    single_run = False
    for word in text.split():
        single = len(word) == 1 and bool(_CJK_CHAR.fullmatch(word))
        if single and single_run:
            words[-1] += word                      # `刘 莹` is one name
        else:
            words.append(word)
            single_run = single
    return [collapse_spaces(w) for w in words]


def _plain_names(raw: str) -> tuple[str, ...]:
    """Authors of a line that holds only names: `杨晓炜`, `曾程 杜淏天`, `Cheng Zeng Gengtian Du`."""
    if len(raw) > 120:
        return ()
    text = clean_meta(raw)
    if _EN_NAMES.match(text) and len(text) <= 80:
        return tuple(p.strip() for p in re.split(r",|\band\b", text) if p.strip())
    tokens = _split_tokens(text)
    if not 1 <= len(tokens) <= 8 or _KEYWORD_HEADING.match(text) or _LABEL.match(text):
        return ()
    names, before = _names(tokens)
    return () if before else names


def _is_affiliation(text: str) -> bool:
    if len(text) > 120 or re.search(r"[。！？]", text):
        return False
    return bool(_POSTCODE.search(text) or _ORG_END.search(text))


def _script(text: str) -> str:
    cjk = len(_CJK_CHAR.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk >= latin / 4 else "en" if latin else ""


def _title_like(text: str, script: str) -> bool:
    if script == "zh":
        return 4 <= len(text) <= 60 and not re.search(r"[。！？；，、：:,;!?]$", text) and "。" not in text
    words = text.split()
    return 3 <= len(words) and len(text) <= 300 and not re.search(r"[.;:,]$", text)


# ------------------------------------------------------------------------------------------- line records

@dataclass(slots=True)
class _Line:
    """A source line and what it is; mutable while the passes refine the first guess."""
    no: int
    raw: str
    text: str
    # blank / text / heading / cont (a wrapped heading's tail) / runin / label / caption / closing / news_mark /
    # headline / byline / title / date
    kind: str = "text"
    heading: Heading | None = None
    label: str = ""
    rest: str = ""


def _classify(raw_lines: list[str]) -> list[_Line]:
    lines = [_Line(i + 1, raw, clean_line(raw)) for i, raw in enumerate(raw_lines)]
    for ln in lines:
        t = ln.text
        if not t:
            ln.kind = "blank"
        elif _CLOSING.match(t):
            ln.kind = "closing"
        elif _NEWS_MARK.match(t):
            ln.kind = "news_mark"
        elif m := _LABEL.match(t):
            kind = next(k for k, _ in _LABELS if m.group(k))
            ln.kind, ln.label, ln.rest = "label", kind, m.group("rest").strip()
        elif _CAPTION.match(t) and len(t) <= 60 and not _SENT_PUNCT.search(t):
            ln.kind = "caption"
        elif h := _heading(ln.raw, t):
            ln.kind, ln.heading = "heading", h
        elif _DATE_LINE.match(t):
            ln.kind = "date"
        elif _byline(ln.raw):
            ln.kind = "byline"
        elif h := _run_in(t):
            ln.kind, ln.heading = "runin", h
    _closing_tails(lines)
    _refine_headings(lines)
    return lines


def _nonblank_after(lines: list[_Line], i: int) -> int | None:
    for j in range(i + 1, len(lines)):
        if lines[j].kind != "blank":
            return j
    return None


def _nonblank_before(lines: list[_Line], i: int) -> int | None:
    for j in range(i - 1, -1, -1):
        if lines[j].kind != "blank":
            return j
    return None


def _closing_tails(lines: list[_Line]) -> None:
    # `（作者单位：山西汾河焦煤` / `股份有限公司三交河煤矿）`: the closing line is wrapped until its bracket closes.
    for i, ln in enumerate(lines):
        if ln.kind != "closing" or re.search(r"[）)]$", ln.text):
            continue
        j = i
        for _ in range(2):
            j = _nonblank_after(lines, j)
            if j is None or lines[j].kind not in ("text", "blank"):
                break
            lines[j].kind = "closing"
            if re.search(r"[）)]$", lines[j].text):
                break


def _refine_headings(lines: list[_Line]) -> None:
    """Numbered lines that turn out to be wrapped sentences go back to text; wrapped headings get their tails."""
    for i, ln in enumerate(lines):
        h = ln.heading
        if ln.kind != "heading" or h is None or h.md_level or h.family in ("kw", "bold"):
            continue
        j = _nonblank_after(lines, i)
        nxt = lines[j] if j is not None else None
        if nxt is not None and nxt.kind == "text" and _continues_sentence(ln.text, nxt.text):
            ln.kind, ln.heading = "text", None
            continue
        tails: list[int] = []
        parts = [ln.text]
        while nxt is not None and len(tails) < 2 and nxt.kind == "text" and not _ANY_PUNCT.search(nxt.text) \
                and sum(map(len, parts)) + len(nxt.text) <= _MAX_HEADING + 10:
            k = _nonblank_after(lines, j)
            followed_by_heading = k is not None and lines[k].kind in ("heading", "runin")
            if not (followed_by_heading or len(nxt.text) <= 0.6 * len(ln.text)):
                break
            tails.append(j)
            parts.append(nxt.text)
            j = k
            nxt = lines[j] if j is not None else None
        if tails:
            text = join_lines(parts)
            ln.heading = Heading(_strip_colon(text), h.family, h.depth, h.md_level, _is_refs(text))
            for t in tails:
                lines[t].kind = "cont"


def _continues_sentence(head: str, nxt: str) -> bool:
    # `2、有意竞买者实地查勘……现状` / `后，在规定时间内……`: the next line finishes the numbered line's clause.
    if re.match(rf"^[{CJK}][，。、；：！？]", nxt):
        return True
    return len(head) >= 16 and len(nxt) <= 10 and ends_sentence(nxt) and not _ANY_PUNCT.search(nxt[:-1])


# ------------------------------------------------------------------------------------------- title blocks

@dataclass(slots=True)
class _TitleBlock:
    title_lines: list[int]          # indexes into lines
    byline: int
    authors: tuple[str, ...]
    affiliation: str
    script: str                     # zh / en
    english: "_TitleBlock | None" = None   # on a Chinese block: the English title block of the same article
    joined: "_TitleBlock | None" = None    # on an English block: the Chinese block it belongs with

    @property
    def first(self) -> int:
        return self.title_lines[0]

    @property
    def last(self) -> int:
        return self.byline

    def title(self, lines: list[_Line]) -> str:
        return join_lines([lines[i].text for i in self.title_lines])


def _title_blocks(lines: list[_Line]) -> list[_TitleBlock]:
    blocks: list[_TitleBlock] = []
    taken: set[int] = set()
    for i, ln in enumerate(lines):
        if ln.kind == "byline":
            parsed = _byline(ln.raw)
            assert parsed is not None
            authors, affiliation = parsed
            marked = True
        elif ln.kind == "text" and (authors := _plain_names(ln.raw)):
            affiliation, marked = "", False
        else:
            continue
        script = "en" if re.match(r"[A-Za-z]", authors[0]) else "zh"
        titles: list[int] = []
        j = _nonblank_before(lines, i)
        while j is not None and j not in taken and len(titles) < 3:
            cand = lines[j]
            md_title = cand.kind == "heading" and cand.heading is not None and \
                (cand.heading.family == "bold" or cand.heading.family == "md" and cand.heading.depth <= 2)
            if not (cand.kind == "text" or md_title) or _script(cand.text) != script \
                    or not _title_like(cand.text, script) \
                    or (script == "zh" and sum(len(lines[t].text) for t in titles) + len(cand.text) > 80):
                break
            titles.insert(0, j)
            j = _nonblank_before(lines, j)
        if not titles:
            continue
        if not marked:
            # A bare name line is a byline only in front matter: an affiliation, abstract or keywords follows,
            # the title is a markdown heading, or nothing comes before the title.
            k = _nonblank_after(lines, i)
            follows = k is not None and (lines[k].kind == "label" or _is_affiliation(lines[k].text))
            md_title = lines[titles[0]].kind == "heading"
            if not (follows or md_title or _nonblank_before(lines, titles[0]) is None):
                continue
        for t in titles:
            lines[t].kind = "title"
        ln.kind = "byline"
        taken.update(titles + [i])
        blocks.append(_TitleBlock(titles, i, authors, affiliation, script))
    return blocks


# ------------------------------------------------------------------------------------------------ pieces

@dataclass(slots=True)
class _Piece:
    """A run of lines between cut points: a title block, or body text."""
    first: int
    last: int
    title: _TitleBlock | None = None
    closed: bool = False
    news: bool = False
    owner: "_TitleBlock | None" = None     # on a body: the title block of its article

    @property
    def is_body(self) -> bool:
        return self.title is None


def _pieces(lines: list[_Line], tbs: list[_TitleBlock]) -> list[_Piece]:
    by_first = {tb.first: tb for tb in tbs}
    for i, ln in enumerate(lines):
        if ln.kind == "news_mark":
            j = _nonblank_before(lines, i)
            if j is not None and lines[j].kind == "text" and len(lines[j].text) <= 80 \
                    and not _SENT_PUNCT.search(lines[j].text):
                lines[j].kind = "headline"
    pieces: list[_Piece] = []
    cur: _Piece | None = None
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.kind == "blank":
            i += 1
            continue
        if i in by_first:
            tb = by_first[i]
            pieces.append(_Piece(tb.first, tb.last, title=tb))
            cur = None
            i = tb.last + 1
            continue
        if cur is None or ln.kind == "headline":
            cur = _Piece(i, i)
            pieces.append(cur)
        cur.last = i
        if ln.kind in ("news_mark", "headline"):
            cur.news = True
        j = _nonblank_after(lines, i)
        ends_closing = ln.kind == "closing" and (j is None or lines[j].kind != "closing")
        if ends_closing or ln.kind == "date":
            cur.closed = ends_closing
            cur = None
        i += 1
    for p in pieces:
        if p.is_body and not p.news:
            first = next((lines[k].text for k in range(p.first, p.last + 1) if lines[k].kind != "blank"), "")
            p.news = bool(_NEWS_OPENING.match(first))
    return pieces


def _bigrams(text: str) -> Counter:
    han = _NOT_CJK.sub("", text)
    return Counter(map(str.__add__, han, han[1:]))


class _Affinity:
    """How much a title's vocabulary stands out in a body, against the other bodies of the same file (tf-idf).

    Counted lazily: most files never need it (one article, or no title block with a body on both sides).
    """

    def __init__(self, lines: list[_Line], bodies: list[_Piece]):
        self.lines, self.bodies = lines, bodies
        self._counts: dict[int, Counter] | None = None

    def _prepare(self) -> dict[int, Counter]:
        if self._counts is None:
            lines = self.lines
            self._counts = {id(p): _bigrams("".join(ln.text for ln in lines[p.first:p.last + 1]))
                            for p in self.bodies}
            df = Counter(b for c in self._counts.values() for b in c)
            n = len(self.bodies)
            self.idf = {b: math.log((1 + n) / (1 + d)) + 1 for b, d in df.items()}
            self.sizes = {k: max(1, sum(c.values())) for k, c in self._counts.items()}
        return self._counts

    def score(self, title: str, body: _Piece) -> float:
        counts = self._prepare().get(id(body), Counter())
        size = self.sizes.get(id(body), 1)
        grams = set(_bigrams(title))
        if not grams:
            return 0.0
        total = sum(self.idf.get(b, 1.0) for b in grams)
        return sum(self.idf.get(b, 1.0) * math.log1p(1000 * counts[b] / size) for b in grams) / total


def _link_english(lines: list[_Line], pieces: list[_Piece]) -> None:
    """An English title block joins a Chinese article: the one whose title block follows it with only English
    front matter between, or else (English matter printed at the end) the Chinese article before it."""
    for k, p in enumerate(pieces):
        if p.title is None or p.title.script != "en":
            continue
        nxt = k + 1
        if nxt < len(pieces) and pieces[nxt].is_body and _all_english(lines, pieces[nxt]):
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


def _assign(lines: list[_Line], pieces: list[_Piece]) -> None:
    """Give every body its title block (`owner`) where the layout allows; see the module docstring."""
    _link_english(lines, pieces)
    bodies = [p for p in pieces if p.is_body and p.owner is None]
    affinity = _Affinity(lines, bodies)
    first_content = next((p for p in pieces if not (p.is_body and p.owner is not None)), None)
    titles_trail = first_content is not None and first_content.is_body and not first_content.news
    own = [(k, p.title) for k, p in enumerate(pieces) if p.title is not None and p.title.joined is None]
    displaced: list[_TitleBlock] = []
    for k, tb in own:
        if k + 1 < len(pieces) and pieces[k + 1].title is not None and pieces[k + 1].title.joined is None:
            displaced.append(tb)
            continue
        prev = pieces[k - 1] if k > 0 and _free(pieces[k - 1]) and not pieces[k - 1].closed else None
        nxt = pieces[k + 1] if k + 1 < len(pieces) and _free(pieces[k + 1]) else None
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
        free = [p for p in pieces if _free(p) and _articleish(lines, p)]
        if free:
            title = tb.title(lines)
            max(free, key=lambda p: (affinity.score(title, p), -p.first)).owner = tb


def _free(p: _Piece) -> bool:
    return p.is_body and p.owner is None and not p.news


def _all_english(lines: list[_Line], p: _Piece) -> bool:
    return not any(_CJK_CHAR.search(lines[k].text) for k in range(p.first, p.last + 1))


def _articleish(lines: list[_Line], p: _Piece) -> bool:
    span = lines[p.first:p.last + 1]
    return p.closed or any(ln.kind in ("heading", "runin") for ln in span) or sum(len(ln.text) for ln in span) >= 300


def _is_notice(lines: list[_Line], p: _Piece) -> bool:
    text = "".join(lines[k].text for k in range(p.first, p.last + 1))
    return sum(1 for w in _NOTICE_WORDS if w in text) >= 4


# ------------------------------------------------------------------------------------------------ blocks

@dataclass(slots=True)
class _State:
    kind: str                                   # segment kind: headings are read in articles only
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

    def path(self) -> tuple[str, ...]:
        return tuple(h.text for h in self.stack)

    def push(self, h: Heading) -> None:
        if not self.first_heading:
            self.first_heading = h.text
            if h.md_level == 1 and h.family == "md" and not self.blocks and not self.run:
                self.md_title = h.text
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
        self.blocks.append(Block(kind, headings, "".join(pieces), tuple(n for n, _ in items), starts, self.barrier))

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
        self.flush_front()
        if not self.run:
            return
        texts = [t for _, t in self.run]
        if self.mode == "references":
            ranges = split_wrapped(texts, breaks_before=lambda s: bool(_REF_ITEM.match(s)))
            merged: list[tuple[int, int]] = []
            for a, b in ranges:   # a reference item ends only where the next one starts
                if merged and not _REF_ITEM.match(texts[a]):
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


def _top_family(lines: list[_Line], spans: list[tuple[int, int]]) -> tuple[str, int] | None:
    for a, b in spans:
        for ln in lines[a:b + 1]:
            if ln.kind in ("heading", "runin") and ln.heading and ln.heading.family != "kw":
                return ln.heading.family, ln.heading.depth
    return None


def _body_blocks(lines: list[_Line], a: int, b: int, st: _State, front: bool) -> None:
    """Blocks of lines[a..b]; `front` when the span opens right after its title block (affiliations allowed)."""
    structural = st.kind in ("article", "other")
    for ln in lines[a:b + 1]:
        kind = ln.kind
        if not structural and kind in ("heading", "cont", "runin", "caption"):
            kind = "text"       # notices and news: `二、展示时间：……` is content, not a section
        if st.mode == "references" and kind in ("heading", "runin") and ln.heading is not None \
                and ln.heading.family not in ("kw", "md", "cn", "cn-paren", "chapter"):
            kind = "text"       # `1. 作者. 题名[J]. ……` is the next reference, not a section
        if kind == "blank":
            continue
        if kind in ("label", "heading", "cont", "news_mark", "headline", "title", "closing", "byline"):
            # Not chunk text: a chunk citing lines around it would cite text it does not show.
            st.flush()
            st.barrier += 1
        if kind == "label":
            front = False if ln.label in ("bio",) else front
            if ln.label == "doi":
                m = _DOI.search(ln.rest) or _DOI.search(ln.text)
                st.doi = st.doi or (m.group().rstrip(".,，。)）") if m else "")
                st.emit_parts("front", [(ln.no, ln.text)])     # askable: "这篇文章的DOI是多少？"
            elif ln.label != "meta":
                st.mode = ln.label
                if ln.rest:
                    _add_text(st, ln.no, ln.rest)
            continue
        if kind == "heading":
            st.flush()
            front = False
            assert ln.heading is not None
            st.push(ln.heading)
            continue
        if kind == "runin":
            st.flush()
            front = False
            assert ln.heading is not None
            st.push(ln.heading)
            _add_text(st, ln.no, ln.text)
            continue
        if kind == "caption":
            st.flush()
            st.emit("caption", [(ln.no, ln.text)])
            continue
        if kind in ("cont", "news_mark", "headline", "title"):
            continue
        if kind == "closing":
            st.closing.append(clean_meta(ln.raw))
            continue
        if kind == "byline":
            parsed = _byline(ln.raw)
            if parsed and not st.stray_authors:
                st.stray_authors = parsed[0]
            continue
        if front and st.mode == "body" and _is_affiliation(ln.text):
            st.affiliations.append(clean_meta(ln.raw))
            st.front.append((ln.no, ln.text))      # shown with the title and authors, one chunk
            continue
        front = front and st.mode != "body"
        _add_text(st, ln.no, ln.text)


def _add_text(st: _State, no: int, text: str) -> None:
    if st.mode == "references":
        st.run.append((no, text))
        return
    st.run.append((no, text))
    if st.mode in ("abstract", "bio") and ends_sentence(text):
        st.flush()
    elif st.mode == "keywords" and not re.search(r"[；;,，、]$", text):
        st.flush()


def _fallback_title(st: _State) -> str:
    if st.first_heading:
        return st.first_heading
    text = next((b.text for b in st.blocks if b.kind == "body"), "")
    first = re.split(r"(?<=[。！？；])", text, maxsplit=1)[0]
    return first if len(first) <= 24 else first[:24] + "…"


def _closing_affiliation(parts: list[str]) -> str:
    """`（作者单位：山西汾河焦煤` + `股份有限公司三交河煤矿）` -> 山西汾河焦煤股份有限公司三交河煤矿."""
    return re.sub(r"^[（(]\s*(?:作者单位|作者工作单位|单位)\s*[：:]\s*|[）)]\s*$", "", join_lines(parts))


def parse_document(text: str) -> tuple[Segment, ...]:
    """Segments (articles, notices, news items) of one decoded file, each with its blocks in line order."""
    lines = _classify(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    pieces = _pieces(lines, _title_blocks(lines))
    _assign(lines, pieces)
    # One segment per title block (with the pieces it owns and its English block) or per untitled body.
    groups: dict[int, tuple[_TitleBlock | None, list[_Piece]]] = {}
    for p in pieces:
        head = (p.title.joined or p.title) if p.title is not None else p.owner
        groups.setdefault(id(head) if head is not None else id(p), (head, []))[1].append(p)
    drafts = []
    for head, members in groups.values():
        members.sort(key=lambda p: p.first)
        bodies = [p for p in members if p.is_body]
        drafts.append(((bodies or members)[0].first, head, members))
    drafts.sort(key=lambda d: d[0])
    return tuple(_segment(index, lines, head, members) for index, (_, head, members) in enumerate(drafts))


def _title_parts(lines: list[_Line], tb: _TitleBlock) -> list[tuple[int, str]]:
    """The title block as shown: the title, then the byline's affiliation and each author on a line of its own.

    Each part is text of its source line in source order, so the chunk quotes its lines (glyph `□`/`姻` aside).
    """
    title = join_lines([lines[i].text for i in tb.title_lines])
    byline = lines[tb.byline]
    return [(lines[tb.first].no, title), *((byline.no, w) for w in _byline_parts(byline.raw, tb.script))]


def _segment(index: int, lines: list[_Line], tb: _TitleBlock | None, members: list[_Piece]) -> Segment:
    bodies = [p for p in members if p.is_body]
    if tb is not None:
        kind = "article" if bodies else "other"
    elif any(p.news for p in bodies):
        kind = "news"
    elif _is_notice(lines, bodies[0]) and not any(p.closed for p in bodies):
        kind = "notice"
    elif any(_articleish(lines, p) for p in bodies):
        kind = "article"
    else:
        kind = "other"
    st = _State(kind, _top_family(lines, [(p.first, p.last) for p in bodies]))
    headline = ""
    after_title = False
    for p in members:
        if not after_title:      # the title block's parts wait for the affiliation lines after it
            st.flush()
        st.barrier += 1          # pieces are cut at title blocks, closings and dates: never one chunk across
        if p.title is not None:
            st.flush_front()
            st.front = _title_parts(lines, p.title)
            after_title = True
            continue
        if kind == "news":
            for ln in lines[p.first:p.last + 1]:
                if ln.kind == "headline" and not headline:
                    headline = ln.text
                    st.emit("front", [(ln.no, ln.text)])
        closing_before = len(st.closing)
        _body_blocks(lines, p.first, p.last, st, front=after_title)
        if len(st.closing) > closing_before:     # `（作者单位：……）` is shown too: "王涛在哪个单位工作？"
            st.flush()
            st.emit("front", [(ln.no, ln.text) for ln in lines[p.first:p.last + 1] if ln.kind == "closing"])
        after_title = False
    st.flush()

    if tb is not None:
        title, fallback, authors = tb.title(lines), False, tb.authors
    elif headline:
        title, fallback, authors = headline, False, st.stray_authors
    elif st.md_title:
        title, fallback, authors = st.md_title, False, st.stray_authors
    else:
        title, fallback, authors = _fallback_title(st), True, st.stray_authors
    title_en = tb.english.title(lines) if tb is not None and tb.english is not None else ""
    # The byline's affiliation, else the front matter's (Chinese first), else the closing `（作者单位：……）`.
    front = sorted(st.affiliations, key=lambda a: not _CJK_CHAR.search(a))
    affiliation = (clean_meta(tb.affiliation) if tb is not None and tb.affiliation else "") or \
        (front[0] if front else "") or (_closing_affiliation(st.closing) if st.closing else "")
    line_nos = [n + 1 for p in members for n in (p.first, p.last)]
    return Segment(index, kind, title, fallback, title_en, tuple(authors), affiliation, st.doi,
                   tuple(sorted(st.blocks, key=lambda b: b.line_start)), min(line_nos), max(line_nos))

"""Word (.docx): the body's paragraphs and tables in reading order; heading styles as markdown headings.

What is read, and why:
- Only the body of `word/document.xml`. Page headers and footers live in their own parts (`header1.xml`,
  `footer1.xml`) and are never read, so running heads and page numbers stay out of the text.
- The package is opened with python-docx (content types, relationships, styles, core properties); the body is
  walked on its XML, because python-docx's paragraph text skips tracked insertions (`w:ins`), content controls
  (`w:sdt`) and text boxes, which real documents use. Deleted text (`w:del`), field codes (`w:instrText`) and
  the fallback copy of a drawing (`mc:Fallback`, a duplicate of `mc:Choice`) are left out.
- One line per paragraph, an empty line between paragraphs; a soft line break (`w:br`) starts a new line in the
  same paragraph. Table rows are one line each, cells joined by " | "; a row with a single filled cell (a layout
  table holding, say, a whole law) gives that cell's paragraphs as paragraphs.
- Headings: a paragraph whose style (or its `basedOn` chain) is "Title" becomes `# text`, "heading N" or an
  outline level N-1 becomes `#`*N + " " + text. A document without a title style whose first paragraph is a
  short centred line without sentence punctuation (how laws and notices are typeset) gets it as `# text`.
- Word's automatic numbering (numbering.xml: 「第一章」, 「（一）」, 「1.」) is not in the text runs; it is counted in
  body order and written in front of each numbered paragraph, so headings and 条 keep their numbers.
- Metadata: the title is the body's own title (title style or that centred first line); the core title only
  when the body has none, because core titles are often a template's (two of the dev laws say
  「法规修改决定电子报备格式标准及示例」). The core author is kept only when it looks like a person's name or an
  organisation: account and machine names ("Administrator", "User", "Lenovo", "微软用户") are not authors.
  A law's adoption line under the title (「（2007年12月29日第十届…常务委员会第三十一次会议通过）」) gives the date
  and the adopting body (`source`); core created/modified dates are when the file was saved, not the text's date.
- Checked by content, not by the file's ending: an OLE compound file (D0 CF 11 E0) is an encrypted .docx or an old
  binary .doc; a zip without `word/document.xml` is corrupt. Declared uncompressed sizes are checked before
  anything is inflated (zip bombs).
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace

from index.document import DocMeta, Document
from index.normalize import CJK
from index.readers import ReadContext, Unreadable

MAX_DOCUMENT_XML = 200 * 2**20      # uncompressed bytes of word/document.xml: far above any real text
MAX_PACKAGE = 1024 * 2**20          # all entries together: python-docx loads every part (images too) into memory
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAX_TITLE = 80                     # characters: a longer centred first line is a sentence, not a title
_MAX_HEADING = 6

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_P, _TBL, _TR, _TC, _SDT, _SDT_CONTENT = (_W + t for t in ("p", "tbl", "tr", "tc", "sdt", "sdtContent"))
_T, _TAB, _BR, _CR, _NBH = (_W + t for t in ("t", "tab", "br", "cr", "noBreakHyphen"))
_TXBX = _W + "txbxContent"
# Subtrees whose text is not the document's visible text (or is a duplicate of it).
_SKIP = {_W + t for t in ("del", "moveFrom", "delText", "instrText", "delInstrText", "pPr", "rPr", "footnoteReference",
                          "endnoteReference", "commentReference")} | {_MC_FALLBACK}
# Block-level wrappers whose children are paragraphs and tables in order.
_WRAPPERS = {_W + t for t in ("sdtContent", "customXml", "ins", "moveTo", "smartTag")}
_SENTENCE_PUNCT = re.compile(r"[。！？；!?;，,：:]")

# Core "author" values that name an account, a machine or a program, not whoever wrote the text.
_NOT_AUTHORS = re.compile(
    r"^(?:administrator|admin|user|users|owner|guest|author|default|test|unknown|microsoft.*|windows.*|office.*|"
    r"wps.*|kingsoft.*|.*\buser|lenovo|thinkpad|dell|hp|asus|acer|huawei|xiaomi|apple|mac|pc|computer|"
    r"微软用户|微软中国|用户|作者|系统管理员|管理员|匿名|未知|佚名|[a-z]?\d+)$", re.I)
_PERSON_ZH = re.compile(rf"^[{CJK}]{{2,4}}(?:·[{CJK}]{{1,6}})?$")
_ORG_ZH = re.compile(rf"^[{CJK}（）()]{{2,40}}(?:部|委|委员会|局|厅|院|署|办|办公室|办公厅|中心|协会|学会|研究会|公司|集团|"
                     rf"大学|学院|学校|银行|政府|法院|检察院|党委|党组|支部|工作组|小组|社|报|研究所|所|处|科|站)$")
_PERSON_EN = re.compile(r"^[A-Z][a-z'’-]+(?:\s+[A-Z]\.?)*(?:\s+[A-Z][a-z'’-]+)+$")     # "Jane Smith", "J. R. Doe"?
_JUNK_TITLES = re.compile(r"^(?:文档\s*\d*|新建.*文档.*|无标题.*|untitled.*|document\s*\d*|doc\d*|title|标题|"
                          r"microsoft word\s*-.*|\W*)$", re.I)


def read(data: bytes, ctx: ReadContext) -> Document:
    _check_package(data)
    doc = _open(data)
    try:
        body = doc.element.body
    except AttributeError as e:      # a document.xml whose root is not w:document
        raise Unreadable(f"corrupt Word file: {_one_line(e)}") from None
    if body is None:
        raise Unreadable("corrupt Word file: word/document.xml has no body")
    styles = _Styles(doc)
    try:
        items = [it for it in _Walker(styles, _Numbering(doc)).blocks(body) if any(it.lines)]
    except RecursionError:           # tables in tables thousands deep: no real document does that
        raise Unreadable("corrupt Word file: nested too deeply to read") from None
    styled_title = any(it.level == 0 for it in items)
    lines: list[str] = []
    title = ""
    for n, it in enumerate(items):
        level = it.level
        if n == 0 and level is None and not styled_title and _looks_like_title(it):
            level = 0                # a centred short first line: the printed title of a law or notice
        if level is not None:
            text = " ".join(t for t in it.lines if t)
            if level == 0 and not title:
                title = text
            block = ["#" * max(1, level) + " " + text]
        else:
            block = [t for t in it.lines if t]
        # Rows of one table are consecutive lines; everything else is separated by an empty line.
        if lines and not (it.kind == "row" and items[n - 1].kind == "row"):
            lines.append("")
        lines.extend(block)
    # A law's adoption line under its title gives the date and the body that adopted it (no other date is stated).
    from index.readers.html import adoption
    date, body_name = next((adoption(t) for it in items[:6] for t in it.lines if adoption(t)[0]), ("", ""))
    return Document("docx", tuple(lines), meta=replace(_meta(doc, title), date=date, source=body_name))


def _looks_like_title(it: "_Item") -> bool:
    text = " ".join(t for t in it.lines if t)
    return (it.kind == "p" and it.centred and len(text) <= _MAX_TITLE and len(it.lines) <= 2
            and not _SENTENCE_PUNCT.search(text))


def _meta(doc, body_title: str) -> DocMeta:
    try:
        core = doc.core_properties
        core_title, creator = (core.title or "").strip(), (core.author or "").strip()
    except Exception:                # a damaged docProps/core.xml costs the metadata, not the text
        core_title, creator = "", ""
    title = body_title or ("" if _JUNK_TITLES.match(core_title) else _clean(core_title))
    return DocMeta(title=title, authors=authors_of(creator))


def authors_of(creator: str) -> tuple[str, ...]:
    """The core `creator` as authors: only the names that look like a person or an organisation."""
    out: list[str] = []
    for name in re.split(r"[;；,，、/]+", creator):
        name = " ".join(name.split())
        if not name or _NOT_AUTHORS.match(name):
            continue
        if _PERSON_ZH.match(name) or _ORG_ZH.match(name) or _PERSON_EN.match(name):
            out.append(name)
    return tuple(out)


def _clean(text: str) -> str:
    # Indentation (ideographic spaces, tabs) is layout; the text keeps its inner spaces as typed.
    return text.strip(" \t\u3000\u00a0\r\ufeff")


# ------------------------------------------------------------------------------------------------ the package

def _check_package(data: bytes) -> None:
    if data.startswith(_OLE):
        # An OOXML file protected by a password is wrapped in a compound file with an "EncryptedPackage" stream;
        # a Word 97-2003 .doc has a "WordDocument" stream. Stream names are UTF-16LE in the directory.
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise Unreadable("encrypted Word file")
        raise Unreadable("old binary .doc format; save it as .docx")
    if not data.startswith(b"PK"):
        raise Unreadable("not a Word file (not a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise Unreadable("not a Word file (corrupt zip archive)") from None
    names = {i.filename: i for i in infos}
    main = names.get("word/document.xml")
    if main is None:
        if "xl/workbook.xml" in names:
            raise Unreadable("not a Word file (an Excel workbook)")
        if "ppt/presentation.xml" in names:
            raise Unreadable("not a Word file (a PowerPoint presentation)")
        if "mimetype" in names or "content.xml" in names:
            raise Unreadable("not a Word file (an OpenDocument file; save it as .docx)")
        raise Unreadable("corrupt Word file: no word/document.xml in the archive")
    if any(i.flag_bits & 0x1 for i in infos):
        raise Unreadable("encrypted Word file")
    if main.file_size > MAX_DOCUMENT_XML:
        raise Unreadable(f"Word file too large: word/document.xml is {main.file_size // 2**20} MB uncompressed "
                         f"(limit {MAX_DOCUMENT_XML // 2**20} MB)")
    total = sum(i.file_size for i in infos)
    if total > MAX_PACKAGE:
        raise Unreadable(f"Word file too large: {total // 2**20} MB uncompressed (limit {MAX_PACKAGE // 2**20} MB)")


def _open(data: bytes):
    import docx                                          # imported on first use, like every reader's library
    from docx.opc.exceptions import PackageNotFoundError
    try:
        return docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile) as e:
        raise Unreadable(f"corrupt Word file: {_one_line(e)}") from None
    except ValueError as e:                              # python-docx: the main part is not a document
        msg = str(e)
        if "content type is" in msg:
            kind = msg.rsplit("content type is", 1)[1].strip(" '\"")
            raise Unreadable(f"not a .docx Word document (content type {kind})") from None
        raise Unreadable(f"corrupt Word file: {_one_line(e)}") from None
    except KeyError as e:
        # A relationship to a part that is not in the archive (「word/NULL」, a deleted image): Word opens such
        # files, python-docx does not. The text needs only document.xml, styles, numbering and core properties.
        raw = _raw_package(data)
        if raw is None:
            raise Unreadable(f"corrupt Word file: {_one_line(e)}") from None
        return raw
    except Exception as e:                               # XMLSyntaxError and the like
        raise Unreadable(f"corrupt Word file: {_one_line(e)}") from None


def _raw_package(data: bytes):
    """The few parts the reader uses, read straight from the zip, in the shape python-docx gives them."""
    from types import SimpleNamespace

    from lxml import etree
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)

    def part(name: str):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return etree.fromstring(z.read(name), parser)
        except (KeyError, etree.XMLSyntaxError, ValueError):
            return None

    root = part("word/document.xml")
    if root is None or root.find(_W + "body") is None:
        return None
    core = part("docProps/core.xml")
    dc = "{http://purl.org/dc/elements/1.1/}"
    text = (lambda tag: (core.findtext(dc + tag) or "") if core is not None else "")
    styles, numbering = part("word/styles.xml"), part("word/numbering.xml")
    return SimpleNamespace(
        element=SimpleNamespace(body=root.find(_W + "body")),
        styles=SimpleNamespace(element=styles) if styles is not None else None,
        part=SimpleNamespace(numbering_part=SimpleNamespace(element=numbering) if numbering is not None else None),
        core_properties=SimpleNamespace(title=text("title"), author=text("creator")))


def _one_line(e: Exception) -> str:
    text = " ".join(str(e).split()).strip("'\"") or type(e).__name__
    return text[:160]


# ------------------------------------------------------------------------------------------------ styles

class _Styles:
    """Paragraph style id -> heading level (0 = title, N = heading N), following `basedOn` chains."""

    def __init__(self, doc) -> None:
        self._levels: dict[str, int | None] = {}
        self._defs: dict[str, tuple[str, str | None, int | None]] = {}
        self._numpr: dict[str, tuple[str | None, int | None]] = {}
        self.centred: set[str] = set()
        try:
            root = doc.styles.element
        except Exception:                                # no styles part: every paragraph is plain
            root = None
        for st in (root.iter(_W + "style") if root is not None else ()):
            if st.get(_W + "type") not in (None, "paragraph"):
                continue
            sid = st.get(_W + "styleId") or ""
            name = _val(st.find(_W + "name")) or sid
            based = _val(st.find(_W + "basedOn"))
            ppr = st.find(_W + "pPr")
            outline = _int(_val(ppr.find(_W + "outlineLvl"))) if ppr is not None else None
            if ppr is not None and _val(ppr.find(_W + "jc")) == "center":
                self.centred.add(sid)
            if ppr is not None and ppr.find(_W + "numPr") is not None:
                self._numpr[sid] = _numpr(ppr.find(_W + "numPr"))
            self._defs[sid] = (name, based, outline)

    def numpr(self, sid: str | None, depth: int = 0) -> tuple[str | None, int | None]:
        """(numId, ilvl) a paragraph style gives its paragraphs (heading styles often carry 第一章/一、 numbering)."""
        if not sid or depth > 20:
            return None, None
        if sid in self._numpr:
            return self._numpr[sid]
        return self.numpr(self._defs.get(sid, ("", None, None))[1], depth + 1)

    def level(self, sid: str | None, depth: int = 0) -> int | None:
        if not sid or depth > 20:                        # 20: a basedOn cycle, or a chain no one writes
            return None
        if sid in self._levels:
            return self._levels[sid]
        name, based, outline = self._defs.get(sid, (sid, None, None))
        key = name.strip().lower().replace("_", " ")
        m = re.fullmatch(r"heading\s*(\d)|标题\s*(\d)", key)
        if key in ("title", "标题"):
            lvl: int | None = 0
        elif m:
            lvl = min(int(m.group(1) or m.group(2)), _MAX_HEADING) or None
        elif outline is not None and 0 <= outline < 9:   # outline level 9 is body text
            lvl = min(outline + 1, _MAX_HEADING)
        elif key.startswith(("toc", "目录", "caption", "header", "footer", "页眉", "页脚")):
            lvl = None
        else:
            lvl = self.level(based, depth + 1)
        self._levels[sid] = lvl
        return lvl


def _numpr(el) -> tuple[str | None, int | None]:
    if el is None:
        return None, None
    return _val(el.find(_W + "numId")), _int(_val(el.find(_W + "ilvl")))


# ------------------------------------------------------------------------------------------------ numbering

class _Numbering:
    """Word's automatic numbering (numbering.xml): the label of each numbered paragraph, counted in body order.

    Chinese documents number chapters, sections and items this way (「第一章」, 「一、」, 「（一）」), and the numbers
    are not in the text runs: without them the structure pass cannot see the headings, nor a citation the 条.
    """

    def __init__(self, doc) -> None:
        self._levels: dict[str, dict[int, tuple[int, str, str, str]]] = {}   # numId -> ilvl -> (start, fmt, text, suff)
        self._counts: dict[str, dict[int, int]] = {}
        try:
            root = doc.part.numbering_part.element
        except Exception:                                # no numbering part: nothing is numbered
            return
        abstract: dict[str, dict[int, tuple[int, str, str, str]]] = {}
        for an in root.iter(_W + "abstractNum"):
            abstract[an.get(_W + "abstractNumId") or ""] = {
                _int(lvl.get(_W + "ilvl")) or 0: _level_def(lvl) for lvl in an.iter(_W + "lvl")}
        for num in root.iter(_W + "num"):
            levels = dict(abstract.get(_val(num.find(_W + "abstractNumId")) or "", {}))
            for ov in num.iter(_W + "lvlOverride"):
                ilvl = _int(ov.get(_W + "ilvl")) or 0
                lvl = ov.find(_W + "lvl")
                start = _int(_val(ov.find(_W + "startOverride")))
                if lvl is not None:
                    levels[ilvl] = _level_def(lvl)
                if start is not None and ilvl in levels:
                    levels[ilvl] = (start, *levels[ilvl][1:])
            self._levels[num.get(_W + "numId") or ""] = levels

    def label(self, num_id: str, ilvl: int) -> str:
        levels = self._levels.get(num_id)
        if not levels or ilvl not in levels:
            return ""
        counts = self._counts.setdefault(num_id, {})
        counts[ilvl] = counts.get(ilvl, levels[ilvl][0] - 1) + 1
        for deeper in [k for k in counts if k > ilvl]:   # a new chapter restarts its sections
            del counts[deeper]
        start, fmt, text, suff = levels[ilvl]
        if fmt in ("bullet", "none") or not text:
            return ""

        def number(m: re.Match) -> str:
            k = int(m.group(1)) - 1
            lvl = levels.get(k)
            n = counts.get(k, lvl[0] if lvl else 1)
            return _format_number(n, lvl[1] if lvl else "decimal")

        label = re.sub(r"%([1-9])", number, text)
        return label + ("" if suff == "nothing" else " ")


def _level_def(lvl) -> tuple[int, str, str, str]:
    start = _int(_val(lvl.find(_W + "start")))
    return (1 if start is None else start, _val(lvl.find(_W + "numFmt")) or "decimal",
            _val(lvl.find(_W + "lvlText")) or "", _val(lvl.find(_W + "suff")) or "tab")


_CN_DIGITS = "〇一二三四五六七八九"
_CN_LEGAL = "零壹贰叁肆伍陆柒捌玖"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_TIANGAN = "甲乙丙丁戊己庚辛壬癸"


def _format_number(n: int, fmt: str) -> str:
    if fmt in ("chineseCounting", "chineseCountingThousand", "japaneseCounting", "taiwaneseCounting",
               "taiwaneseCountingThousand", "koreanCounting"):
        return _chinese(n, _CN_DIGITS, "十百千")
    if fmt == "chineseLegalSimplified":
        return _chinese(n, _CN_LEGAL, "拾佰仟")
    if fmt in ("ideographDigital", "taiwaneseDigital", "japaneseDigitalTenThousand"):
        return "".join(_CN_DIGITS[int(d)] for d in str(n))
    if fmt in ("decimalEnclosedCircle", "decimalEnclosedCircleChinese") and 1 <= n <= len(_CIRCLED):
        return _CIRCLED[n - 1]
    if fmt in ("ideographTraditional",) and 1 <= n <= 10:
        return _TIANGAN[n - 1]
    if fmt in ("upperLetter", "lowerLetter") and n >= 1:
        s = chr(ord("A") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return s if fmt == "upperLetter" else s.lower()
    if fmt in ("upperRoman", "lowerRoman") and 1 <= n < 4000:
        s = _roman(n)
        return s if fmt == "upperRoman" else s.lower()
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt == "decimalFullWidth":
        return "".join(chr(0xFF10 + int(d)) for d in str(n))
    return str(n)


def _chinese(n: int, digits: str, units: str) -> str:
    """1 -> 一, 10 -> 十, 21 -> 二十一, 105 -> 一百零五 (how 条 and 章 are numbered)."""
    if n <= 0 or n >= 10000:
        return str(n)
    out, zero = "", False
    for value, unit in ((1000, units[2]), (100, units[1]), (10, units[0]), (1, "")):
        d, n = divmod(n, value)
        if d:
            if zero and out:
                out += "零"
            out += ("" if (value == 10 and d == 1 and not out) else digits[d]) + unit
            zero = False
        elif out:
            zero = True
    return out


def _roman(n: int) -> str:
    out = ""
    for value, sym in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                       (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out, n = out + sym, n - value
    return out


def _val(el) -> str | None:
    return None if el is None else el.get(_W + "val")


def _int(s: str | None) -> int | None:
    try:
        return int(s) if s is not None else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------ the body

@dataclass(slots=True)
class _Item:
    kind: str                        # "p": a paragraph; "row": a table row of two or more filled cells
    level: int | None                # heading level (0 = title), None for body text
    lines: list[str]                 # one entry per line (a soft line break starts a new one)
    centred: bool = False


class _Walker:
    def __init__(self, styles: _Styles, numbering: "_Numbering") -> None:
        self.styles = styles
        self.numbering = numbering

    def blocks(self, container) -> Iterator[_Item]:
        """Each paragraph and table row under a body, cell, content control or text box, in reading order."""
        for el in container:
            tag = el.tag
            if tag == _P:
                yield from self.paragraph(el)
            elif tag == _TBL:
                yield from self.table(el)
            elif tag == _SDT:
                content = el.find(_SDT_CONTENT)
                if content is not None:
                    yield from self.blocks(content)
            elif tag in _WRAPPERS:
                yield from self.blocks(el)

    def paragraph(self, p) -> Iterator[_Item]:
        out: list[str] = []
        boxes: list = []
        _collect(p, out, boxes)
        ppr = p.find(_W + "pPr")
        sid = _val(ppr.find(_W + "pStyle")) if ppr is not None else None
        outline = _int(_val(ppr.find(_W + "outlineLvl"))) if ppr is not None else None
        jc = _val(ppr.find(_W + "jc")) if ppr is not None else None
        level = self.styles.level(sid)
        if level is None and outline is not None and 0 <= outline < 9:
            level = min(outline + 1, _MAX_HEADING)
        centred = jc == "center" or (jc is None and sid in self.styles.centred)
        num_id, ilvl = _numpr(ppr.find(_W + "numPr")) if ppr is not None else (None, None)
        if num_id is None:
            num_id, style_lvl = self.styles.numpr(sid)
            ilvl = ilvl if ilvl is not None else style_lvl
        lines = [_clean(s) for s in "".join(out).split("\n")]
        label = self.numbering.label(num_id, ilvl or 0) if num_id else ""
        if label and lines[0]:       # Word counts an empty numbered paragraph too, but shows nothing to index
            lines[0] = label + lines[0]
        yield _Item("p", level, lines, centred)
        for box in boxes:            # a text box anchored in this paragraph: its text comes after it
            yield from self.blocks(box)

    def table(self, tbl) -> Iterator[_Item]:
        for tr in _rows(tbl):
            cells = [list(self.blocks(tc)) for tc in _cells(tr)]
            filled = [c for c in cells if any(t for it in c for t in it.lines)]
            if len(filled) == 1:     # a layout cell (a whole law in a one-cell table): its paragraphs as they are
                yield from filled[0]
            elif filled:
                texts = [" ".join(t for it in c for t in it.lines if t) for c in cells]
                yield _Item("row", None, [" | ".join(texts).strip(" |")])


def _rows(tbl) -> Iterator:
    for el in tbl:
        if el.tag == _TR:
            yield el
        elif el.tag == _SDT or el.tag in _WRAPPERS:      # rows inside a content control
            content = el.find(_SDT_CONTENT) if el.tag == _SDT else el
            if content is not None:
                yield from _rows(content)


def _cells(tr) -> Iterator:
    # A merged cell is one w:tc (gridSpan) or an empty continuation (vMerge): no text is repeated.
    for el in tr:
        if el.tag == _TC:
            yield el
        elif el.tag == _SDT or el.tag in _WRAPPERS:
            content = el.find(_SDT_CONTENT) if el.tag == _SDT else el
            if content is not None:
                yield from _cells(content)


def _collect(el, out: list[str], boxes: list) -> None:
    for child in el:
        tag = child.tag
        if tag == _T:
            out.append(child.text or "")
        elif tag == _TAB:
            out.append(" ")
        elif tag in (_BR, _CR):
            if child.get(_W + "type") in (None, "textWrapping"):     # page and column breaks are layout
                out.append("\n")
        elif tag == _NBH:
            out.append("-")
        elif tag == _TXBX:
            boxes.append(child)
        elif not isinstance(tag, str) or tag in _SKIP:              # comments, processing instructions
            continue
        else:
            _collect(child, out, boxes)

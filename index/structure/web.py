"""Web pages and site mirrors, as they appear in .txt/.md text: page furniture is not text.

Runs first, on the cleaned lines, before any line is classified:
- YAML front matter (`---` … `---` at the top), lines inside a multi-line HTML comment, navigation (`当前位置：`,
  `【打印正文】`, `上一篇：` / `下一篇：`, `【关闭窗口】`, `返回顶部`) and a lone relative link (`[back](./)`) are
  JUNK: dropped. (Inline comments, tags and entities such as `&nbsp;` are handled by `index.normalize.clean_line`.)
- A metadata line (`文章来源：某某报 作者：张三 发布时间：2016-10-27 点击数：12`) is META: its values become the
  page's source, authors and date. A metadata run glued to a title line (`标题文章来源：……`) splits: the head is
  the page title. A title-like line right before the first metadata line is the page title too.
- An issuing line under the title (`中共中央办公厅　国务院办公厅印发`) names the publisher.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from index.normalize import CJK, clean_meta
from index.structure.genre import Genre, SegmentView
from index.structure.records import L, Line
from index.structure.shapes import SENT_PUNCT, title_like

# Labels of a page's metadata line; the first group can open such a line alone, the rest only next to another label.
_STRONG = r"文章来源|信息来源|稿件来源|来源|作者|发布时间|发布日期|发表时间|发文日期|点击数|点击量|点击率|浏览次数|浏览量|阅读次数|阅读量|责任编辑|发布者|发布单位"
_WEAK = r"时间|日期|编辑|审核|供稿|摄影|字号|访问量|更新时间"
_META_LABEL = re.compile(rf"(?P<label>{_STRONG}|{_WEAK})\s*[：:]")
_META_START = re.compile(rf"^(?:{_STRONG})\s*[：:]")
_NAV = re.compile(
    r"(?:^|[\s【\[［|｜])(?:上一篇|下一篇|上一条|下一条|上一页|下一页)\s*[：:]?"
    r"|[【\[［]\s*(?:打印正文|打印本页|打印|关闭窗口|关闭|收藏|返回顶部|字体|大|中|小)\s*[】\]］]"
    r"|^(?:打印正文|打印本页|关闭窗口|返回顶部|返回首页|加入收藏|设为首页|分享到)"
    r"|(?:当前位置|您的位置|所在位置|您现在的位置)\s*[：:]")
# A line that is only a link: `[back](./)`, `[[http://……|PDF文件下载]]`, a bare URL.
_NAV_HINT = re.compile(r"上一|下一|打印|关闭|返回|位置|收藏|首页|分享|【|\[|［")   # cheap test first
_LINK_ONLY = re.compile(r"^\s*(?:\[[^\]]{1,20}\]\((?!https?://)[^)]*\)|\[\[[^\]]*\]\]|<?https?://\S+?>?)\s*$")
_ISSUER = re.compile(rf"^(?P<who>[{CJK}\s、]{{4,40}}?)(?:印发|发布|公布|制定)(?:《[^》]{{2,60}}》)?(?:的通知)?$")
_DATE = re.compile(r"\d{4}\s*(?:年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|[-/.]\d{1,2}[-/.]\d{1,2})")


@dataclass(slots=True)
class PageMeta:
    """What a page's furniture states about it."""
    title: str = ""
    authors: tuple[str, ...] = ()
    date: str = ""
    source: str = ""
    publisher: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def meta_fields(text: str) -> dict[str, str] | None:
    """The label: value pairs of a metadata line, or None when the line is not one (a sentence, a body line)."""
    labels = list(_META_LABEL.finditer(text))
    if not labels or len(text) > 200 or re.search(r"[。！？]$", text):
        return None
    if labels[0].start() != 0 or not (len(labels) >= 2 or _META_START.match(text)):
        return None
    if len(labels) == 1 and labels[0].group("label") == "作者":
        return None     # `作者：王五` alone is a byline: the title block pass reads it with the title above it
    out: dict[str, str] = {}
    for m, nxt in zip(labels, labels[1:] + [None]):
        value = text[m.end():nxt.start() if nxt else len(text)].strip(" |｜/　")
        out.setdefault(m.group("label"), value)
    # A body line such as `来源：自筹资金，用于……` is a sentence, not metadata: values are short.
    if any(len(v) > 40 or (len(v) > 15 and "，" in v) for v in out.values()):
        return None
    return out


def _apply(page: PageMeta, fields: dict[str, str]) -> None:
    page.fields.update({k: v for k, v in fields.items() if k not in page.fields})
    for k, v in fields.items():
        if not v:
            continue
        if k in ("文章来源", "信息来源", "稿件来源", "来源", "发布单位") and not page.source:
            page.source = v
        elif k == "作者" and not page.authors:
            page.authors = tuple(a for a in re.split(r"[\s、，,;；]+", v) if a)
        elif k in ("发布时间", "发布日期", "发表时间", "发文日期", "时间", "日期", "更新时间") and not page.date:
            m = _DATE.search(v)
            page.date = m.group() if m else ""


def mark_page_lines(lines: list[Line]) -> PageMeta:
    """Mark furniture lines JUNK or META (see the module docstring); returns what the metadata lines state."""
    page = PageMeta()
    _front_matter(lines)
    in_comment = False
    first_content: int | None = None
    seen = 0                              # content lines before this one (the issuer line sits under the title)
    for i, ln in enumerate(lines):
        raw = ln.raw
        if in_comment:
            ln.kind = L.JUNK
            in_comment = "-->" not in raw
            continue
        if "<!--" in raw and "-->" not in raw[raw.index("<!--"):]:
            ln.kind, in_comment = L.JUNK, True
            continue
        if ln.kind is L.JUNK or not ln.text:
            continue
        seen += 1
        t = ln.text
        has_colon = "：" in t or ":" in t
        if has_colon and _META_LABEL.match(t) and (fields := meta_fields(t)) is not None:
            ln.kind = L.META
            _apply(page, fields)
            if first_content is not None and first_content == _previous_content(lines, i) and not page.title \
                    and title_like(lines[first_content].text, "zh"):
                lines[first_content].kind = L.TITLE
                page.title = lines[first_content].text
            continue
        # (after the metadata test: `发布时间：…… 字号：[大] [中] [小]` is metadata with a widget on its line)
        if len(t) <= 160 and _NAV_HINT.search(t) and _NAV.search(t) and (len(t) <= 120 or not SENT_PUNCT.search(t)) \
                or ("[" in raw or "http" in raw) and _LINK_ONLY.match(raw.replace("\\", "")):
            ln.kind = L.JUNK
            continue
        if first_content is None:
            first_content = i
            glued = _glued(t) if has_colon else None
            if glued is not None:
                ln.kind = L.META
                page.title = glued[0]
                _apply(page, glued[1])
                continue
        if not page.publisher and seen <= 3 and (m := _ISSUER.match(clean_meta(raw))):
            if not re.match(r"\s{0,3}#", raw):    # a markdown title naming its issuer stays the title
                ln.kind = L.META
            page.publisher = m.group("who").strip()
    return page


def _glued(text: str) -> tuple[str, dict[str, str]] | None:
    """`标题文章来源：某某报作者：张三` -> ("标题", {...}): a title with the page's metadata glued on."""
    for m in re.finditer(rf"(?:{_STRONG})\s*[：:]", text):
        head, tail = text[:m.start()].strip(), text[m.start():]
        if head and title_like(head, "zh") and (fields := meta_fields(tail)) is not None:
            return head, fields
    return None


def _front_matter(lines: list[Line]) -> None:
    if not lines or lines[0].raw.strip() != "---":
        return
    for j in range(1, min(len(lines), 40)):
        if lines[j].raw.strip() == "---":
            for ln in lines[:j + 1]:
                ln.kind = L.JUNK
            return
        if lines[j].raw.strip() and not re.match(r"^[\w-]+\s*:", lines[j].raw):
            return


def _previous_content(lines: list[Line], i: int) -> int | None:
    for j in range(i - 1, -1, -1):
        if lines[j].text and lines[j].kind is not L.JUNK:
            return j
    return None


class Web(Genre):
    """A web page (read from HTML, or its furniture stated a source, author or date) that is not a regulation or
    notice: read like an article, but the page title is the title and does not head the heading path. A page that
    holds a law or a notice is read as one (its 条 and sections matter more than where it was published; the
    citation's [EB/OL] comes from the format)."""
    name = "web"
    title_in_path = False

    def detect(self, view: SegmentView) -> bool:
        p = view.page
        return (view.format == "html" or bool(p.source or p.authors or p.date)) and not view.titled


WEB = Web()

"""Web pages (.html/.htm): the article's own text, one line per paragraph, and what the page states about it.

How, and why:
- Decoding: a BOM, then the `<meta charset>` / `http-equiv` charset, then UTF-8, then GB18030 (a superset of
  GBK/GB2312; gbk/gb2312 declarations are read as GB18030, which is what those pages really contain).
- The text is taken from the DOM by our own walk, not from trafilatura's text output: on the dev pages that lay
  the article out in tables (sxmu, zsnews, the gov.cn fragment) trafilatura's markdown and text outputs join a
  cell's paragraphs into one line, and on the gov.cn 公报 page it returns the navigation bar instead of the body.
  (Measured: `pytest -s -k trafilatura tests/index/test_read_html.py`, 324 body paragraphs against its 112.)
  trafilatura is the last fallback for the title and the date; its author is not used (it took an editor).
- Scripts, styles, comments, forms' widgets, `<nav>`/`<footer>`/`<aside>` and hidden elements are dropped before
  anything is read; entities are decoded by the parser (`&nbsp;` is a space, never literal).
- The main content is a readability-style choice: every paragraph's prose (characters outside links, with a bonus
  for Chinese punctuation) is credited to the element holding it and half to that element's parent; the best
  element wins, with its siblings that score at least a fifth of it and hold sentences (。) of their own. Link-dense lines (menus, "related" lists)
  and interface lines (上一篇/下一篇/打印/关闭/返回顶部/分享到/字号, breadcrumbs) are dropped from it.
- Lines: a paragraph-level element or `<br>` ends a line; an empty line separates lines; `<h1>`-`<h6>` become
  `#` headings and a whole-line bold paragraph `**…**` (the structure pass reads both). A table row of several
  short cells is one line, cells joined by " | "; a cell holding paragraphs is read as paragraphs.
- Metadata lines (「来源：某某报 作者：某某 发布时间：2019-01-01 点击数：」, 【发布日期】…, 发文机关/成文日期 tables)
  become `DocMeta.source/authors/date` and leave the text; inside the text only lines with a strong label do (a
  notice's 「时间：」 and closing date are its own). A value ends where a link begins (「来源：求是网」+「参与互动」).
  Also read: a law's adoption line 「（2007年6月29日第十届全国人民代表大会常务委员会第二十八次会议通过）」 (date and
  adopting body), a closing 「（作者：方敏北京大学经济学院教授）」, a news item's 「……。（张巨峰）」, and an outlet's name
  above the posting time (「新华社」 / 「2020-01-03 18:13」); the site's name is the last resort for the source.
- The title: the page's own heading that `<title>` starts with (or contains), else `<title>` with the site name
  cut off (「…_中国政府网」, 「… - 山西省人民政府门户网站」), else a stated 标题, else `<h1>`, else the first heading of
  the content; never a line with metadata glued on, and without a leading column tag (「【中国稳健前行】」).
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from index.document import DocMeta, Document
from index.normalize import CJK
from index.readers import ReadContext, Unreadable

# ------------------------------------------------------------------------------------------------ decoding

_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_STRAY_END = re.compile(r"</\s*(?:html|body)\s*>", re.I)
_GB = {"gb2312", "gbk", "gb_2312-80", "x-gbk", "cp936", "gb18030", "euc-cn", "hz-gb-2312"}


def decode_html(data: bytes) -> str:
    """The page's text: BOM, declared charset, UTF-8, GB18030 in that order (never raises)."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    tried = []
    m = _CHARSET.search(data[:8192])
    if m:
        name = m.group(1).decode("ascii", "ignore").lower()
        name = "gb18030" if name in _GB else name
        try:
            codecs.lookup(name)
            tried.append(name)
        except LookupError:
            pass
    for codec in (*tried, "utf-8", "gb18030"):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------ the DOM walk

_DROP = {"script", "style", "noscript", "template", "iframe", "frame", "frameset", "object", "embed", "applet",
         "svg", "canvas", "map", "select", "option", "button", "input", "textarea", "nav", "footer", "aside",
         "head", "title", "audio", "video", "param", "marquee"}
_BLOCK = {"p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "table", "tbody", "thead",
          "tfoot", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "center", "form",
          "header", "address", "figure", "figcaption", "caption", "body", "html", "hr", "fieldset", "legend",
          "details", "summary"}
_PARA = {"p", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "figcaption", "caption",
         "address", "legend"}        # elements that are one paragraph: their prose is credited to their container
_BOLD = {"b", "strong"}
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_LINK = "\ue000"                   # a private-use mark around link text: 「来源：求是网<a>参与互动</a>」 ends at the link
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HIDDEN_CLASSES = {"hide", "hidden", "d-none", "display-none", "sr-only"}     # the usual CSS for display: none
def _prose(text: str) -> int:
    """Letters, digits and ideographs in `text` (what a reader reads; punctuation and spaces aside)."""
    return sum(map(str.isalnum, text))     # 20x faster than counting regex matches, on pages of 40,000 lines
_PUNCT = re.compile(r"[，。；、！？]")            # prose punctuation; 「：」 is as common in address lines


@dataclass(slots=True)
class _Line:
    text: str
    holder: object                   # the innermost block element around the line
    heading: int = 0                 # 1-6 for <h1>-<h6>
    bold: bool = False               # every visible character inside <b>/<strong>
    link_chars: int = 0
    row: bool = False                # a table row of short cells, joined by " | "
    marked: str = ""                 # `text` with each link's text between _LINK marks (where a value ends)


@dataclass(slots=True)
class _Buf:
    parts: list[str] = field(default_factory=list)
    chars: int = 0                   # prose characters
    link: int = 0                    # of which inside <a>
    bold: int = 0                    # of which inside <b>/<strong>


class _Walker:
    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self.buf = _Buf()
        self.holder = None
        self.heading = 0

    def flush(self) -> None:
        marked = _spaces("".join(self.buf.parts))
        text = marked.replace(_LINK, "")
        if "  " in text or text[:1] == " " or text[-1:] == " ":     # spaces that only the link marks kept apart
            text = _spaces(text)
        if text:
            self.lines.append(_Line(text, self.holder, self.heading,
                                    bold=self.buf.chars > 0 and self.buf.bold >= self.buf.chars,
                                    link_chars=self.buf.link, marked=marked))
        self.buf = _Buf()

    def add(self, text: str | None, link: bool, bold: bool) -> None:
        if not text:
            return
        self.buf.parts.append(text)
        n = _prose(text)
        self.buf.chars += n
        self.buf.link += n if link else 0
        self.buf.bold += n if bold else 0

    def walk(self, el, link: bool = False, bold: bool = False) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if not tag:                                  # a comment or processing instruction: only its tail counts
            return
        tag = tag.lower()
        if tag == "br":
            self.flush()
            return
        if tag == "tr" and self.data_row(el):
            return
        block = tag in _BLOCK
        if block:
            self.flush()
            saved = (self.holder, self.heading)
            self.holder = el
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                self.heading = int(tag[1])
        link = link or tag == "a"
        bold = bold or tag in _BOLD
        if tag in ("td", "th") and self.buf.parts:
            self.buf.parts.append(" ")
        if tag == "a":
            self.buf.parts.append(_LINK)
        self.add(el.text, link, bold)
        for child in el:
            self.walk(child, link, bold)
            self.add(child.tail, link, bold)
        if tag == "a":
            self.buf.parts.append(_LINK)
        if block:
            self.flush()
            self.holder, self.heading = saved

    def data_row(self, tr) -> bool:
        """A row of two or more filled cells none of which holds paragraphs: one line, cells joined by " | "."""
        cells = [c for c in tr if isinstance(c.tag, str) and c.tag.lower() in ("td", "th")]
        texts = []
        for c in cells:
            if any(isinstance(d.tag, str) and d.tag.lower() in _BLOCK | {"br"} for d in c.iterdescendants()):
                return False
            texts.append(_spaces(c.text_content()))
        filled = [t for t in texts if t]
        if len(filled) < 2 or max(len(t) for t in filled) > 60:
            return False
        self.flush()
        links = sum(_prose(a.text_content()) for a in tr.iter("a"))
        self.lines.append(_Line(" | ".join(filled), tr, link_chars=links, row=True))
        return True


def _spaces(text: str) -> str:
    # &nbsp; and ideographic spaces used as indentation are layout; runs of spaces inside a line become one.
    text = _CONTROL.sub("", text).replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "").replace("\r", "")
    return re.sub(r"[ \t\n\u3000]{2,}|[\t\n]", " ", text).strip(" \u3000")


def _prune(root) -> None:
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower()
        style = el.get("style") or ""
        hidden = (el.get("hidden") is not None or el.get("aria-hidden") == "true" or _HIDDEN.search(style)
                  or not _HIDDEN_CLASSES.isdisjoint((el.get("class") or "").lower().split()))
        if tag in _DROP or hidden:
            if el.getparent() is not None:
                el.drop_tree()                       # keeps the tail text, which belongs to the parent
        elif tag == "header" and not any(a.tag in ("article", "main") for a in el.iterancestors()):
            el.drop_tree()                           # the site's banner; an article's own <header> holds its h1


# ------------------------------------------------------------------------------------------------ main content

def _weight(line: _Line) -> float:
    prose = _prose(line.text) - line.link_chars
    if prose <= 0 or line.row:
        return 0.0
    punct = len(_PUNCT.findall(line.text))
    if prose < 10 and not punct:                     # a label, a menu entry, a date
        return 0.0
    return prose + 5.0 * punct


def _select(lines: list[_Line]) -> list[_Line]:
    scores: dict[int, float] = {}
    elements: dict[int, object] = {}

    def credit(el, w: float) -> None:
        if el is not None:
            scores[id(el)] = scores.get(id(el), 0.0) + w
            elements[id(el)] = el

    for ln in lines:
        w = _weight(ln)
        if not w:
            continue
        holder = ln.holder
        tag = holder.tag.lower() if holder is not None and isinstance(holder.tag, str) else ""
        container = holder.getparent() if tag in _PARA and holder is not None else holder
        credit(container, w)
        if container is not None:
            credit(container.getparent(), w / 2)
    if not scores:
        return lines
    best_id = max(scores, key=lambda k: scores[k])
    best = elements[best_id]
    chosen = [best]
    parent = best.getparent()
    if parent is not None:                           # a body split over sibling blocks (编者按, then the text)
        floor = scores[best_id] / 5
        # A sibling joins only with sentences of its own: a footer of addresses and phone numbers has none.
        sentences = {id(a) for ln in lines if ln.holder is not None and "。" in ln.text
                     for a in (ln.holder, *ln.holder.iterancestors())}
        chosen = [sib for sib in parent
                  if sib is best or (scores.get(id(sib), 0.0) >= floor and id(sib) in sentences)]
    inside = set()
    for el in chosen:
        inside.update(id(d) for d in el.iter())
    return [ln for ln in lines if ln.holder is not None and id(ln.holder) in inside]


# ------------------------------------------------------------------------------------------------ line shapes

_UI = re.compile(r"上一篇|下一篇|上一条|下一条|打印本页|打印正文|打印此文|打印文章|打印|关闭本页|关闭窗口|关闭|返回顶部|回到顶部|"
                 r"返回首页|返回列表|分享到|分享|收藏本页|收藏|加入收藏|添加收藏夹|设为首页|字号|字体|[大中小]|默认|"
                 r"扫一扫在手机打开当前页|扫一扫|在手机上打开|手机版|繁体|简体|无障碍|登录|注册|纠错|我要纠错|"
                 r"【|】|\[|\]|[|｜/>»：:·\s　]")
_NEIGHBOUR = re.compile(r"^\s*[【\[]?\s*(?:上一篇|下一篇|上一条|下一条|上篇|下篇|分享到)")
_BREADCRUMB = re.compile(r"(?:当前位置|现在位置|您的位置|你的位置|所在位置|位置)\s*[：:]|首页\s*(?:>|»|>>|＞|/|→)")
_DATE = re.compile(r"(?:19|20)\d{2}\s*(?:年|[-/.])\s*\d{1,2}\s*(?:月|[-/.])\s*\d{1,2}\s*日?")
_TIME = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")

# Metadata labels -> the field they fill ("" : stated, but not kept).
_LABELS = {
    "文章来源": "source", "信息来源": "source", "稿件来源": "source", "新闻来源": "source", "文件来源": "source",
    "来源于": "source", "来源": "source", "发文机关": "source", "发布机构": "source", "发布单位": "source",
    "作者": "author", "撰稿": "author", "文": "author",
    "成文日期": "date0", "发布时间": "date", "发布日期": "date", "发表时间": "date", "发文日期": "date",
    "更新时间": "date2", "时间": "date2", "日期": "date2", "生效日期": "", "失效日期": "", "实施日期": "",
    "标题": "title",
    "点击数": "", "点击": "", "浏览次数": "", "浏览": "", "阅读次数": "", "阅读": "", "访问量": "",
    "责任编辑": "", "编辑": "", "审核": "", "供稿": "", "摄影": "", "字号": "", "索引号": "", "主题分类": "",
    "发文字号": "", "主题词": "", "所属类别": "", "发布文号": "", "分类": "", "体裁分类": "",
}
# Labels are often letter-spaced to line up in a table (「标　　题」, 「索 引 号」).
_WEAK_LABELS = {"时间", "日期", "文", "标题", "更新时间"}     # labels that body text uses too (会议时间：…)
_LABEL_ALT = "|".join(r"[ \u3000]*".join(map(re.escape, k)) for k in sorted(_LABELS, key=len, reverse=True))
# A label is recognised where it starts the line, follows a separator, or is written 【label】.
_LABEL = re.compile(rf"(?:^|(?<=[\s|｜()（）【\]\ue000]))[【\[]?\s*({_LABEL_ALT})(?:\s|　)*(?:[】\]]\s*|[：:]\s*)")
_PLAIN_LABEL = re.compile(rf"^[【\[]?\s*(?:{_LABEL_ALT})\s*[】\]]?\s*[：:]?\s*$")


def _is_ui(line: _Line) -> bool:
    t = line.text
    if _NEIGHBOUR.match(t) or _BREADCRUMB.search(t):
        return True
    return len(t) <= 60 and _prose(_UI.sub("", t)) < 2


def _linky(line: _Line) -> bool:
    prose = _prose(line.text)
    return prose > 0 and line.link_chars / prose > 0.5


def _meta_pairs(text: str) -> list[tuple[str, str]] | None:
    """(label, value) pairs when `text` is a metadata line, else None."""
    ms = list(_LABEL.finditer(text))
    if not ms or re.match(r"^[（(].*[）)]$", text.replace(_LINK, "").strip()):
        return None                  # 「（作者：某某 某大学教授）」 closing an article is the article's own note
    lead = text[:ms[0].start()].replace(_LINK, "").strip(" |｜()（）")
    pairs = []
    if lead and _bare_date(lead):    # 「2020年07月04日 12:10　来源：求是网」: the date leads the line
        pairs.append(("发布时间", lead))
        lead = ""
    for i, m in enumerate(ms):
        end = ms[i + 1].start() if i + 1 < len(ms) else len(text)
        # A value ends at a link boundary: what follows the source's name is another widget (「参与互动」).
        pieces = [p.strip(" |｜　()（）【】[]") for p in text[m.end():end].split(_LINK)]
        value = next((p for p in pieces if p), "")
        pairs.append((re.sub(r"\s", "", m.group(1)), value))
    # A metadata line is short labelled values; a sentence that happens to contain 「时间：」 is not one.
    if len(ms) == 1:
        label, value = pairs[-1]
        if lead or len(value) > 40 or _PUNCT.search(value.replace("：", "")) and label not in ("来源", "文章来源"):
            return None
        if label in ("文", "时间", "日期") and not (_DATE.search(value) or label == "文" and len(value) <= 8):
            return None
    elif lead and len(lead) > 40:
        return None
    if any(len(v) > 80 for _, v in pairs):
        return None
    return pairs


_THIS_SITE = re.compile(r"^(?:本站|本网|本刊|本报)?(?:原创|自采|整理)?$")     # 「来源：本站原创」 names no one: the site follows


@dataclass(slots=True)
class _Stated:
    source: str = ""
    authors: tuple[str, ...] = ()
    dates: dict[str, str] = field(default_factory=dict)     # date0 / date / date2 -> first value
    title: str = ""
    lead_titles: list[str] = field(default_factory=list)    # text glued before a label: 「**标题** 来源于：…」

    def take(self, pairs: list[tuple[str, str]], lead: str) -> None:
        if lead:
            self.lead_titles.append(lead)
        for label, value in pairs:
            kind = _LABELS.get(label, "")
            if not value or not kind:
                continue
            if kind == "source" and not self.source and not _THIS_SITE.match(value):
                self.source = value.split("  ")[0].strip()
            elif kind == "author" and not self.authors:
                self.authors = _split_names(value)
            elif kind.startswith("date"):
                m = _DATE.search(value)
                if m and kind not in self.dates:
                    self.dates[kind] = m.group(0).replace(" ", "")
            elif kind == "title" and not self.title:
                self.title = value

    @property
    def date(self) -> str:
        return next((self.dates[k] for k in ("date0", "date", "date2") if k in self.dates), "")


_AFFILIATION = re.compile(r"大学|学院|研究院|研究所|研究中心|教授|研究员|博士|讲师|记者|通讯员|主任|书记|局长|处长")
_NAME = re.compile(rf"^(?:[{CJK}·]{{2,10}}|[A-Z][A-Za-z'’.-]+(?: [A-Z][A-Za-z'’.-]+)+)$")


# Where an affiliation run together with a name begins (「方敏北京大学经济学院教授」): a province, a national body
# or a university's city; the name is the 2-3 characters before it.
_PLACE = ("北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|广西|海南|四川|"
          "贵州|云南|西藏|陕西|甘肃|青海|宁夏|新疆|内蒙古|香港|澳门|台湾|中国|中央|中共|国家|国务院|全国|清华|复旦|南开|"
          "武汉|南京|中山|厦门|同济|首都|华东|华中|华南|西北|西南|东北")
_NAME_AFFIL = re.compile(rf"^([{CJK}]{{2,3}}?)(?:{_PLACE})[{CJK}]*?(?:大学|学院|研究院|研究所|研究中心|党校|科学院|社会科学院)")


def _split_names(value: str) -> tuple[str, ...]:
    """Names in a stated 作者 value; a name run together with its affiliation (「方敏北京大学经济学院教授」) is
    split where the affiliation's place or body begins, otherwise left out rather than guessed apart."""
    out = []
    for n in (n.strip() for n in re.split(r"[、，,；;/]|\s+", value)):
        m = _NAME_AFFIL.match(n)
        if m:
            out.append(m.group(1))
        elif n and _NAME.match(n) and not _AFFILIATION.search(n):
            out.append(n)
    return tuple(out)


_CLOSING_BYLINE = re.compile(r"^[（(]\s*作者\s*[：:]\s*(.+?)\s*[）)]$")
# 「……举行。（张巨峰）」: a news item's reporters in brackets after its last sentence.
_REPORTERS = re.compile(rf"[。！？”]\s*[（(]\s*(?:记者|通讯员|文|撰稿)?\s*([{CJK}]{{2,4}}(?:[ 、，　][{CJK}]{{2,4}}){{0,3}})\s*[）)]$")
_NOT_NAMES = re.compile(r"试行|待续|未完|全文完|本文完|完|原文|下转|上接|摘编|编译|节选|图|摄|[社报网台部局委院厅办]$")
_ADOPTED = re.compile(rf"^[（(]\s*({_DATE.pattern})\s*(?:第[一二三四五六七八九十百]+届)?([{CJK}]{{4,30}}?)"
                      r"第[一二三四五六七八九十百]+次(?:全体)?会议(?:审议)?通过\s*[）)]$")
_OUTLET = re.compile(rf"^[{CJK}]{{2,12}}(?:社|报|网|电视台|电台|广播电台|杂志|周刊|客户端)$")


def adoption(line: str) -> tuple[str, str]:
    """(date, body) of a law's adoption line under its title, 「（2007年6月29日第十届全国人民代表大会常务委员会第二十八次
    会议通过）」 -> ("2007年6月29日", "全国人民代表大会常务委员会"); ("", "") for any other line, an amended text's
    line with two dates included (which date the text has is then not one date)."""
    m = _ADOPTED.match(line.strip())
    return (re.sub(r"\s", "", m.group(1)), m.group(2)) if m else ("", "")


def _reporters(out: list["_Line"]) -> tuple[str, ...]:
    last = next((ln.text for ln in reversed(out) if not ln.heading), "")
    m = _REPORTERS.search(last)
    if not m:
        return ()
    names = tuple(n for n in re.split(r"[ 、，　]", m.group(1)) if n and not _NOT_NAMES.search(n))
    return names


# ------------------------------------------------------------------------------------------------ titles

_SEP = re.compile(r"\s*(?:_{1,2}|\||｜|\s[-–—]\s|(?<![0-9A-Za-z])-(?![0-9A-Za-z])|(?<=[\u4e00-\u9fff）)])-)\s*")
_SITE = re.compile(r"(?:网|网站|门户网站|门户|官网|政府|新闻|日报|晚报|报|在线|频道|平台|中心|The Paper|\.com|\.cn)$", re.I)


def _strip_site(title: str) -> str:
    """`<title>` without the site name: the first segment, when the rest is site and column names."""
    title = _spaces(title)
    parts = [p.strip() for p in _SEP.split(title) if p.strip()]
    while len(parts) > 1 and _site_only(parts[0]):  # 「中国政府网_关于……的通知」: the site name first
        parts = parts[1:]
    if len(parts) > 1 and len(parts[0]) >= 4:
        return parts[0]
    return parts[0] if len(parts) == 1 else title


def site_name(page_title: str, title: str) -> str:
    """The site's name from what `<title>` has after the article's title (「…_2007年第23号国务院公报_中国政府网」)."""
    page, t = _spaces(page_title), _norm(title)
    if not t or not _norm(page).startswith(t) or _norm(page) == t:
        return ""
    # Skip as many characters of `page` as the title has (spaces aside), then split what is left.
    seen = i = 0
    while i < len(page) and seen < len(t):
        seen += not re.match(r"[\s　*#]", page[i])
        i += 1
    parts = [p.strip() for p in _SEP.split(page[i:]) if p.strip()]
    parts = [p for p in parts if re.search(rf"[{CJK}]", p)]
    if parts and (_SITE.search(parts[-1]) or len(parts[-1]) >= 6):
        return parts[-1]
    return ""


def _site_only(title: str) -> bool:
    return not title or (len(title) <= 14 and bool(_SITE.search(title)))


def _norm(text: str) -> str:
    return re.sub(r"[\s　*#]", "", text)


# ------------------------------------------------------------------------------------------------ read

def read(data: bytes, ctx: ReadContext) -> Document:
    import lxml.html                                 # imported on first use, like every reader's library
    from lxml import etree

    if b"\x00" in data[:8192] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise Unreadable("binary file (not an HTML page)")
    # A closing </html> or </body> from an included template ends libxml2's parse there; browsers read on.
    text = _STRAY_END.sub("", _XML_DECL.sub("", decode_html(data), count=1))
    if not re.search(r"\S", text):
        raise Unreadable("empty file")
    try:
        root = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        raise Unreadable("no text found") from None
    page_title = _spaces(" ".join(t.text_content() for t in root.iter("title")))
    metas = _meta_tags(root)
    h1s = [_spaces(h.text_content()) for h in root.iter("h1")]
    _prune(root)
    walker = _Walker()
    body = root.find("body")
    try:
        walker.walk(body if body is not None else root)
    except RecursionError:                           # thousands of nested elements: no real page does that
        raise Unreadable("HTML nested too deeply to read") from None
    walker.flush()
    all_lines = walker.lines
    if not all_lines:
        raise Unreadable("no text found")

    content = _select(all_lines)
    # Inside the text (after its first paragraph of prose) a lone date closes a notice and 「时间：…」 is a meeting's
    # time: only lines with a strong label (来源, 作者, 发布日期, 浏览…) or several labels are metadata there.
    in_body: set[int] = set()
    for i, ln in enumerate(content):
        if _weight(ln) >= 30 and not _meta_pairs(ln.marked or ln.text):
            in_body = {id(x) for x in content[i + 1:]}
            break

    def pairs_of(ln: _Line) -> list[tuple[str, str]] | None:
        pairs = _meta_pairs(ln.marked or ln.text)
        if pairs and id(ln) in in_body and len(pairs) == 1 and pairs[0][0] in _WEAK_LABELS:
            return None
        return pairs

    stated = _Stated()
    for ln in all_lines:                             # metadata lines may sit outside the main block
        pairs = pairs_of(ln)
        if pairs:
            stated.take(pairs, _lead(ln.text))
    out: list[_Line] = []
    for ln in content:
        if _is_ui(ln) or _linky(ln):
            continue
        pairs = pairs_of(ln)
        if pairs is not None:
            lead = _lead(ln.text)
            if lead:                                 # the title with metadata glued after it
                out.append(_Line(lead, ln.holder, ln.heading, ln.bold))
            continue
        if id(ln) not in in_body and (_PLAIN_LABEL.match(ln.text) or _bare_date(ln.text)):
            if _bare_date(ln.text) and "date2" not in stated.dates:
                stated.dates["date2"] = _DATE.search(ln.text).group(0).replace(" ", "")
            continue
        out.append(ln)
    if not out:                                      # menus, scripts and metadata only: nothing to index
        raise Unreadable("no text found")
    title = _title(page_title, h1s, metas, stated, out, all_lines)
    lines = _render(out, title)
    visible = "\n".join(ln.text for ln in all_lines)
    adopted_date, adopted_by = next((adoption(ln.text) for ln in out[:6] if adoption(ln.text)[0]), ("", ""))
    closing = next((m.group(1) for ln in all_lines if (m := _CLOSING_BYLINE.match(ln.text))), "")
    authors = (stated.authors or _split_names(closing) or _reporters(out) or _meta_authors(metas, visible))
    meta = DocMeta(title=_drop_column_tag(title), authors=authors,
                   date=stated.date or adopted_date or _meta_date(metas),
                   source=stated.source or metas.get("contentsource", "") or adopted_by
                   or _outlet(all_lines, content) or metas.get("og:site_name", "") or metas.get("sitename", "")
                   or site_name(page_title, title),
                   url=metas.get("og:url", "") or metas.get("canonical", ""))
    if (not meta.date or not meta.title) and len(text) <= _TRAFILATURA_MAX:
        meta = _with_trafilatura(text, meta)
    return Document("html", tuple(lines), meta=meta)


_PAIRS = {"（": "）", "(": ")", "【": "】", "[": "]", "《": "》"}


def _lead(text: str) -> str:
    """What a metadata line has before its first label (a title glued on), unless that is only a date."""
    first = _LABEL.search(text)
    lead = _clean_lead(text[:first.start()]) if first else ""
    return "" if _bare_date(lead) else lead


def _clean_lead(lead: str) -> str:
    """A line's text without the separators and unpaired brackets around it (「（试行）」 keeps its brackets)."""
    text = lead.strip(" |｜　*")
    while text:
        first, last = text[0], text[-1]
        if first in _PAIRS and text.count(first) > text.count(_PAIRS[first]):
            text = text[1:].strip(" |｜　*")
        elif last in _PAIRS.values() and text.count(last) > sum(text.count(o) for o, c in _PAIRS.items() if c == last):
            text = text[:-1].strip(" |｜　*")
        else:
            break
    return text


def _bare_date(text: str) -> bool:
    """A line that is only a date and time (「2020-01-03 18:13」): when it was posted, not text."""
    rest = _TIME.sub("", _DATE.sub("", text, count=1))
    return bool(_DATE.search(text)) and not re.search(rf"[{CJK}A-Za-z0-9]", re.sub(r"[年月日时分秒星期一二三四五六日天]", "", rest))


def _title(page_title: str, h1s: list[str], metas: dict, stated: _Stated, out: list[_Line],
           all_lines: list[_Line]) -> str:
    stripped = _strip_site(page_title)
    key = _norm(page_title)
    # The page's own heading that <title> begins with: exact, and free of the column and site names after it.
    # An <h1> or a title glued to a metadata line may stand anywhere in <title> (after the site's name too).
    inside = [c for c in (*h1s, *stated.lead_titles) if len(_norm(c)) >= 6 and _norm(c) in key]
    candidates = []
    texts = [_clean_lead(ln.text) for ln in all_lines if not _linky(ln)]
    for i, t in enumerate(texts):                    # a printed title broken over lines by <br>
        joined = t
        candidates.append(joined)
        for nxt in texts[i + 1:i + 4]:
            if not key.startswith(_norm(joined)):
                break
            joined = _join(joined, nxt)
            candidates.append(joined)
    best = ""
    for c in candidates:
        c = _clean_lead(c)
        n = _norm(c)
        if len(n) >= 6 and key.startswith(n) and len(n) > len(_norm(best)) and not _meta_pairs(c):
            best = c
    longest = max(inside, key=lambda c: len(_norm(c)), default="")
    if len(_norm(longest)) > len(_norm(best)):
        best = longest
    if best:
        return _tidy_title(best)
    h1 = next((h for h in h1s if h and not _site_only(h) and not _meta_pairs(h)), "")
    for value in (metas.get("articletitle", ""), stripped if not _site_only(stripped) else "", stated.title, h1):
        if value:
            return _tidy_title(value)
    heads = [ln.text for ln in out[:20] if (ln.heading or ln.bold) and len(ln.text) <= 80]
    return _tidy_title(_clean_lead(heads[0])) if heads else ""


_COLUMN_TAG = re.compile(r"^[【［\[]([^】］\]]{1,12})[】］\]]\s*(?=\S{6})")


def _drop_column_tag(title: str) -> str:
    """A title without the column or campaign tag in front of it (「【中国稳健前行】坚定实施扩大内需战略」)."""
    return _COLUMN_TAG.sub("", title, count=1)


def _outlet(all_lines: list[_Line], content: list[_Line]) -> str:
    """A news outlet's name on the line above the posting time, before the text (「新华社」 / 「2020-01-03 18:13」)."""
    start = id(content[0]) if content else None
    for prev, ln in zip(all_lines, all_lines[1:]):
        if id(prev) == start or id(ln) == start:
            break
        if _bare_date(ln.text) and _OUTLET.match(prev.text):
            return prev.text
    return ""


def _join(left: str, right: str) -> str:
    return left + ("" if re.search(rf"[{CJK}]$", left) and re.match(rf"[{CJK}]", right) else " ") + right


def _tidy_title(title: str) -> str:
    # An ideographic space inside a title is where a <br> broke the printed title (「2007<br>　年末」).
    return _spaces(title).replace("\u3000", "")


def _render(out: list[_Line], title: str) -> list[str]:
    lines: list[str] = []
    kept, at = _drop_printed_title(out, _norm(title))
    # The title opens the text as a `#` heading, unless the page prints it below other text (a newspaper page of
    # several articles): there it stays as printed, since moving it would part it from its byline.
    if at > 0:
        kept = out
    elif title:
        lines.append("# " + _drop_column_tag(title))
    # A heading with nothing under it before the next heading of its level or above (「理论新闻精选：」) is a
    # widget's caption, not a section.
    for i, ln in enumerate(kept):
        if ln.heading or ln.bold:
            nxt = kept[i + 1] if i + 1 < len(kept) else None
            if nxt is None or (nxt.heading and ln.heading and nxt.heading <= ln.heading):
                continue
        if lines:
            lines.append("")
        if ln.heading:
            lines.append("#" * ln.heading + " " + ln.text)
        elif ln.bold and len(ln.text) <= 60 and not re.search(r"[。！？]$", ln.text):
            lines.append("**" + ln.text + "**")
        else:
            lines.append(ln.text)
    return lines


def _drop_printed_title(out: list[_Line], t: str) -> tuple[list[_Line], int]:
    """The content without the title as printed again in it (on one line, or broken over a few by <br>), and
    the position where it was printed (-1: not printed)."""
    if not t:
        return out, -1
    for i, ln in enumerate(out[:8]):
        joined = ""
        for j in range(i, min(i + 4, len(out))):
            joined += _norm(_clean_lead(out[j].text))
            if joined == t:
                return out[:i] + out[j + 1:], i
            if not t.startswith(joined):
                break
    return out, -1


def _meta_tags(root) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in root.iter("meta"):
        name = (m.get("name") or m.get("property") or m.get("itemprop") or "").strip().lower()
        value = _spaces(m.get("content") or "")
        if name and value and name not in out:
            out[name] = value
    for link in root.iter("link"):
        if (link.get("rel") or "").lower() == "canonical" and link.get("href"):
            out.setdefault("canonical", link.get("href").strip())
    return out


_DATE_TAGS = ("firstpublishedtime", "pubdate", "publishdate", "article:published_time", "og:release_date",
              "dc.date", "dc.date.issued", "date", "publish_date", "datepublished")
_AUTHOR_TAGS = ("author", "article:author", "dc.creator", "authors")


def _meta_date(metas: dict) -> str:
    for k in _DATE_TAGS:
        m = _DATE.search(metas.get(k, ""))
        if m:
            return m.group(0).replace(" ", "")
    return ""


def _meta_authors(metas: dict, visible: str) -> tuple[str, ...]:
    """The author tag's names that the page also shows, and not as its editor: content systems fill the tag
    with the site's name (「chinanews」) or the account that posted the page (gov.cn's 公报 pages)."""
    for k in _AUTHOR_TAGS:
        names = _split_names(metas.get(k, ""))
        names = tuple(n for n in names if n in visible and not re.search(rf"编辑\s*[：:]?\s*{re.escape(n)}", visible))
        if names:
            return names
    return ()


_TRAFILATURA_MAX = 1_000_000     # characters: its metadata pass takes ~1 s a megabyte; larger pages go without it


def _with_trafilatura(text: str, meta: DocMeta) -> DocMeta:
    """Fill the fields our own rules left empty from trafilatura's metadata (its guesses come last)."""
    from dataclasses import replace
    try:
        from trafilatura import extract_metadata
        found = extract_metadata(text)
    except Exception:                                # trafilatura's own bug costs a fallback, not the page
        return meta
    if found is None:
        return meta
    title = meta.title or _strip_site(found.title or "")
    if _site_only(title):
        title = meta.title
    # trafilatura's author is not used: on the dev pages it took the editor (「【编辑:陈海峰】」) for the author.
    return replace(meta, title=title, date=meta.date or (found.date or ""),
                   source=meta.source, url=meta.url or (found.url or ""))

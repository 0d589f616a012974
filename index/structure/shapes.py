"""Line shapes: what a single line looks like, as pure functions and patterns. No state: the passes call these.

- Headings: markdown `#`, numbered (`一、` `（一）` `1、` `1.` `1.1` `3.1.1` `1 引言` `（1）` `①` `第一章`),
  bare `引言`/`结语`/`参考文献`…, whole-line bold, a whole-line bracketed part name (`【案例简介】`). A numbered line is
  a heading only when it is short and has no sentence punctuation; `（一）优势。1.……` is a run-in heading (it
  also stays in its paragraph), but `（六）其他人员。` alone is an enumerated item. Levels follow the numbering
  style (the order in which styles appear), not the markdown level, because extractions assign `###`
  inconsistently; `第X编/章/节` carry their level in the word (编 1, 章 2, 节 3).
- `第X条` (`CLAUSE`) opens a 条 of a law or regulation; labels (`摘要：` `关键词：` `DOI：`), captions, closings,
  news marks, bylines, names and affiliations each have a shape here.
"""
from __future__ import annotations

import re

from index.normalize import CJK, LIST_ITEM, clean_meta, collapse_spaces, strip_glyphs
from index.structure.records import Heading

SENT_PUNCT = re.compile(r"[。！？；!?;]")
ANY_PUNCT = re.compile(r"[。！？；，、：!?;,:]")
NUMBERINGS = (
    ("chapter", re.compile(r"第[一二三四五六七八九十百零〇\d]+[编章节篇部分](?![的之])\s*")),
    ("cn", re.compile(r"[一二三四五六七八九十]{1,3}\s*[、．.]\s*")),
    ("cn-paren", re.compile(r"[（(]\s*[一二三四五六七八九十]{1,3}\s*[）)]\s*")),
    ("dec", re.compile(r"\d{1,2}(?:[.．]\d{1,2}){1,4}(?![.．]?\d)\s*")),
    ("arabic", re.compile(r"\d{1,2}\s*[、．.](?![.．\d])\s*")),
    ("dec", re.compile(r"\d{1,2}\s+(?=[^\d\s%])")),           # "1 引言": a section number followed by a space
    ("arabic-paren", re.compile(r"[（(]\s*\d{1,2}\s*[）)]\s*")),
    ("circled", re.compile(r"[①-⑳]\s*")),
)
KEYWORD_HEADING = re.compile(
    r"^[【\[［]?\s*(?P<kw>引\s*言|前\s*言|绪\s*论|导\s*言|结\s*语|结\s*论|结\s*束\s*语|小\s*结|总\s*结|参\s*考\s*文\s*献|"
    r"致\s*谢|附\s*录|Introduction|Conclusions?|References|Bibliography|Acknowledge?ments?)\s*[】\]］]?\s*[：:]?$",
    re.I)
REFERENCE_WORDS = re.compile(r"参\s*考\s*文\s*献|References|Bibliography", re.I)
MAX_HEADING = 40                    # characters after the number; longer numbered lines are sentences
LABELS = (
    ("abstract", r"摘\s*要|内容摘要|内容提要|提\s*要|Abstract"),
    ("keywords", r"关\s*键\s*[词字]|Key\s*-?\s*words?"),
    ("bio", r"作者简介|作者介绍|通讯作者|About the authors?"),
    ("meta", r"基金项目|收稿日期|修回日期|中图分类号|文献标识码|文章编号|引用格式"),
    ("doi", r"DOI"),
)
LABEL = re.compile(
    r"^[【\[［(（]?\s*(?P<label>" + "|".join(f"(?P<{k}>{p})" for k, p in LABELS) + r")\s*"
    r"(?:[】\]］)）]\s*[：:]?\s*|[：:]\s*|\s+|$)(?P<rest>.*)$", re.I)
DOI = re.compile(r"10\.\d{4,9}/[^\s，。；;、]+")
CAPTION = re.compile(r"^(?:图|表|Fig\.?|Figure|Table)\s*\d+(?:[-.．]\d+)*(?:\s+|[：:．.]\s*|$)", re.I)
CLOSING = re.compile(r"^[（(]\s*(?:作者单位|作者工作单位|单位)\s*[：:]")
NEWS_MARK = re.compile(r"^[（(]\s*(?:上接|接上|下转|转下|紧接)[^）)]{0,12}[）)]$")
NEWS_OPENING = re.compile(r"^(?:本报讯|新华社|人民网|央视网|中新网|据.{1,10}报道)")
DATE_LINE = re.compile(r"^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日$")
BYLINE_START = re.compile(r"[□■◆◇●○▲△★☆▪▫◎姻]|文\s*[/／]|作者\s*[：:]")
BYLINE_PREFIX = re.compile(r"^(?:文\s*[/／]|作者\s*[：:])\s*")
NAME = re.compile(rf"[{CJK}]{{2,4}}|[{CJK}]{{1,8}}·[{CJK}]{{1,10}}")
NAME_MARKS = re.compile(r"[\d*＊†‡¹²³⁴⁵⁶⁷⁸⁹⁰]+$")
EN_NAMES = re.compile(r"^[A-Z][A-Za-z'’\-]+(?:,?\s+(?:and\s+)?[A-Z][A-Za-z'’\-.]*){1,11}[\d*,\s]*$")
POSTCODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
ORG_END = re.compile(r"(?:公司|大学|学院|研究院|研究所|研究中心|中心|集团|委员会|党校|医院|学校|银行|厂|矿|局|处|站"
                      r"|University|Institute|College|Academy|Ltd\.?|Company|Corporation)"
                      r"(?:[\s，,]+[\w·]{2,12}){0,4}$")
REF_ITEM = re.compile(r"^(?:[\[［]\s*\d{1,3}\s*[\]］]|\d{1,3}[.、．]\s*\S|[（(]\d{1,3}[）)])")
NOTICE_WORDS = ("拍卖", "竞买", "竞拍", "竞价", "招标", "投标", "中标", "公告", "公示", "启事", "声明", "保证金",
                 "报名", "开户行", "账号", "咨询电话", "联系电话", "监督电话", "联系人")
CJK_CHAR = re.compile(f"[{CJK}]")
NOT_CJK = re.compile(f"[^{CJK}]+")


def numbering(text: str) -> tuple[str, int, str] | None:
    """(family, depth, rest) when `text` starts with a section or item number."""
    for family, pattern in NUMBERINGS:
        m = pattern.match(text)
        if m and m.end() < len(text):
            if family == "dec":
                depth = len(re.findall(r"\d+", m.group()))
            elif family == "chapter":       # 编 > 章 > 节, whichever appears first: the level is in the word
                depth = CHAPTER_DEPTH[m.group().rstrip()[-1]]
            else:
                depth = 0
            return family, depth, text[m.end():]
    return None


TOC = re.compile(r"^(?:目\s*录|Contents|Table of Contents)$", re.I)
# Two-character words that stand alone on a line of a document and are not people: parts of a regulation or
# a report (`目　　录` would otherwise be the "author" of the title above it).
NOT_NAMES = re.compile(r"^(?:目录|总则|附则|总纲|序言|分则|附件|正文|说明|全文|通知|公告|附表)$")
CHAPTER_DEPTH = {"编": 1, "篇": 1, "分": 1, "章": 2, "节": 3}   # 分: 第一部分
# `第十条　国家……`, `第十条之一`: a 条 of a law or regulation. The number is its locator.
CLAUSE = re.compile(r"^第[一二三四五六七八九十百千零〇两\d]{1,8}条(?:之[一二三四五六七八九十]{1,3})?")
# A whole-line bracketed heading: `【案例简介】`, `【难点辨析】` (labels such as 【摘要】 are matched first).
BRACKET = re.compile(r"^[【［]\s*([^】］\s][^】］]{1,15})\s*[】］]\s*[：:]?$")


def strip_colon(text: str) -> str:
    return re.sub(r"\s*[：:]$", "", text)


def heading_of(raw: str, text: str) -> Heading | None:
    """The heading a whole line makes, or None (run-in headings are found by `run_in`)."""
    if not text:
        return None
    md = re.match(r"^\s{0,3}(#{1,6})\s+\S", raw)
    bold = re.fullmatch(r"\s*(?:\*\*|__)(.+?)(?:\*\*|__)\s*[：:]?\s*", raw)
    kw = KEYWORD_HEADING.match(text)
    num = numbering(text)
    refs = bool(kw and REFERENCE_WORDS.fullmatch(re.sub(r"\s", "", kw.group("kw"))))
    if md:
        level = len(md.group(1))
        if num:
            return Heading(strip_colon(text), num[0], num[1], level, is_refs(num[2]))
        if kw:
            return Heading(strip_colon(text), "kw", 0, level, refs)
        return Heading(strip_colon(text), "md", level, level)
    if kw:
        return Heading(strip_colon(text), "kw", 0, 0, refs)
    if num:
        family, depth, rest = num
        rest = rest.strip()
        if (rest and len(rest) <= MAX_HEADING and not SENT_PUNCT.search(rest)
                and not re.search(r"[，,、]$", rest)):
            return Heading(strip_colon(text), family, depth, 0, is_refs(rest))
        return None
    if bold and len(text) <= MAX_HEADING and not SENT_PUNCT.search(text) and not LABEL.match(text):
        return Heading(strip_colon(text), "bold", 0)
    if BRACKET.match(text) and not SENT_PUNCT.search(text):
        return Heading(strip_colon(text), "bracket", 0)
    return None


def is_refs(rest: str) -> bool:
    return bool(REFERENCE_WORDS.fullmatch(strip_colon(re.sub(r"\s", "", rest))))


def run_in(text: str) -> Heading | None:
    """`（一）完善组织体系建设。工会工作……`: a short numbered phrase closed by 。 at the start of a paragraph."""
    num = numbering(text)
    if not num:
        return None
    family, depth, rest = num
    if family == "chapter":
        return None
    m = re.match(r"^(.{1,24}?)(?:。|\s+(?=" + LIST_ITEM.pattern[1:] + "))", rest)
    if not m or ANY_PUNCT.search(m.group(1)) or not rest[m.end():].strip():
        return None     # `（六）其他依法履行公职的人员。` alone is an enumerated item, not a run-in heading
    return Heading(text[:len(text) - len(rest)] + m.group(1), family, depth)


def names_of(tokens: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """(trailing person names, the tokens before them): `刘 莹` -> 刘莹, single characters in a row form one name."""
    merged: list[str] = []
    of_singles = False              # whether merged[-1] was built from single characters only
    for tok in tokens:
        tok = NAME_MARKS.sub("", tok)
        single = len(tok) == 1 and bool(CJK_CHAR.fullmatch(tok))
        if single and of_singles:
            merged[-1] += tok
        else:
            merged.append(tok)
            of_singles = single
    k = len(merged)
    while k > 0 and NAME.fullmatch(merged[k - 1]):
        k -= 1
    return tuple(merged[k:]), merged[:k]


def split_tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[\s,，、;；]+", text) if t]


def byline_of(raw: str) -> tuple[tuple[str, ...], str] | None:
    """(authors, affiliation) of a marked byline: `□ 刘 莹`, `姻平煤神马建工集团建井一处 李宁坡`, `作者：张三`."""
    if not BYLINE_START.match(raw.lstrip()):      # cheap test first: most lines are not bylines
        return None
    line = clean_meta(raw)
    rest = strip_glyphs(line)
    if rest == line:                               # no glyph: a written prefix, or not a byline
        m = BYLINE_PREFIX.match(line)
        if not m:
            return None
        rest = line[m.end():]
    if not rest or len(rest) > 50 or SENT_PUNCT.search(rest):
        return None
    names, before = names_of(split_tokens(rest))
    return (names, " ".join(before)) if names else None


def byline_parts(raw: str, script: str) -> list[str]:
    """A byline as shown: its words one per line (`平煤神马建工集团建井一处` / `李宁坡`), glyph dropped.

    Words are taken verbatim from the cleaned line, so a chunk quoting them quotes its source.
    """
    text = strip_glyphs(clean_meta(raw))
    if script == "en":
        return [text]
    words: list[str] = []
    single_run = False
    for word in text.split():
        single = len(word) == 1 and bool(CJK_CHAR.fullmatch(word))
        if single and single_run:
            words[-1] += word                      # `刘 莹` is one name
        else:
            words.append(word)
            single_run = single
    return [collapse_spaces(w) for w in words]


def plain_names(raw: str) -> tuple[str, ...]:
    """Authors of a line that holds only names: `杨晓炜`, `曾程 杜淏天`, `Cheng Zeng Gengtian Du`."""
    if len(raw) > 120:
        return ()
    text = clean_meta(raw)
    if EN_NAMES.match(text) and len(text) <= 80:
        return tuple(p.strip() for p in re.split(r",|\band\b", text) if p.strip())
    tokens = split_tokens(text)
    if not 1 <= len(tokens) <= 8 or KEYWORD_HEADING.match(text) or LABEL.match(text) \
            or NOT_NAMES.match(re.sub(r"\s", "", text)):
        return ()
    names, before = names_of(tokens)
    return () if before else names


def is_affiliation(text: str) -> bool:
    if len(text) > 120 or re.search(r"[。！？]", text):
        return False
    return bool(POSTCODE.search(text) or ORG_END.search(text))


def script_of(text: str) -> str:
    cjk = len(CJK_CHAR.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk and cjk >= latin / 4 else "en" if latin else ""


def title_like(text: str, script: str) -> bool:
    if script == "zh":
        return 4 <= len(text) <= 60 and not re.search(r"[。！？；，、：:,;!?]$", text) and "。" not in text
    words = text.split()
    return 3 <= len(words) and len(text) <= 300 and not re.search(r"[.;:,]$", text)


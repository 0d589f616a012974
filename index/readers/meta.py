"""Pure functions over what a file says about itself: junk titles and authors, journal header lines, DOIs.

Shared by the readers (PDF document info, DOCX core properties, a header line of any format). Each function
takes strings and returns strings or a frozen record; none reads files.

- `clean_title`: a document-info title is often junk left by the tool that made the file ("Microsoft Word -
  x.doc", "untitled", "Document1", a file name): those give "".
- `clean_authors`: the Author field, split into names; account names ("Administrator", "微软用户") dropped.
- `parse_journal_line`: a header line that names the journal and its issue, 「《中国政策研究》2024年第3期」,
  「中国政策研究 2024 年第 3 期」, gives (journal, year, issue); a sentence that merely mentions an issue does not.
- `find_doi`: the first DOI in a text.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"

# Titles that office and PDF tools write by themselves; compared case-insensitively against the whole title.
_JUNK_TITLE = re.compile(
    r"^(?:untitled(?:[\s_-]*\d+)?|no title|无标题(?:[\s_-]*\d+)?|未命名(?:[\s_-]*\d+)?|document\s*\d*|文档\s*\d*"
    r"|new document|新建\s*(?:microsoft\s*)?(?:word\s*)?文档.*|slide\s*\d*|幻灯片\s*\d*|powerpoint\s*演示文稿"
    r"|print|打印|title|标题|none|null|default|temp|test)$", re.I)
# "Microsoft Word - 2024年工作要点.docx", "WPS文字 - x": the tool's prefix in front of a file name.
_TOOL_PREFIX = re.compile(r"^(?:microsoft\s+(?:word|powerpoint|excel)|wps\s*(?:文字|演示|表格)?|word)\s*[-–—:]\s*", re.I)
_FILE_EXT = re.compile(r"\.(?:docx?|wps|pdf|txt|rtf|pptx?|xlsx?|indd|qxd|tmp|html?|tex|dvi|ps|eps|odt|jpe?g|png|tiff?)$",
                       re.I)
_PATHLIKE = re.compile(r"^(?:[a-z]:\\|/|\\\\|about:|file:|https?:|www\.)|[\\/][^\\/]+[\\/]", re.I)
# An ASCII token with no spaces and an underscore or a digit run in it: "2024_03_final", "ABC123-v2", "scan0001".
_FILENAME_TOKEN = re.compile(r"^(?=.*(?:_|\d{3,}))[A-Za-z0-9_.\-]+$")

# Author fields that name a computer account, not a person.
_JUNK_AUTHOR = re.compile(
    r"^(?:admin(?:istrator)?|user|owner|guest|author|unknown|anonymous|microsoft\s+office\s+user|微软用户|用户|"
    r"作者|管理员|pc|dell|hp|lenovo|thinkpad|asus|acer|china|windows\s*user|雨林木风.*|深度.*|番茄花园.*|"
    r"[a-z]{1,3}\d{2,}|user-?\w*|\W+)$", re.I)
_AUTHOR_SPLIT = re.compile(r"\s*[;；,，、/|]\s*|\s+and\s+|\s{2,}")

_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"(?:\d{1,3}|[一二三四五六七八九十]{1,3})"
_YEAR = r"(?:19|20)\d{2}"
# 《刊名》 anywhere with 年第N期, or a bare 刊名 (CJK, optionally with a bracketed 版 such as （社会科学版）) in front.
_ISSUE = rf"(?P<year>{_YEAR})\s*年\s*(?:第\s*(?P<issue>{_NUM})\s*期|(?P<issue2>\d{{1,2}})\s*期)"
_BRACKETED = re.compile(rf"《(?P<journal>[^《》]{{2,30}})》")
_BARE = re.compile(rf"^\s*(?P<journal>[{_CJK}]{{2,24}}(?:\s*[（(][{_CJK}]{{2,10}}[）)])?)\s*[·•・|｜,，]?\s*{_ISSUE}")
_ISSUE_RE = re.compile(_ISSUE)
# Beside the journal reference a header line holds little: volume, 总第N期, page range, separators.
_HEADER_REST = re.compile(rf"第\s*\d{{1,4}}\s*卷|总第\s*\d{{1,5}}\s*期|[Vv]ol\.?\s*\d+|[Nn]o\.?\s*\d+|\d+\s*[-–~]\s*\d+|"
                          rf"[\s·•・|｜,，.:：;；()（）\[\]【】/\-–—]+|\d+")
_MAX_REST = 6              # CJK characters left over beyond which a line is a sentence, not a header

DOI_RE = re.compile(r"\b10\.\d{4,9}/[^\s\"<>，。；、）)】]+", re.I)


@dataclass(frozen=True, slots=True)
class JournalRef:
    journal: str      # 中国政策研究
    year: str         # 2024
    issue: str        # 3 (digits, no leading zero)


def _fold(text: str) -> str:
    # Full-width digits and letters to ASCII so １２ matches \d and "ｕｎｔｉｔｌｅｄ" matches the junk list.
    return unicodedata.normalize("NFKC", text)


def clean_title(title: str) -> str:
    """The title as stated, or "" when it is junk a tool wrote: "Microsoft Word - x.doc", "untitled", file names."""
    t = " ".join((title or "").split())
    if not t:
        return ""
    folded = _fold(t)
    if _TOOL_PREFIX.match(folded):
        return ""          # the rest is the file name the tool was given, not a title
    if _JUNK_TITLE.match(folded) or _FILE_EXT.search(folded) or _PATHLIKE.search(folded):
        return ""
    if _FILENAME_TOKEN.match(folded):
        return ""
    if not re.search(rf"[{_CJK}A-Za-z]", folded):
        return ""          # only digits and punctuation: a number or date, not a title
    return t


def clean_authors(author: str) -> tuple[str, ...]:
    """Names in a document-info Author field; account names ("Administrator", "微软用户") are dropped."""
    names = []
    for part in _AUTHOR_SPLIT.split(" ".join((author or "").split())):
        part = part.strip()
        if part and not _JUNK_AUTHOR.match(_fold(part)) and part not in names:
            names.append(part)
    return tuple(names)


def _issue_number(raw: str) -> str:
    if raw.isdigit():
        return str(int(raw))
    # 一 .. 九十九 in the usual spelling: 十二 = 12, 二十 = 20, 三 = 3
    if "十" in raw:
        tens, _, ones = raw.partition("十")
        return str((_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0))
    return "".join(str(_CN_DIGITS[c]) for c in raw if c in _CN_DIGITS)


def parse_journal_line(line: str) -> JournalRef | None:
    """Journal, year and issue from a header line such as 「《中国政策研究》2024年第3期」; None for other lines.

    The reference must make up the line: a sentence that cites an issue (「见《求是》2024年第3期的文章」) leaves too
    much text over and is not a header.
    """
    text = _fold(" ".join((line or "").split()))
    if not text or len(text) > 80:
        return None
    issue_m = _ISSUE_RE.search(text)
    if issue_m is None:
        return None
    journal = ""
    spans = [issue_m.span()]
    m = _BRACKETED.search(text)
    if m:
        journal = m.group("journal").strip()
        spans.append(m.span())
    else:
        m = _BARE.match(text)
        if m:
            journal = re.sub(r"\s+", "", m.group("journal"))
            spans = [m.span()]
    if not journal:
        return None
    rest = text
    for a, b in sorted(spans, reverse=True):
        rest = rest[:a] + " " + rest[b:]
    rest = _HEADER_REST.sub("", rest)
    if len(rest) > _MAX_REST or rest.endswith(("。", "！", "？")):
        return None
    issue = issue_m.group("issue") or issue_m.group("issue2")
    return JournalRef(journal, issue_m.group("year"), _issue_number(issue))


def find_doi(text: str) -> str:
    """The first DOI in `text` ("10.12417/3041-0630.26.08.049"), without trailing punctuation; "" when none."""
    m = DOI_RE.search(_fold(text or ""))
    return m.group(0).rstrip(".,;:") if m else ""

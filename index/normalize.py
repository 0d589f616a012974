"""Pure text functions for messy Chinese journal extractions: the displayed text and the searchable text.

Choices (each one has a row in tests/index/test_normalize.py):
- Full-width ASCII letters and digits (`Ａ`-`Ｚ`, `ａ`-`ｚ`, `０`-`９`) are folded to ASCII; full-width punctuation
  (`，。：；（）“”`) is kept exactly as printed. No general NFKC: it would turn `，` into `,` and `（` into `(`.
- Whitespace between two CJK characters, or between CJK text and CJK punctuation, is removed: Chinese is written
  without spaces, so there it is always an extraction artifact (`具 象 的 发 展` -> `具象的发展`). Whitespace
  elsewhere (inside English, around numbers: `在 2020 年`) is kept, folded to one space.
- A wrapped line is joined to the next one unless it ends a sentence (`。！？…`, also `.!?` after a letter) or
  the caller says the next line starts a new unit (a heading, a numbered item).
- Citation markers stay in the displayed text (the extraction's `^[1]` is shown as `[1]`) and are dropped by
  `searchable`, so `[1]` never becomes a search term.
- Layout glyphs in front of a byline (`□ 刘 莹`, and `姻` in its one byline shape) are dropped.
- The gap after a line's leading article or chapter number (`第十条　国家……`, `第一章　总则`) is kept, as the
  document has it (one U+3000 or one space): a quoted 条 reads as printed, never `第十条国家……`.
- Web leftovers in text files: HTML entities (`&nbsp;` `&amp;` `&#12288;`) are decoded, inline HTML comments and
  tags (`<!-- … -->`, `<br/>`, `<span …>`) dropped.
"""
from __future__ import annotations

import html
import re
from typing import Callable, Sequence

# Unified ideographs, extension A, compatibility ideographs (extension B+ are astral and rare in this corpus).
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Punctuation that belongs to CJK text: CJK symbols (、。〈〉《》「」【】〔〕…), full-width forms, curly quotes,
# em dash and ellipsis as used in Chinese (`——以北起院为例`), middle dot (`中国·北京`).
CJK_PUNCT = "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\u2018\u2019\u201c\u201d\u2014\u2026\u00b7"

_FULLWIDTH_ALNUM = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                    for c in range(r[0], r[1] + 1)}
# Spaces that PDF extractions emit besides U+0020; zero-width characters are dropped outright.
_SPACES = {c: " " for c in (0x3000, 0x00A0, 0x2002, 0x2003, 0x2009, 0x202F, 0x0009, 0x000B, 0x000C)}
_ZERO_WIDTH = {c: None for c in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD)}
_TRANSLATE = {**_FULLWIDTH_ALNUM, **_SPACES, **_ZERO_WIDTH}
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_NEEDS_FOLD = re.compile("[" + "".join(re.escape(chr(c)) for c in _TRANSLATE) + "]")

_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+|\s+#+\s*$")
_MD_BULLET = re.compile(r"^\s*(?:[-*+]|>)\s+")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((?:https?://|/|\.)[^)]*\)")
_MD_STRONG = re.compile(r"\*\*|__")
_CARET_CITE = re.compile(r"\^(?=\[\d)")
_MARKUP_CHARS = re.compile(r"[#*_\[!>^+\\-]")
_LEAD_GLYPH = re.compile(rf"^\s*(?:[□■◆◇●○▲△★☆▪▫◎]\s*|姻(?=\S{{2,40}}(?:\s+[{CJK}·]{{1,10}}){{1,6}}\s*$))")

_WEB_HINT = re.compile(r"[&<>]")
_ENTITY = re.compile(r"&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[A-Za-z]{2,8});")
_HTML_BITS = re.compile(r"<!--.*?(?:-->|$)|^.*?-->|</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
# A leading 第X条/章/节/编 and the gap after it (before fold_width, so U+3000 is still itself).
_NUMBER_GAP = re.compile(r"^(第[一二三四五六七八九十百千零〇两0-9０-９]{1,8}[条章节编](?:之[一二三四五六七八九十]{1,3})?)"
                         r"([ \u3000\u00a0\t]+)(?=\S)")

_HAS_CJK = re.compile(f"[{CJK}]")
_CJK_PUNCT_SET = frozenset(chr(c) for lo, hi in ((0x3000, 0x303F), (0xFF01, 0xFF0F), (0xFF1A, 0xFF20), (0xFF3B, 0xFF40),
                                                  (0xFF5B, 0xFF65)) for c in range(lo, hi + 1)) | set("‘’“”—…·")
_LATIN = re.compile(r"[A-Za-z]{2}")
_PARENTHETICAL = re.compile(r"^[（(][^（()）\n]{2,120}[）)]$")
_BARE_NUMBER = re.compile(r"^第[一二三四五六七八九十百千零〇两0-9]{1,8}条(?:之[一二三四五六七八九十]{1,3})?$")
_MD_ESCAPE = re.compile(r"\\([\[\]|*_#<>()`!\\-])")

_WS = re.compile(r"\s+")
_CJK_GAP = re.compile(rf"(?<=[{CJK}])\s+(?=[{CJK}])")
_PUNCT_GAP = re.compile(rf"(?<=[{CJK}{CJK_PUNCT}])\s+(?=[{CJK_PUNCT}])|(?<=[{CJK_PUNCT}])\s+(?=[{CJK}])")

_CLOSERS = "”’」』）)】》\\]\"'"
_CITE = r"\^?[\[［]\s*\d{1,3}(?:\s*[-–—~～,，、]\s*\d{1,3})*\s*[\]］]"
_SENTENCE_END = re.compile(rf"(?:[。！？!?…]|(?<=[A-Za-z{_CLOSERS}])\.)(?:[{_CLOSERS}]|{_CITE})*$")
_CITATION = re.compile(rf"{_CITE}|[¹²³⁴⁵⁶⁷⁸⁹⁰]+")
_ASCII_WORD_END = re.compile(r"[A-Za-z0-9,.;:!?%)\]\"']$")
_ASCII_WORD_START = re.compile(r"^[A-Za-z0-9(\[\"']")

# A line that starts a numbered item (`一、` `（一）` `1、` `1.` `（1）` `①`) starts a new paragraph even when the
# line before it does not end a sentence: item lists are printed one item per line.
LIST_ITEM = re.compile(r"^(?:[一二三四五六七八九十]{1,3}[、．]|[（(][一二三四五六七八九十]{1,3}[）)]|\d{1,2}[、．.](?![.．\d])"
                       r"|[（(]\d{1,2}[）)]|[①-⑳])")

# Sentence ends used to split long paragraphs: the strong ones first, then clause ends as a fallback.
_STRONG_END = re.compile(rf"(?:[。！？!?…]+|(?<=[A-Za-z{_CLOSERS}])\.(?=\s))(?:[{_CLOSERS}]|{_CITE})*")
_WEAK_END = re.compile(rf"[；;]+(?:[{_CLOSERS}])*")
_CLAUSE_END = re.compile(rf"[，,、：:]+(?:[{_CLOSERS}])*")


def fold_width(text: str) -> str:
    """Full-width ASCII letters/digits to ASCII, exotic spaces to U+0020, zero-width and control characters out."""
    if _NEEDS_FOLD.search(text):         # a regex scan is far cheaper than translate() on clean lines
        text = text.translate(_TRANSLATE)
    return _CONTROL.sub("", text)


def strip_markup(line: str) -> str:
    """Markdown that carries no text: heading hashes, list bullets, bold markers, images; links keep their text.

    The extraction's superscript citation `^[1]` becomes `[1]`.
    """
    if not _MARKUP_CHARS.search(line):   # most lines have no markup: skip six substitutions
        return line
    if "\\" in line:
        line = _MD_ESCAPE.sub(r"\1", line)   # `\[\[链接\]\]`: markdown's escapes show the bare character
    line = _MD_HEADING.sub("", line)
    line = _MD_BULLET.sub("", line)
    line = _MD_IMAGE.sub("", line)
    line = _MD_LINK.sub(r"\1", line)
    line = _MD_STRONG.sub("", line)
    return _CARET_CITE.sub("", line)


def collapse_spaces(text: str) -> str:
    """Fold whitespace runs to one space and drop the spaces a PDF extraction puts between CJK characters."""
    text = _WS.sub(" ", text).strip()
    text = _CJK_GAP.sub("", text)
    return _PUNCT_GAP.sub("", text)


def strip_glyphs(line: str) -> str:
    """Drop the layout glyph in front of a byline: `□ 刘 莹` -> `刘 莹`.

    Box and bullet glyphs at the start of a line never carry text. `姻` does, so it goes only in the one shape
    it has as this journal family's extracted byline glyph: `姻<affiliation> <name> [<name> …]`.
    """
    return _LEAD_GLYPH.sub("", line)


def decode_web(line: str) -> str:
    """HTML entities decoded, inline comments and tags dropped: what a browser would show of the line."""
    if "&" in line:
        line = _ENTITY.sub(lambda m: html.unescape(m.group()), line)
    if "<" in line or "-->" in line:
        line = _HTML_BITS.sub("", line)
    return line


def clean_line(line: str) -> str:
    """One source line as displayed: width-folded, markup-free, glyph-free, CJK spacing repaired, trimmed."""
    if _WEB_HINT.search(line):           # one scan for `&` `<` `>`: most lines hold none
        line = decode_web(line)
    out = collapse_spaces(strip_glyphs(strip_markup(fold_width(line))))
    if out[:1] == "第":
        source = line.strip()
        out = _keep_number_gap(strip_markup(source).strip() if source[:1] in "#*-+>_" else source, out)
    return out


def _keep_number_gap(source: str, out: str) -> str:
    """`第十条　国家` stays as printed: collapse_spaces would glue the number to its text."""
    m = _NUMBER_GAP.match(source)
    if not m:
        return out
    number = fold_width(m.group(1))
    if not out.startswith(number) or out[len(number):len(number) + 1].isspace():
        return out
    gap = "\u3000" if "\u3000" in m.group(2) else " "
    return number + gap + out[len(number):]


def clean_meta(text: str) -> str:
    """A metadata value (affiliation, title in a byline): width-folded and whitespace-folded, spaces kept.

    Spaces between CJK words are meaningful here (`大唐凉山新能源有限公司 四川 成都 610074`).
    """
    return _WS.sub(" ", strip_markup(fold_width(text))).strip()


def ends_sentence(line: str) -> bool:
    """Whether a cleaned line ends a sentence (so a wrap cannot continue past it); a line that is one whole
    parenthetical (`（2004年12月16日）`, `（2018年3月20日……通过）`) stands alone too."""
    line = line.rstrip()
    return bool(_SENTENCE_END.search(line)) or (line[:1] in "（(" and bool(_PARENTHETICAL.match(line)))


def _separator(left: str, right: str) -> str:
    # English words wrapped over two lines need their space back; CJK never takes one, and a line ending in a
    # hyphen (`16-` / `19号`, `state-` / `owned`) continues without one. A 条 number printed on a line of its own
    # (`第一条` / `为了……`) keeps a gap from its text, as when it is printed on the same line.
    if left.endswith("-") or not left or not right:
        return ""
    if left[0] == "第" and _BARE_NUMBER.match(left):
        return "\u3000"
    return " " if _ASCII_WORD_END.search(left) and _ASCII_WORD_START.search(right) else ""


def join_lines(lines: Sequence[str]) -> str:
    """Join cleaned lines of one paragraph (no blank lines) into one string."""
    return "".join(line_starts_and_text(lines)[1])


def line_starts_and_text(lines: Sequence[str]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The pieces `join_lines` concatenates, and the offset where each input line starts in the result.

    The offsets let a chunk cut from the middle of a paragraph report the source lines it came from.
    """
    starts: list[int] = []
    pieces: list[str] = []
    pos = 0
    prev = ""
    for line in lines:
        sep = _separator(prev, line) if pieces else ""
        if sep:
            pieces.append(sep)
            pos += len(sep)
        starts.append(pos)
        pieces.append(line)
        pos += len(line)
        prev = line or prev
    return tuple(starts), tuple(pieces)


def split_wrapped(lines: Sequence[str], breaks_before: Callable[[str], bool] | None = None) -> list[tuple[int, int]]:
    """Group cleaned, non-blank lines into paragraphs; returns `[start, end)` index ranges.

    A paragraph ends after a line that ends a sentence, and before a line for which `breaks_before` is true
    (default: a numbered list item), or where the script switches: a line with no Chinese at all next to one
    that meets it with Chinese (`General Program` / `中国共产党是……`: a wrap never changes language). Every other
    line break is a hard wrap and is joined.
    """
    starts_new = breaks_before if breaks_before is not None else (lambda s: bool(LIST_ITEM.match(s)))
    ranges: list[tuple[int, int]] = []
    begin = 0
    for i, line in enumerate(lines):
        if i > begin and (starts_new(line) or _switches_script(lines[i - 1], line)):
            ranges.append((begin, i))
            begin = i
        if ends_sentence(line):
            ranges.append((begin, i + 1))
            begin = i + 1
    if begin < len(lines):
        ranges.append((begin, len(lines)))
    return ranges


def _switches_script(before: str, after: str) -> bool:
    # Character tests first: this runs for every pair of lines, and nearly every pair is Chinese-Chinese.
    if not before or not after:
        return False
    a0, b1 = after[0], before[-1]
    b1_cjk = _is_cjk(b1) or b1 in _CJK_PUNCT_SET
    if _is_cjk(a0) or a0 in "（《“【":
        return not b1_cjk and bool(_LATIN.search(before)) and not _HAS_CJK.search(before)
    if a0.isascii() and a0.isalpha():
        return b1_cjk and not _HAS_CJK.search(after)
    return False


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def join_wrapped(raw_lines: Sequence[str], is_heading: Callable[[str], bool] | None = None) -> list[str]:
    """Raw lines -> cleaned paragraphs: blank lines ignored, wraps joined, headings kept as their own lines.

    Blank lines carry no information in these extractions (some put one after every wrapped line), so only
    sentence ends, headings and numbered items break paragraphs.
    """
    heading = is_heading or (lambda s: False)
    cleaned = [c for c in (clean_line(r) for r in raw_lines) if c]
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        out.extend(join_lines(run[a:b]) for a, b in split_wrapped(run))
        run.clear()

    for line in cleaned:
        if heading(line):
            flush()
            out.append(line)
        else:
            run.append(line)
    flush()
    return out


def sentence_spans(text: str, max_chars: int) -> list[tuple[int, int]]:
    """`[start, end)` spans covering `text`, each at most `max_chars` long where the text allows.

    Cuts at sentence ends (`。！？`); a sentence still too long is cut at `；`, then at `，、：`, and only as a
    last resort at `max_chars`.
    """
    spans = [(0, len(text))]
    for pattern in (_STRONG_END, _WEAK_END, _CLAUSE_END, None):
        spans = [piece for s, e in spans for piece in
                 (_cut(text, s, e, pattern, max_chars) if e - s > max_chars else [(s, e)])]
    return spans


def _cut(text: str, start: int, end: int, pattern: re.Pattern | None, max_chars: int) -> list[tuple[int, int]]:
    if pattern is None:
        return [(s, min(s + max_chars, end)) for s in range(start, end, max_chars)]
    cuts = [m.end() for m in pattern.finditer(text, start, end) if m.end() < end]
    bounds = [start, *cuts, end]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def searchable(text: str) -> str:
    """The text to tokenize and embed: citation markers dropped, CJK spacing repaired, whitespace folded,
    traditional characters simplified (see `simplified`)."""
    return simplified(collapse_spaces(_CITATION.sub("", fold_width(text))))


_T2S = None


def simplified(text: str) -> str:
    """Traditional characters -> simplified (OpenCC t2s), for matching only: the displayed text keeps its script.

    Query and index both pass through here, so a question in 「什麼是「一崗雙責」？」 meets a simplified passage and
    a traditional document meets a simplified question. On simplified text t2s is the identity (measured: no
    character changed on seeds/ or the dev corpus' .md files).
    """
    global _T2S
    if text.isascii():
        return text
    if _T2S is None:
        import opencc

        _T2S = opencc.OpenCC("t2s")
    return _T2S.convert(text)

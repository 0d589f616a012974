"""PDF: the text layer through pypdfium2 (BSD/Apache; PyMuPDF is AGPL), OCR for pages without one.

Per page (one page open at a time, every pdfium object closed after use):
1. Characters with their loose boxes (font ascent/descent, so every glyph of a line has the same height) in
   content-stream order; rotated characters (watermarks, vertical margin notes) are left out. Consecutive
   characters on one baseline form a *run*; a gap wider than `_RUN_GAP` em ends it, so text on both sides of a
   column gutter never shares a run.
2. Layout (`layout`, also used for OCR boxes): a recursive column cut. A gutter is a vertical strip that no
   column-width run crosses, with real text columns on both sides (several rows that fill their column); runs
   that do cross it (a full-width title, abstract or caption) split the page into bands, and each band is read
   left column, then right column. Without a gutter, runs are read top to bottom in rows, left to right.
3. One text line per visual line; an empty line where the vertical gap above a line is clearly wider than the
   page's line spacing (a paragraph gap), and between pages. Wrapped lines and spaced CJK are joined downstream
   (index.normalize), exactly as for .txt.
4. Running headers and footers go (`running_lines`): among the outermost lines at the top or bottom of a page,
   those whose text (digits masked) recurs at the same height and type size on another page, with numbers
   that are constant or count the pages; and single lines set apart from the body that have the shape of a
   page number, a browser's print header (date and time) or footer (URL and page x/y), or a journal issue line.
5. Characters: Kangxi radicals and CJK radicals (U+2F00-U+2FDF, U+2E80-U+2EFF) and compatibility ideographs
   (U+F900-U+FAFF, U+2F800-U+2FA1F) that some fonts' ToUnicode maps produce become the unified ideographs
   (`⾼` -> `高`, `⻔` -> `门`); digits split by a space (`第1 1 条`) are joined.

A page needs OCR when its text layer has almost no usable characters (or mostly undecodable ones) and it shows
an image covering a good part of the page, or has drawings but no text (index.readers.ocr).
Metadata: document-info Title/Author (junk dropped: index.readers.meta), journal/year/issue from a header line,
DOI from the first page.
"""
from __future__ import annotations

import bisect
import ctypes
import logging
import math
import re
import statistics
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from index.document import DocMeta, Document
from index.readers import ReadContext, Unreadable
from index.readers import meta as docmeta

log = logging.getLogger(__name__)

# Geometry, in units of the line's own height (a loose box is ~1 em tall), so every rule scales with type size.
_RUN_GAP = 0.6          # a horizontal gap wider than this ends a run: wider than any word space, narrower than a gutter
_SPACE_GAP = 0.3        # a gap wider than this between two characters of a run is a space
_GUTTER_MIN = 0.5       # a column gutter is at least this wide (CSS' default column gap is 1 em, journals 1.5-2)
_COLUMN_ROWS = 3        # a column has at least this many rows in one band (fewer: right-aligned dates, not columns)
_FULL_ROW = 0.6         # a row this share of its column's width "fills" it; columns are mostly such rows
_WORD_GAP = 1.5         # justified text spreads its words at most this far apart; a table's cells are further
_NARROW = 0.75          # a run narrower than this share of the region may be a column's (a 70/30 layout's too)
_TALL = 1.8             # a run this many times the median height is not a line of text (stamp, logo, drop cap)
_PARA_GAP = 0.6         # a vertical gap this much wider than the page's usual line gap marks a paragraph
# Running headers and footers: where they may be and how often they must recur.
_MARGIN_ZONE = 0.12     # top/bottom share of the page height
_EDGE_LINES = 3         # of the lines inside the zone, only the outermost few per page
_SAME_HEIGHT = 0.03     # recurring lines sit at the same height (share of the page height)
# Text layer quality.
_MIN_CHARS = 10         # fewer usable characters than this: the page has no text layer worth keeping
_MAX_BAD = 0.3          # more undecodable characters (private use, U+FFFD) than this share: the layer is garbage
_BIG_IMAGE = 0.25       # an image covering this share of the page makes a page without text a scan


@dataclass(frozen=True, slots=True)
class Run:
    """Text on one visual line without a wide gap; top-down page coordinates in points."""
    text: str
    x0: float
    top: float
    x1: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


@dataclass(frozen=True, slots=True)
class Line:
    """One output line of a page: its text, where it is, and whether a paragraph gap precedes it."""
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    gap_before: bool = False


# --- characters -----------------------------------------------------------------------------------------------

def _radical_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for lo, hi in ((0x2E80, 0x2EFF), (0x2F00, 0x2FDF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)):
        for cp in range(lo, hi + 1):
            folded = unicodedata.normalize("NFKC", chr(cp))
            if folded != chr(cp) and len(folded) == 1:
                table[cp] = folded
    # Most CJK radicals supplement characters (the simplified forms fonts map ⻔ to) have no NFKC decomposition;
    # these are their equivalent unified ideographs (Unicode's EquivalentUnifiedIdeograph data).
    extra = ("⺁厂 ⺅亻 ⺇几 ⺉刂 ⺊卜 ⺌小 ⺎兀 ⺏尣 ⺐尢 ⺒巳 ⺓幺 ⺔彑 ⺖忄 ⺘扌 ⺙攵 ⺛旡 ⺜日 ⺝月 ⺞歺 ⺠民 ⺡氵 ⺢氺 ⺣灬"
             " ⺤爫 ⺦丬 ⺧牛 ⺨犭 ⺩王 ⺪疋 ⺫目 ⺬示 ⺭礻 ⺮竹 ⺯糹 ⺰纟 ⺱罓 ⺲罒 ⺶羊 ⺹耂 ⺺肀 ⺽臼 ⺾艹 ⺿艹 ⻀艹 ⻁虎"
             " ⻂衤 ⻃覀 ⻄西 ⻅见 ⻆角 ⻈讠 ⻉贝 ⻋车 ⻌辶 ⻍辶 ⻎辶 ⻏阝 ⻐钅 ⻑長 ⻒镸 ⻓长 ⻔门 ⻖阝 ⻗雨 ⻘青 ⻙韦"
             " ⻚页 ⻛风 ⻜飞 ⻝食 ⻟飠 ⻠饣 ⻢马 ⻣骨 ⻤鬼 ⻥鱼 ⻦鸟 ⻧卤 ⻨麦 ⻩黄 ⻪黾 ⻫斉 ⻬齐 ⻭歯 ⻮齿 ⻯竜 ⻰龙"
             " ⻱龜 ⻲亀")
    for pair in extra.split():
        table.setdefault(ord(pair[0]), pair[1])
    return table


RADICALS = _radical_table()
_NEEDS_RADICALS = re.compile("[\u2e80-\u2eff\u2f00-\u2fdf\uf900-\ufaff\U0002f800-\U0002fa1f]")
# Single digits separated by single spaces next to CJK text (`第1 1 条`, `2 0 2 4年`): one number split by the
# extraction, whose spaces beside the CJK text are the same artifact. Multi-digit groups (`2020 2021`) and digits
# without CJK beside them (`version 1 2`) are left alone.
_CJK_CLASS = "\u3400-\u9fff\uf900-\ufaff"
_SPLIT_DIGITS = re.compile(rf"(?P<pre>(?<=[{_CJK_CLASS}]) )?(?<![\d.,])(?P<num>\d(?: \d)+)(?![\d.,])"
                           rf"(?P<post> (?=[{_CJK_CLASS}]))?")
_CJK_CHAR = re.compile(rf"[{_CJK_CLASS}]")


def fold_chars(text: str) -> str:
    """Radicals and compatibility ideographs to unified ideographs; split single digits next to CJK joined."""
    if _NEEDS_RADICALS.search(text):
        text = text.translate(RADICALS)
    if " " in text:
        text = _SPLIT_DIGITS.sub(lambda m: _join_digits(m, text), text)
    return text


def _join_digits(m: re.Match, text: str) -> str:
    before = text[m.start() - 1: m.start()] if m.start() else ""
    after = text[m.end(): m.end() + 1]
    if _CJK_CHAR.match(before) or _CJK_CHAR.match(after):
        return m.group("num").replace(" ", "")
    return m.group(0)


_SKIP = frozenset((0, 0xFEFF, 0xFFFE, 0x200B, 0x00AD))      # no text: BOM, non-characters, zero width, soft hyphen
_SPACE_CODES = frozenset((9, 10, 11, 12, 13, 32))


def _bad(cp: int) -> bool:
    # private use (a font without a usable ToUnicode map), the replacement character, control characters
    return 0xE000 <= cp <= 0xF8FF or cp == 0xFFFD or cp < 0x20 or 0x7F <= cp < 0xA0


def _text_runs(textpage, page_height: float) -> tuple[list[Run], int, int]:
    """The runs of a page's text layer, and counts of usable and undecodable characters."""
    tp = textpage.raw
    n = pdfium_c.FPDFText_CountChars(tp)
    box = pdfium_c.FS_RECTF()
    box_ref = ctypes.byref(box)
    # ctypes calls are most of the cost: bound once, called three times a character
    get_unicode, get_angle = pdfium_c.FPDFText_GetUnicode, pdfium_c.FPDFText_GetCharAngle
    get_box = pdfium_c.FPDFText_GetLooseCharBox
    runs: list[Run] = []
    good = bad = 0
    text: list[str] = []
    x0 = top = x1 = bottom = 0.0
    space = False
    min_angle, max_angle = 0.05, 2 * math.pi - 0.05

    def flush() -> None:
        if text:
            runs.append(Run("".join(text), x0, top, x1, bottom))
            text.clear()

    i = 0
    while i < n:
        cp = get_unicode(tp, i)
        idx = i
        i += 1
        if 0xD800 <= cp < 0xDC00 and i < n:            # a UTF-16 surrogate pair spread over two indices
            low = get_unicode(tp, i)
            if 0xDC00 <= low < 0xE000:
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                i += 1
        if cp in _SKIP or cp > 0x10FFFF:
            continue
        if cp in _SPACE_CODES or (cp > 0x7F and chr(cp).isspace()):
            # pdfium's line breaks are its guesses (geometry decides lines here); its generated spaces follow
            # the font's space width and are kept (`第一条 为了`, `state owned`), like the file's own spaces.
            # The split digits they sometimes make (`第1 1 条`) are joined by fold_chars.
            if cp not in (10, 13):
                space = True
            continue
        angle = get_angle(tp, idx)
        if min_angle < angle < max_angle:
            continue                                     # rotated: a watermark or a vertical margin note
        if not get_box(tp, idx, box_ref):
            continue
        cl, cr = box.left, box.right
        ct, cb = page_height - box.top, page_height - box.bottom
        if cb <= ct or cr < cl:
            continue
        if _bad(cp):
            bad += 1
            continue
        good += 1
        ch = chr(cp)
        if text:
            mid = (ct + cb) / 2
            gap = cl - x1
            em = max(bottom - top, cb - ct)
            if (top <= mid <= bottom or ct <= (top + bottom) / 2 <= cb) and -0.5 * em <= gap <= _RUN_GAP * em:
                if space or gap > _SPACE_GAP * em:
                    text.append(" ")
                text.append(ch)
                if cr > x1:
                    x1 = cr
                if ct < top:
                    top = ct
                if cb > bottom:
                    bottom = cb
                space = False
                continue
            flush()
        text.append(ch)
        x0, top, x1, bottom = cl, ct, cr, cb
        space = False
    flush()
    return runs, good, bad


# --- layout -------------------------------------------------------------------------------------------------

def _median_height(runs: Sequence[Run]) -> float:
    return statistics.median(r.height for r in runs) if runs else 1.0


def rows(runs: Iterable[Run]) -> list[list[Run]]:
    """Runs grouped into visual rows, top to bottom, each row left to right.

    A run much taller than the others (an OCR box around a stamp or a logo, a drop capital) is a row of its
    own: as a row's band it would swallow the several lines beside it.
    """
    runs = sorted(runs, key=lambda r: (r.top, r.x0))
    tall = _TALL * _median_height(runs)
    out: list[list[Run]] = []
    band: tuple[float, float] | None = None
    for r in runs:
        if r.height > tall:
            out.append([r])
            continue
        if band is not None and band[0] <= r.middle <= band[1] and out[-1][0].height <= tall:
            out[-1].append(r)
            continue
        out.append([r])
        band = (r.top, r.bottom)
    for row in out:
        row.sort(key=lambda r: r.x0)
    return out


def _gutter(runs: Sequence[Run], h: float) -> tuple[float, float] | None:
    """The x-range of a column gutter among `runs`, or None when they are one column."""
    if len(runs) < 2 * _COLUMN_ROWS:
        return None
    left, right = min(r.x0 for r in runs), max(r.x1 for r in runs)
    width = right - left
    if width <= 0:
        return None
    # Only runs narrower than most of the region can belong to a column; full-width ones are what the gutter
    # may be crossed by (titles, abstracts).
    narrow = sorted((r for r in runs if r.x1 - r.x0 < _NARROW * width), key=lambda r: r.x0)
    if len(narrow) < 2 * _COLUMN_ROWS:
        return None
    # Strips that almost no narrow run covers, inside the middle of the region. A few may cross it (a centred
    # heading, a running header, a page number); they become band separators.
    cover = np.zeros(int(math.ceil(width)) + 2, dtype=np.int32)
    for r in narrow:
        cover[int(r.x0 - left): int(math.ceil(r.x1 - left))] += 1
    # "Almost none": a third of what covers a typical strip of text (header, footer, byline and a centred
    # DOI line on a journal's first page cross the gutter; 25-30 column rows cover each side).
    allowed = max(2, int(np.percentile(cover[cover > 0], 75) / 3))
    low = np.concatenate(([False], cover <= allowed, [False]))
    edges = np.flatnonzero(np.diff(low.astype(np.int8)))
    best = None
    for a, b in zip(edges[::2], edges[1::2]):
        g0, g1 = _gutter_proper(narrow, left + a, left + b - 1)
        if g1 - g0 < _GUTTER_MIN * h or g1 < left + 0.15 * width or g0 > right - 0.15 * width:
            continue
        score = (int(cover[int(g0 - left): int(g1 - left) + 1].min()), -(g1 - g0))
        if _is_columns(runs, g0, g1) and (best is None or score < best[0]):
            best = (score, (g0, g1))
    return best[1] if best else None


def _gutter_proper(runs: Sequence[Run], s0: float, s1: float) -> tuple[float, float]:
    """The gutter inside the little-covered strip s0..s1: from the left column's longest line to the right column.

    Lines start at their column's left edge and end where their words do, so the strip begins inside the left
    column's ragged ends (an English column's short lines, a heading) and ends at the right column's edge. Runs
    that start left of the strip and end inside it are the left column's; the gutter starts after the longest of
    them, so they are read with their column instead of splitting it into bands as runs that cross the page.
    Runs that start inside the strip (a centred running header, a page number) are not column lines.
    """
    ends = [r.x1 for r in runs if r.x0 < s0 < r.x1 < s1]
    return (max(s0, math.ceil(max(ends))) if ends else s0), s1


def _is_columns(runs: Sequence[Run], g0: float, g1: float) -> bool:
    """Whether both sides of the strip g0..g1 hold real text columns in some band between crossing runs."""
    crossing = sorted(r.middle for r in runs if r.x0 < g1 and r.x1 > g0)
    sides = [r for r in runs if not (r.x0 < g1 and r.x1 > g0)]
    left = [r for r in sides if r.x1 <= g0]
    right = [r for r in sides if r.x0 >= g1]
    if not left or not right:
        return False
    region = max(r.x1 for r in runs) - min(r.x0 for r in runs)
    for side in (left, right):
        w = max(r.x1 for r in side) - min(r.x0 for r in side)
        if w < 2 * (g1 - g0) or w < 0.2 * region:
            return False            # narrow cells far apart: a table's columns, read row by row
        # Rows, not runs: a justified English line's word gaps can be wider than a run gap, so it may come as
        # several runs; its words stay closer than a table's cells (_WORD_GAP).
        side_rows = rows(side)
        full = sum(1 for row in side_rows if row[-1].x1 - row[0].x0 >= _FULL_ROW * w and all(
            b.x0 - a.x1 <= _WORD_GAP * max(a.height, b.height) for a, b in zip(row, row[1:])))
        if full < 0.4 * len(side_rows):
            return False            # mostly short pieces: a table or a form, not running text
    # Rows per band on each side: the tallest band must have a column's worth on both.
    counts: dict[tuple[int, int], int] = {}
    for k, side in enumerate((left, right)):
        for row in rows(side):
            b = bisect.bisect(crossing, row[0].middle)
            counts[(b, k)] = counts.get((b, k), 0) + 1
    return any(counts.get((b, 0), 0) >= _COLUMN_ROWS and counts.get((b, 1), 0) >= _COLUMN_ROWS
               for b in range(len(crossing) + 1))


def layout(runs: Sequence[Run], depth: int = 0) -> list[list[Run]]:
    """Runs in reading order as rows: columns read one after the other, full-width runs where they stand."""
    runs = list(runs)
    if not runs:
        return []
    cut = _gutter(runs, _median_height(runs)) if depth < 4 else None
    if cut is None:
        return rows(runs)
    g0, g1 = cut
    crossing = [r for r in runs if r.x0 < g1 and r.x1 > g0]
    others = [r for r in runs if not (r.x0 < g1 and r.x1 > g0)]
    out: list[list[Run]] = []
    # Bands between the crossing runs (top to bottom): each band's left side, then its right side.
    marks = [row for row in rows(crossing)]
    bounds = [row[0].middle for row in marks]
    bands: list[list[Run]] = [[] for _ in range(len(marks) + 1)]
    for r in others:
        bands[bisect.bisect(bounds, r.middle)].append(r)
    for b, band in enumerate(bands):
        out.extend(layout([r for r in band if r.x1 <= g0], depth + 1))
        out.extend(layout([r for r in band if r.x0 >= g1], depth + 1))
        if b < len(marks):
            out.append(marks[b])
    return out


def _row_text(row: Sequence[Run]) -> str:
    parts = [row[0].text]
    for prev, r in zip(row, row[1:]):
        parts.append(" " if r.x0 - prev.x1 > _SPACE_GAP * max(prev.height, r.height) else "")
        parts.append(r.text)
    return "".join(parts)


def page_lines(runs: Sequence[Run]) -> list[Line]:
    """A page's runs -> its lines in reading order, each marked when a paragraph gap precedes it."""
    ordered = [row for row in layout(runs) if row]
    boxes = [(min(r.x0 for r in row), min(r.top for r in row), max(r.x1 for r in row), max(r.bottom for r in row))
             for row in ordered]
    gaps = [b[1] - a[3] for a, b in zip(boxes, boxes[1:])]
    positive = [g for g in gaps if g >= 0]
    usual = statistics.median(positive) if positive else 0.0
    h = statistics.median(b[3] - b[1] for b in boxes) if boxes else 0.0
    out: list[Line] = []
    for k, (row, (x0, top, x1, bottom)) in enumerate(zip(ordered, boxes)):
        text = fold_chars(_row_text(row)).strip()
        if not text:
            continue
        gap = k > 0 and gaps[k - 1] > usual + _PARA_GAP * h
        out.append(Line(text, x0, top, x1, bottom, bool(gap)))
    return out


# --- running headers and footers ------------------------------------------------------------------------------

_PAGE_NUMBER = re.compile(
    r"^(?:[-–—\s]*\d{1,4}[-–—\s]*|第\s*\d{1,4}\s*页(?:\s*[/,，]?\s*共\s*\d{1,4}\s*页)?|共\s*\d{1,4}\s*页\s*第\s*\d{1,4}\s*页"
    r"|\d{1,4}\s*/\s*\d{1,4}|(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?|[ivxlc]{1,6})$", re.I)
_PRINT_HEADER = re.compile(r"^\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4},?\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?(?:\s|$)", re.I)
_PRINT_FOOTER = re.compile(r"(?:https?://|www\.)\S+\s+\d{1,4}\s*/\s*\d{1,4}$", re.I)


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def _margin_lines(lines: Sequence[Line], height: float) -> list[int]:
    """Indices of a page's lines that may be a running header or footer: the outermost few inside the margins."""
    order = sorted(range(len(lines)), key=lambda i: lines[i].top)
    top = [i for i in order[:_EDGE_LINES] if lines[i].bottom <= _MARGIN_ZONE * height]
    bottom = [i for i in order[-_EDGE_LINES:] if lines[i].top >= (1 - _MARGIN_ZONE) * height]
    return sorted(set(top) | set(bottom))


def is_header_shape(text: str) -> bool:
    """A line that is a page number, a browser's print header or footer, or a journal issue line by itself."""
    t = " ".join(text.split())
    return bool(_PAGE_NUMBER.match(t) or _PRINT_HEADER.match(t) or _PRINT_FOOTER.search(t)
                or docmeta.parse_journal_line(t))


def _isolated(lines: Sequence[Line], height: float) -> set[int]:
    """Indices of lines set apart from the text next to them (a header's gap below it, a footer's above it).

    A lone page number or journal line is separated from the body by more than the body's line spacing; a
    body line that happens to have that shape (a wrapped `2/3`) is not.
    """
    order = sorted(range(len(lines)), key=lambda i: lines[i].top)
    gaps = [lines[b].top - lines[a].bottom for a, b in zip(order, order[1:])]
    positive = sorted(g for g in gaps if g > 0)
    usual = statistics.median(positive) if positive else 0.0
    out = set()
    for k, i in enumerate(order):
        h = lines[i].bottom - lines[i].top
        need = max(1.5 * usual, 0.3 * h)
        above = gaps[k - 1] if k > 0 else math.inf
        below = gaps[k] if k < len(gaps) else math.inf
        in_top = lines[i].bottom <= _MARGIN_ZONE * height
        if (in_top and below > need) or (not in_top and above > need):
            out.add(i)
    return out


def _numbers_follow_pages(pages: Sequence[Sequence[Line]], hits: Sequence[tuple[int, int, float]]) -> bool:
    """Whether the numbers in recurring lines are constant or page numbers (page index + a fixed offset).

    Body lines can share a shape with digits masked (`第1节…编号10` / `第2节…编号20`); a running header's
    numbers are its year and issue, which stay, and its page number, which counts the pages.
    """
    numbers = [[int(d) for d in re.findall(r"\d+", pages[p][i].text)] for p, i, _ in hits]
    for k in range(len(numbers[0])):
        column = [(p, nums[k]) for (p, _, _), nums in zip(hits, numbers)]
        if len({v for _, v in column}) > 1 and len({v - p for p, v in column}) > 1:
            return False
    return True


def running_lines(pages: Sequence[Sequence[Line]], heights: Sequence[float]) -> set[tuple[int, int]]:
    """(page index, line index) of every running header/footer line."""
    # Two pages are enough: a manual's running head changes with each chapter ("Chapter 2: … 3"), a journal's
    # alternates between odd and even pages. Body lines are protected by the rest: outermost lines only, the
    # same height, the same text, and numbers that are constant or count the pages.
    need = 2
    found: set[tuple[int, int]] = set()
    by_key: dict[tuple[str, int], list[tuple[int, int, float]]] = {}
    for p, (lines, height) in enumerate(zip(pages, heights)):
        apart = _isolated(lines, height)
        for i in _margin_lines(lines, height):
            line = lines[i]
            # One line of a header's shape needs a gap from the body too; a recurring one is evidence enough
            # (browser print headers sit one line gap above the body).
            if i in apart and is_header_shape(line.text):
                found.add((p, i))
            # and the same type size: a first page's big title is not the small running head that repeats it
            size = round(math.log(max(line.bottom - line.top, 0.1)) / math.log(1.25))
            by_key.setdefault((_key(line.text), size), []).append((p, i, line.top / height if height else 0.0))
    for (key, _), hits in by_key.items():
        if not key:
            continue
        hits.sort(key=lambda h: h[2])
        # Clusters of hits at the same height; a cluster on enough different pages is a running line.
        cluster: list[tuple[int, int, float]] = []
        for hit in hits + [(-1, -1, math.inf)]:
            if cluster and hit[2] - cluster[0][2] > _SAME_HEIGHT:
                if len({p for p, _, _ in cluster}) >= need and _numbers_follow_pages(pages, cluster):
                    found.update((p, i) for p, i, _ in cluster)
                cluster = []
            cluster.append(hit)
    return found


# --- the reader -----------------------------------------------------------------------------------------------

def _open(data: bytes) -> pdfium.PdfDocument:
    head = data[:1024]
    if b"%PDF" not in head:
        raise Unreadable("not a PDF (content does not start with %PDF)")
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        code = getattr(e, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise Unreadable("encrypted PDF (password protected)") from None
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise Unreadable("encrypted PDF (unsupported security handler)") from None
        reason = re.sub(r"^.*\(PDFium: (.*?)\)\.?$", r"\1", str(e)).lower() or "cannot be parsed"
        raise Unreadable(f"corrupt PDF: {reason}") from None


def _needs_ocr(page, good: int, bad: int) -> bool:
    garbled = bad > _MAX_BAD * (good + bad)
    if good >= _MIN_CHARS and not garbled:
        return False
    if bad >= _MIN_CHARS and garbled:
        return True                 # a text layer of undecodable glyphs (no ToUnicode map): read it as an image
    area = page.get_width() * page.get_height()
    drawn = False
    for obj in page.get_objects(max_depth=2):
        if obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            l, b, r, t = obj.get_bounds()
            if area and (r - l) * (t - b) >= _BIG_IMAGE * area:
                return True
        elif obj.type in (pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_SHADING):
            drawn = True
    return drawn and good == 0      # text drawn as outlines


def _meta(pdf: pdfium.PdfDocument, first_page: Sequence[Line], removed: Sequence[str]) -> DocMeta:
    try:
        info = pdf.get_metadata_dict(skip_empty=True)
    except Exception:               # a broken info dictionary costs the title, not the document
        info = {}
    title = docmeta.clean_title(info.get("Title", ""))
    authors = docmeta.clean_authors(info.get("Author", ""))
    journal = year = issue = ""
    head = [line.text for line in first_page[:8]]
    for text in list(removed) + head:
        ref = docmeta.parse_journal_line(text)
        if ref:
            journal, year, issue = ref.journal, ref.year, ref.issue
            break
    doi = ""
    for text in list(removed) + [line.text for line in first_page]:
        doi = docmeta.find_doi(text)
        if doi:
            break
    return DocMeta(title=title, authors=authors, journal=journal, year=year, issue=issue, doi=doi)


def read(data: bytes, ctx: ReadContext) -> Document:
    pdf = _open(data)
    try:
        n = len(pdf)
        if n == 0:
            raise Unreadable("corrupt PDF: no pages")
        pages: list[list[Line]] = []
        heights: list[float] = []
        wanted: list[int] = []          # pages to OCR
        failed = 0
        for p in range(n):
            try:
                page = pdf[p]
            except pdfium.PdfiumError:
                log.warning("page %d cannot be loaded; skipped", p + 1)
                pages.append([])
                heights.append(0.0)
                failed += 1
                continue
            try:
                heights.append(page.get_height())
                textpage = page.get_textpage()
                try:
                    runs, good, bad = _text_runs(textpage, page.get_height())
                finally:
                    textpage.close()
                if _needs_ocr(page, good, bad):
                    wanted.append(p)
                    pages.append([])
                else:
                    pages.append(page_lines(runs))
            finally:
                page.close()
        if failed == n:
            raise Unreadable("corrupt PDF: no page can be loaded")
        if wanted:
            from index.readers import ocr
            for p, runs in ocr.ocr_pages(pdf, wanted, ctx):
                pages[p] = page_lines(runs)
        drop = running_lines(pages, heights)
        removed = [pages[p][i].text for p, i in sorted(drop)]
        first_idx = next((p for p, pg in enumerate(pages) if pg), 0)
        first_kept = [ln for i, ln in enumerate(pages[first_idx]) if (first_idx, i) not in drop]
        meta = _meta(pdf, first_kept, removed)
    finally:
        pdf.close()
    lines: list[str] = []
    page_of: list[int] = []
    for p, page in enumerate(pages):
        kept = [ln for i, ln in enumerate(page) if (p, i) not in drop]
        if not kept:
            continue
        if lines:
            lines.append("")            # a page break is a paragraph break for the structure pass
            page_of.append(page_of[-1])
        for k, ln in enumerate(kept):
            if k and ln.gap_before and lines[-1] != "":
                lines.append("")
                page_of.append(p + 1)
            lines.append(ln.text)
            page_of.append(p + 1)
    return Document("pdf", tuple(lines), tuple(page_of), meta, n, tuple(p + 1 for p in wanted))

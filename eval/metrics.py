"""Pure retrieval metrics over text anchors.

A gold answer is a list of short anchors copied from the corpus, not a chunk id, so re-chunking never
invalidates the question set. A passage is a hit when its canonical text (NFKC, every whitespace
character removed) contains the canonical form of any anchor. Canonicalising both sides matters here:
the seed files are hard-wrapped and spaced (`具 象 的 发 展`), and a cleaner may turn `，` into `,`;
neither should decide whether a passage answers the question.

Ranks are 1-based; `None` means "no hit in the list". Every function is pure and takes plain Python
values, so the tables in tests/eval/test_metrics.py pin them down exactly.
"""
from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

KINDS = ("direct", "paraphrased", "english", "keyword", "traditional", "unanswerable")


def canonical(text: str) -> str:
    """NFKC, then drop every whitespace character (spaces, newlines, U+3000 ideographic space)."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def reading_length(text: str) -> int:
    """Characters a reader actually reads: whitespace does not count.

    The raw-text baselines carry a newline every ten characters in the hard-wrapped files; counting
    those would penalise them for layout, not for content.
    """
    return sum(1 for c in text if not c.isspace())


def is_hit(text: str, anchors: Sequence[str]) -> bool:
    """True when `text` contains any anchor (both canonicalised). No anchors: never a hit."""
    body = canonical(text)
    # An empty anchor would be contained in every text; skip it rather than count a free hit.
    return any(c in body for c in (canonical(a) for a in anchors) if c)


def first_hit_rank(texts: Sequence[str], anchors: Sequence[str]) -> int | None:
    """1-based rank of the first passage that is a hit, or None."""
    for rank, text in enumerate(texts, start=1):
        if is_hit(text, anchors):
            return rank
    return None


def _check_k(k: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _within(rank: int | None, k: int) -> bool:
    _check_k(k)
    if rank is not None and rank < 1:
        raise ValueError(f"rank is 1-based (or None for a miss), got {rank!r}")
    return rank is not None and rank <= k


def hit_at_k(rank: int | None, k: int) -> float:
    """1.0 when the first hit is within the top k, else 0.0."""
    return 1.0 if _within(rank, k) else 0.0


def mrr_at_k(rank: int | None, k: int = 10) -> float:
    """Reciprocal rank of the first hit, 0.0 when it is below k or absent."""
    return 1.0 / rank if _within(rank, k) else 0.0


def ndcg_at_k(rank: int | None, k: int = 10) -> float:
    """Binary-relevance nDCG where the ideal list holds exactly one relevant passage.

    Only the first hit counts: overlapping windows that repeat the same anchor are one answer read
    several times, not several answers, so they must not lift the score above 1.
    """
    return 1.0 / math.log2(rank + 1) if _within(rank, k) else 0.0


def chars_before_first_hit(texts: Sequence[str], anchors: Sequence[str], k: int = 10) -> int:
    """Characters read before reaching the first hit: the full passages ranked above it.

    A miss (no hit in the top k) costs the whole top k, which is what a reader pays to find nothing.
    """
    _check_k(k)
    top = list(texts[:k])
    rank = first_hit_rank(top, anchors)
    above = top if rank is None else top[: rank - 1]
    return sum(reading_length(t) for t in above)


def abstention_precision_recall(
    found: Sequence[bool], answerable: Sequence[bool]
) -> tuple[float, float]:
    """(precision, recall) of abstaining, i.e. of answering `found=False`.

    precision: of the questions we abstained on, the share that is truly unanswerable;
    recall: of the unanswerable questions, the share we abstained on. NaN when undefined
    (we never abstained / there is no unanswerable question), never a silent 0 or 1.
    """
    if len(found) != len(answerable):
        raise ValueError(
            f"found and answerable must have the same length, got {len(found)} and {len(answerable)}"
        )
    abstained = [not f for f in found]
    unanswerable = [not a for a in answerable]
    both = sum(1 for x, y in zip(abstained, unanswerable) if x and y)
    n_abstained, n_unanswerable = sum(abstained), sum(unanswerable)
    precision = both / n_abstained if n_abstained else math.nan
    recall = both / n_unanswerable if n_unanswerable else math.nan
    return precision, recall


def hit_curve(ranks: Sequence[int | None], max_k: int = 10) -> list[float]:
    """Mean hit@k for k = 1..max_k over questions given by their first-hit ranks."""
    _check_k(max_k)
    if not ranks:
        return [math.nan] * max_k
    return [sum(hit_at_k(r, k) for r in ranks) / len(ranks) for k in range(1, max_k + 1)]


def aggregate(
    rows: Iterable[Mapping], metrics: Sequence[str], group_key: str = "kind"
) -> dict[str, dict[str, float]]:
    """Means of `metrics` over `rows`, per group (in KINDS order, unknown groups after) and "all".

    A row whose value is None for a metric is left out of that metric's mean (e.g. retrieval
    metrics of unanswerable questions); `n` is the number of rows in the group.
    """
    rows = list(rows)
    groups: dict[str, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(row[group_key], []).append(row)
    order = [k for k in KINDS if k in groups] + sorted(k for k in groups if k not in KINDS)

    def means(group: list[Mapping]) -> dict[str, float]:
        out: dict[str, float] = {"n": float(len(group))}
        for m in metrics:
            values = [float(r[m]) for r in group if r.get(m) is not None]
            out[m] = sum(values) / len(values) if values else math.nan
        return out

    result = {k: means(groups[k]) for k in order}
    result["all"] = means(rows)
    return result


# ---------------------------------------------------------------- structure: titles, authors, junk chunks
_TITLE_WRAPPERS = "《》〈〉「」『』\"'“”‘’"


def normalize_title(title: str) -> str:
    """A title as compared: canonical (NFKC, no whitespace), without book-title marks and quotes, and without
    trailing sentence punctuation. `《中央八项规定实施细则》` and `中央八项规定实施细则` are the same title."""
    text = canonical(title)
    text = "".join(c for c in text if c not in _TITLE_WRAPPERS)
    return text.rstrip("。.;；:：,，")


def title_matches(got: str, accepted: Sequence[str]) -> bool:
    """True when `got` is, after `normalize_title`, one of the accepted forms. An empty title never matches."""
    g = normalize_title(got)
    return bool(g) and any(g == normalize_title(a) for a in accepted if normalize_title(a))


def author_recall(got: Sequence[str], gold: Sequence[str]) -> tuple[int, int]:
    """(gold authors found in `got`, gold authors), names compared canonically. Counts, not a ratio, so a
    corpus total is the sum over documents (a document without authors adds (0, 0))."""
    have = {canonical(a) for a in got if canonical(a)}
    want = [canonical(a) for a in gold if canonical(a)]
    return sum(1 for a in want if a in have), len(want)


# Junk: text a reader of the passage does not want. Each entry: (reason, pattern). Markup is looked for
# anywhere in a chunk; site chrome and page metadata are line shapes (a whole line, or a labelled field),
# so a sentence that merely mentions 版权 or 来源 in passing is not junk.
JUNK_ANYWHERE = (
    ("markup: html tag", r"</?[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?>"),
    ("markup: html entity", r"&(nbsp|amp|lt|gt|quot|#\d+);"),
    ("markup: escaped or wiki brackets", r"\\[\[\]]|\[\[|\]\]"),
    ("markup: template braces", r"\{\{|\}\}"),
    ("metadata: site registration", r"ICP(备|证)\s*\d|公网安备|网站标识码"),
    ("metadata: copyright line", r"版权所有|(?i:copyright\s*(©|\(c\)|\d{4}))|(?i:all rights reserved)"),
    ("navigation: breadcrumb", r"首页\s*(>|›|»|＞)"),
    ("navigation: page tools", r"\[打印\]|打印本页|关闭窗口|仅打印内容|返回顶部|分享到[:：]|扫一扫|加入收藏|设为首页|添加收藏夹"),
    ("metadata: view counter", r"(浏览|点击|阅读)(次数|量|数)\s*[:：]"),
    ("metadata: font size switch", r"字号\s*[:：]?\s*\[?\s*(大|超大)\s*\]?\s*\[?\s*(中|大)"),
    ("metadata: law-database field", r"【(发布单位|发布文号|发布日期|生效日期|失效日期|所属类别|文件来源)】"),
    ("metadata: print timestamp", r"\d{4}/\d{1,2}/\d{1,2}\s+\d{1,2}:\d{2}"),
)
JUNK_LINE = (
    ("markup: markdown heading", r"#{1,6}\s"),
    ("metadata: url line", r"(https?://|www\.)\S+(\s+\d{1,3}/\d{1,3})?\s*$"),   # a URL in a sentence is content
    ("markup: front matter", r"(---|layout:\s|description:\s|title:\s[A-Za-z])"),
    ("metadata: site field", r"(来源|来源于|发布时间|时间|责任编辑|编辑|摄影|供稿)\s*[:：].{0,40}$"),
    ("metadata: date-time stamp", r"\d{4}-\d{2}-\d{2}(\s+\d{1,2}:\d{2})?\s*$"),
    ("navigation: menu items", r"(\S{1,8}\s*[|｜]\s*){3,}"),
    ("navigation: lone menu word", r"(首页|登录|注册|退出|邮箱|无障碍|繁體|简体|报料|下载APP|个人中心|EN|简|繁|[|｜])\s*$"),
)
_STRUCTURAL = r"(第[一二三四五六七八九十百零〇\d]+[编章节条]|[（(][一二三四五六七八九十\d]+[)）]|[一二三四五六七八九十]+、|\d+[.、．])"
LINK_LIST_MIN_LINES = 5       # five or more short unpunctuated lines in a row, and nothing else, is a link list
LINK_LINE_MAX_CHARS = 32


def junk_reason(text: str) -> str | None:
    """Why a chunk's text is junk (navigation, page/site metadata or markup), or None for clean text.

    Pure and table-tested (tests/eval/test_metrics.py). A related-links list (many short headline lines with
    no sentence punctuation and no clause numbering) is navigation too; a regulation's table of contents
    (第一章 …) is not.
    """
    import re

    for reason, pattern in JUNK_ANYWHERE:
        if re.search(pattern, text):
            return reason
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    for line in lines:
        for reason, pattern in JUNK_LINE:
            if re.match(pattern, line):
                return reason
    if len(lines) >= LINK_LIST_MIN_LINES and all(
            len(ln) <= LINK_LINE_MAX_CHARS and not re.search(r"[。；;！!？?：:]$", ln)
            and not re.match(_STRUCTURAL, ln) for ln in lines):
        return "navigation: link list"
    return None

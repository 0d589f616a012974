"""Answer -> HTML for the chat window: pure functions, no Gradio, no retrieval.

Security rule: every string that comes from the corpus or the user (titles, authors, sections,
passages, references, questions, error messages) goes through `_esc` before it becomes HTML.
Highlights are applied on the *raw* text spans and each piece is escaped on its own, so a span
boundary can never split an entity or a tag. The Chatbot's own sanitizer is a second line of
defence, not the first: our escaping is what keeps `<script>` in a journal extraction inert.

The markup is emitted on one line (newlines become `<br>`), so a Markdown renderer, if one were
ever switched on, would see a single raw-HTML block and leave it alone.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from assistant.records import Answer, Passage

NOT_FOUND = "语料中没有找到可靠的答案"

CONFIDENCE_LABELS = {"high": "高", "medium": "中", "low": "低"}
CONFIDENCE_TITLES = {
    "high": "置信度高：段落与问题高度相关",
    "medium": "置信度中：段落与问题相关，请核对原文",
    "low": "置信度低：仅部分相关",
}
# Non-body blocks get a small tag so a researcher sees at once that a hit is an abstract or a
# reference list rather than the argument itself.
BLOCK_LABELS = {
    "abstract": "摘要", "keywords": "关键词", "references": "参考文献", "bio": "作者简介",
    "caption": "图表", "front": "前置信息",
}


def _esc(text: str) -> str:
    """Escape for HTML text and attribute values; keep line breaks visible."""
    return html.escape(str(text), quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def merge_spans(spans: Sequence[Sequence[int]], length: int) -> list[tuple[int, int]]:
    """Sorted, clipped to [0, length], overlapping or touching spans merged, empty ones dropped."""
    clipped = sorted((max(0, int(s)), min(length, int(e))) for s, e in spans)
    merged: list[tuple[int, int]] = []
    for s, e in clipped:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def highlight(text: str, spans: Sequence[Sequence[int]]) -> str:
    """`text` as escaped HTML with each span wrapped in `<mark>`."""
    out, pos = [], 0
    for s, e in merge_spans(spans, len(text)):
        out.append(_esc(text[pos:s]))
        out.append(f"<mark>{_esc(text[s:e])}</mark>")
        pos = e
    out.append(_esc(text[pos:]))
    return "".join(out)


def question_html(question: str) -> str:
    """The user's own message, shown as text (the chat renders HTML)."""
    if not question.strip():
        return '<span class="pa-question pa-question-empty">（空白问题）</span>'
    return f'<span class="pa-question">{_esc(question)}</span>'


def pending_html() -> str:
    return '<div class="pa-pending">正在检索语料……</div>'


def error_html(message: str) -> str:
    """A problem with the question or the options: the message, never a traceback."""
    return f'<div class="pa-error" role="alert"><strong>无法检索：</strong>{_esc(message)}</div>'


def _context_html(passage: Passage, context: Sequence[Passage]) -> str:
    """Neighbouring paragraphs of the same section, collapsed; the hit itself is marked."""
    if not any(p.chunk_id != passage.chunk_id for p in context):
        return ""
    parts = []
    for p in context:
        if p.chunk_id == passage.chunk_id:
            parts.append(f'<div class="pa-nb pa-nb-self">{highlight(p.text, p.highlights)}</div>')
        else:
            parts.append(f'<div class="pa-nb">{_esc(p.text)}</div>')
    n = len(context) - 1
    return (f'<details class="pa-ctx"><summary>展开上下文（前后 {n} 段）</summary>'
            f'{"".join(parts)}</details>')


def passage_card(passage: Passage, rank: int, context: Sequence[Passage] = (), weak: bool = False) -> str:
    """One hit: rank, confidence, title and authors, section, highlighted text, context, reference."""
    c = passage.citation
    conf = passage.confidence if passage.confidence in CONFIDENCE_LABELS else "low"
    badges = [f'<span class="pa-rank">{rank}</span>']
    if weak:
        badges.append('<span class="pa-badge pa-weak-badge" title="语料中没有可靠答案，此段仅可能相关">可能相关</span>')
    else:
        badges.append(f'<span class="pa-badge pa-conf pa-conf-{conf}" title="{CONFIDENCE_TITLES[conf]}">'
                      f'置信度 {CONFIDENCE_LABELS[conf]}</span>')
    if passage.block in BLOCK_LABELS:
        badges.append(f'<span class="pa-badge pa-block">{BLOCK_LABELS[passage.block]}</span>')
    title = f"［无题，取自首个标题］{c.title}" if c.title_is_fallback else c.title
    authors = "，".join(c.authors) if c.authors else "作者不详"
    path = [*c.section, c.locator] if c.locator and c.locator not in c.section else list(c.section)
    section = f'<div class="pa-section">{" › ".join(_esc(h) for h in path)}</div>' if path else ""
    # The file and its pages (PDF) or lines: what a researcher checks against the original.
    where = f'<div class="pa-where">{_esc(c.where())}</div>'
    return (
        f'<div class="pa-card{" pa-weak" if weak else ""}">'
        f'<div class="pa-head">{"".join(badges)}<span class="pa-title">{_esc(title)}</span></div>'
        f'<div class="pa-authors">{_esc(authors)}</div>'
        f"{section}{where}"
        f'<div class="pa-text">{highlight(passage.text, passage.highlights)}</div>'
        f"{_context_html(passage, context)}"
        f'<div class="pa-ref"><span class="pa-ref-label">引用</span>'
        f'<span class="pa-ref-text">{_esc(c.reference())}</span>'
        f'<span class="pa-actions">'
        f'<button class="pa-copy pa-copy-ref" type="button" title="复制参考文献到剪贴板">复制引用</button>'
        f'<button class="pa-copy pa-copy-quote" type="button" title="复制段落原文及其参考文献">'
        f"复制原文及引用</button></span></div>"
        f"</div>"
    )


def answer_html(answer: Answer, contexts: Mapping[str, Sequence[Passage]] | None = None) -> str:
    """The whole reply. `contexts` maps chunk_id -> neighbouring passages (from `Assistant.context`)."""
    contexts = contexts or {}
    seconds = answer.elapsed_ms / 1000
    if answer.found:
        head = (f'<div class="pa-summary">{_esc(answer.message)}'
                f'<span class="pa-time">用时 {seconds:.2f} 秒</span></div>')
    else:
        extra = ("以下是最接近的段落，仅可能相关，请核对原文。" if answer.passages
                 else "请换一种说法，或放宽文章筛选。")
        note = (f'<div class="pa-notfound-detail">{_esc(answer.message)}</div>'
                if answer.message and NOT_FOUND not in answer.message else "")
        head = (f'<div class="pa-notfound" role="status"><strong>{NOT_FOUND}。</strong>{extra}</div>'
                f"{note}")
    cards = [passage_card(p, i, contexts.get(p.chunk_id, ()), weak=not answer.found)
             for i, p in enumerate(answer.passages, start=1)]
    return f'<div class="pa-answer">{head}{"".join(cards)}</div>'

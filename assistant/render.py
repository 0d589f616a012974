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


def answer_html(answer: Answer, contexts: Mapping[str, Sequence[Passage]] | None = None, footer: str = "") -> str:
    """The whole reply. `contexts` maps chunk_id -> neighbouring passages (from `Assistant.context`);
    `footer` (our own markup, e.g. `export_bar`) closes it."""
    contexts = contexts or {}
    seconds = answer.elapsed_ms / 1000
    if answer.found:
        head = (f'<div class="pa-summary">{_esc(answer.message)}'
                f'<span class="pa-time">用时 {seconds:.2f} 秒</span></div>')
    else:
        extra = ("以下是最接近的段落，仅可能相关，请核对原文。" if answer.passages
                 else "请换一种说法，或放宽文章筛选。")
        detail = [m for m in (answer.reason and f"原因：{answer.reason}。",
                              answer.message if NOT_FOUND not in answer.message else "") if m]
        note = "".join(f'<div class="pa-notfound-detail">{_esc(m)}</div>' for m in detail)
        head = (f'<div class="pa-notfound" role="status"><strong>{NOT_FOUND}。</strong>{extra}</div>'
                f"{note}")
    cards = [passage_card(p, i, contexts.get(p.chunk_id, ()), weak=not answer.found)
             for i, p in enumerate(answer.passages, start=1)]
    return f'<div class="pa-answer">{head}{"".join(cards)}{footer}</div>'


# ---------------------------------------------------------------- export bar of a reply, the document library
def export_bar(text: str, markdown: str, filename: str) -> str:
    """The reply's "copy all" and "download Markdown" buttons, with what they copy and save carried along.

    The page script (ui.JS) reads the two hidden blocks; their content is escaped here like any corpus text
    (textContent gives it back verbatim), so a `<script>` in a passage stays text in both.
    """
    esc = lambda s: html.escape(s, quote=True)  # noqa: E731  (newlines kept: textContent returns them)
    return (f'<div class="pa-export">'
            f'<button class="pa-copy pa-copy-all" type="button" title="复制全部段落及编号参考文献">复制全部</button>'
            f'<button class="pa-copy pa-save-md" type="button" data-filename="{esc(filename)}" '
            f'title="下载为 Markdown 文件">下载 Markdown</button>'
            f'<pre class="pa-export-data pa-export-text" hidden>{esc(text)}</pre>'
            f'<pre class="pa-export-data pa-export-md" hidden>{esc(markdown)}</pre></div>')


GENRE_LABELS = {"article": "文章", "notice": "通知", "regulation": "法规制度", "news": "新闻", "web": "网页",
                "other": "其他"}
FORMAT_LABELS = {"pdf": "PDF", "docx": "Word", "html": "网页", "txt": "文本", "md": "Markdown"}


def library_html(docs: Sequence, skipped: Sequence = (), query: str = "") -> str:
    """The library table: one row per `DocumentInfo` matching `query`, then the files the index could not use."""
    shown = [d for d in docs if d.matches(query)] if query.strip() else list(docs)
    count = (f"共 {len(docs)} 篇文献" if len(shown) == len(docs)
             else f"筛选出 {len(shown)} / {len(docs)} 篇文献")
    rows = []
    for d in shown:
        title = d.title or "（无题）"
        flag = ('<span class="pa-badge pa-lib-flag" title="文中没有印出题名，取自首个标题">题名待核</span>'
                if d.title_is_fallback or not d.title else "")
        rows.append(
            f'<tr data-name="{_esc(d.name)}"><td class="pa-lib-title"><span class="pa-lib-t">{_esc(title)}</span>'
            f'{flag}<div class="pa-lib-name">{_esc(d.name)}</div></td>'
            f'<td>{_esc("，".join(d.authors) or "—")}</td>'
            f'<td>{_esc(GENRE_LABELS.get(d.genre, d.genre))}</td>'
            f'<td>{_esc(FORMAT_LABELS.get(d.format, d.format))}</td>'
            f'<td>{_esc(d.date or "—")}</td>'
            f'<td class="pa-num">{d.pages or "—"}</td><td class="pa-num">{d.chunks}</td></tr>')
    if not rows:
        rows.append('<tr><td colspan="7" class="pa-lib-none">没有符合筛选条件的文献</td></tr>')
    bad = ""
    if skipped:
        items = "".join(f"<li><b>{_esc(s.name)}</b>：{_esc(s.reason)}</li>" for s in skipped)
        bad = f'<div class="pa-lib-skipped"><b>未能读取的文件（{len(skipped)}）</b><ul>{items}</ul></div>'
    return (f'<div class="pa-lib"><div class="pa-summary">{count}</div>'
            f'<div class="pa-lib-scroll"><table class="pa-lib-table"><thead><tr><th>标题 / 文件</th><th>作者</th>'
            f'<th>类型</th><th>格式</th><th>日期</th><th>页数</th><th>段落</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{bad}</div>')


def document_html(detail) -> str:
    """One document as the index holds it: the metadata the reader found, then its chunks in reading order
    under their headings, each with its block kind and where it stands (pages or lines)."""
    info, meta = detail.info, detail.meta
    fields = [("文件", info.name), ("题名", meta.title or info.title), ("作者", "，".join(meta.authors or info.authors)),
              ("类型", GENRE_LABELS.get(info.genre, info.genre)), ("格式", FORMAT_LABELS.get(info.format, info.format)),
              ("日期", meta.date or info.date), ("来源", meta.source), ("刊名", meta.journal),
              ("年 / 期", "/".join(x for x in (meta.year, meta.issue) if x)), ("DOI", meta.doi), ("网址", meta.url),
              ("页数", str(info.pages) if info.pages else ""),
              ("OCR 识别页", str(info.ocr_pages) if info.ocr_pages else ""),
              ("文章数", str(info.articles)), ("段落数", str(info.chunks))]
    dl = "".join(f"<dt>{k}</dt><dd>{_esc(v)}</dd>" for k, v in fields if v)
    warn = ('<div class="pa-notfound-detail">题名不是文中印出的，而是取自首个标题：请核对。</div>'
            if info.title_is_fallback or not info.title else "")
    parts, article, path = [], None, None
    for c in detail.chunks:
        if c.article != article:
            article, path = c.article, None
            parts.append(f'<div class="pa-doc-article">{_esc(c.title or "（无题）")}'
                         + (f'<span class="pa-doc-authors">{_esc("，".join(c.authors))}</span>' if c.authors else "")
                         + "</div>")
        if c.headings != path:
            path = c.headings
            if path:
                parts.append(f'<div class="pa-doc-heading">{" › ".join(_esc(h) for h in path)}</div>')
        where = (f"第{c.page_start}页" if c.page_start == c.page_end else f"第{c.page_start}-{c.page_end}页") \
            if c.page_start else f"行 {c.line_start}-{c.line_end}"
        badges = f'<span class="pa-badge pa-block">{BLOCK_LABELS[c.block]}</span>' if c.block in BLOCK_LABELS else ""
        loc = f" · {_esc(c.locator)}" if c.locator else ""
        parts.append(f'<div class="pa-doc-chunk"><div class="pa-doc-where">{badges}{_esc(where)}{loc}</div>'
                     f'<div class="pa-doc-text">{_esc(c.text)}</div></div>')
    return (f'<div class="pa-doc"><div class="pa-doc-title">{_esc(info.title or info.name)}</div>{warn}'
            f'<dl class="pa-doc-meta">{dl}</dl><div class="pa-doc-body">{"".join(parts)}</div></div>')


def progress_html(label: str, done: int, total: int) -> str:
    """A progress bar with what is being done: 「计算向量：段落 64/120」."""
    if total > 0:
        pct = max(0, min(100, round(100 * done / total)))
        bar = f'<progress class="pa-progress-bar" max="100" value="{pct}">{pct}%</progress>'
        count = f'<span class="pa-progress-count">{done}/{total}</span>'
    else:
        bar, count = '<progress class="pa-progress-bar"></progress>', ""
    return (f'<div class="pa-progress" role="status"><div class="pa-progress-label">{_esc(label)}{count}</div>'
            f'{bar}</div>')


def library_message_html(kind: str, title: str, lines: Sequence[str] = ()) -> str:
    """The outcome of an add or remove: kind "ok" / "warn" / "error", a title and one line per file."""
    items = "".join(f"<li>{_esc(x)}</li>" for x in lines)
    role = "alert" if kind == "error" else "status"
    return (f'<div class="pa-libmsg pa-libmsg-{kind}" role="{role}"><strong>{_esc(title)}</strong>'
            + (f"<ul>{items}</ul>" if items else "") + "</div>")

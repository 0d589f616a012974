"""One reply (`Answer`) -> plain text to copy, Markdown, or a Word document: quotes and numbered GB/T 7714 references.

Pure functions of the Answer (no index, no Gradio). Every quote is the corpus text as it stands, its evidence
sentences marked (【】 in plain text, bold in Markdown and Word), followed by its reference number; the
references are listed once each, numbered in the order they are first cited (GB/T 7714 sequential system).

    text = answer_text(ans)        # what "复制全部" puts on the clipboard
    md = answer_markdown(ans)      # .md download
    data = answer_docx(ans)        # .docx download (bytes), python-docx
"""
from __future__ import annotations

import io
import re
import time
import unicodedata

from assistant.records import Answer, Passage

NOT_FOUND_NOTE = "语料中没有找到可靠的答案；以下段落仅可能相关，请核对原文。"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
_FONT = "宋体"          # East Asian font for Word: Word's default Latin font has no Chinese glyphs


def _clean(text: str) -> str:
    """Without control characters (XML 1.0 cannot hold them; a stray one in a PDF extraction would break Word)."""
    return "".join(ch for ch in str(text)
                   if ch in "\t\n" or unicodedata.category(ch) not in ("Cc", "Cs"))


def _pieces(p: Passage) -> list[tuple[str, bool]]:
    """The passage as (text, is_evidence) runs, in order."""
    from assistant.render import merge_spans
    out, pos = [], 0
    for s, e in merge_spans(p.highlights, len(p.text)):
        if s > pos:
            out.append((p.text[pos:s], False))
        out.append((p.text[s:e], True))
        pos = e
    if pos < len(p.text):
        out.append((p.text[pos:], False))
    return [(_clean(t), ev) for t, ev in out]


def numbered(answer: Answer) -> tuple[list[int], list[str]]:
    """(reference number of each passage, the reference list): identical references share one number."""
    refs: list[str] = []
    numbers = []
    for p in answer.passages:
        ref = _clean(p.citation.reference())
        if ref not in refs:
            refs.append(ref)
        numbers.append(refs.index(ref) + 1)
    return numbers, refs


def _not_found(answer: Answer) -> str:
    return NOT_FOUND_NOTE + (f"原因：{_clean(answer.reason)}。" if answer.reason else "")


def answer_text(answer: Answer) -> str:
    """Every quote with its number, then the numbered references: for the clipboard."""
    numbers, refs = numbered(answer)
    lines = [f"问题：{_clean(answer.question)}"]
    if not answer.found:
        lines.append(_not_found(answer))
    lines.append("")
    for n, p in zip(numbers, answer.passages):
        quote = "".join(f"【{t}】" if ev else t for t, ev in _pieces(p))
        lines += [f"{quote} [{n}]", ""]
    lines.append("参考文献")
    lines += [f"[{i}] {r}" for i, r in enumerate(refs, 1)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Corpus text as literal Markdown: specials escaped, so a `<script>` or `#` in a passage stays text."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def answer_markdown(answer: Answer) -> str:
    """The reply as Markdown: the question, each quote as a block quote with its source, the reference list."""
    numbers, refs = numbered(answer)
    out = [f"# {_md(_clean(answer.question))}", ""]
    out += [f"> {_md(_not_found(answer))}" if not answer.found else f"_{_md(_clean(answer.message))}_", ""]
    for i, (n, p) in enumerate(zip(numbers, answer.passages), 1):
        c = p.citation
        out.append(f"## {i}. {_md(_clean(c.title))}" + (f" — {_md(_clean('，'.join(c.authors)))}" if c.authors else ""))
        out.append("")
        quote = "".join(f"**{_md(t)}**" if ev and t.strip() else _md(t) for t, ev in _pieces(p))
        out += [f"> {line}" if line else ">" for line in quote.split("\n")]
        out += [f"> [{n}]", "", f"出处：{_md(_clean(c.location()))}", ""]
    out += ["## 参考文献", ""]
    out += [f"\\[{i}\\] {_md(r)}  " for i, r in enumerate(refs, 1)]
    return "\n".join(out).rstrip() + "\n"


def answer_docx(answer: Answer) -> bytes:
    """The reply as a Word document (.docx bytes): quotes with evidence in bold, then the numbered references."""
    import docx
    from docx.oxml.ns import qn
    from docx.shared import Pt

    numbers, refs = numbered(answer)
    d = docx.Document()
    for style in ("Normal", "Heading 1", "Heading 2", "Quote"):
        st = d.styles[style]
        st.font.name = _FONT
        st.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), _FONT)
    d.styles["Normal"].font.size = Pt(11)
    d.core_properties.title = _clean(answer.question)[:200]
    d.core_properties.comments = "政策文献问答助手导出：原文摘录及参考文献（GB/T 7714）"
    d.add_heading(_clean(answer.question), level=1)
    d.add_paragraph(_not_found(answer) if not answer.found else _clean(answer.message))
    for i, (n, p) in enumerate(zip(numbers, answer.passages), 1):
        c = p.citation
        head = f"{i}. {_clean(c.title)}" + (f"（{_clean('，'.join(c.authors))}）" if c.authors else "")
        d.add_heading(head, level=2)
        para = d.add_paragraph(style="Quote")
        for t, ev in _pieces(p):
            para.add_run(t).bold = ev
        para.add_run(f" [{n}]")
        d.add_paragraph(f"出处：{_clean(c.location())}")
    d.add_heading("参考文献", level=2)
    for i, r in enumerate(refs, 1):
        d.add_paragraph(f"[{i}] {r}")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def filename(answer: Answer, suffix: str) -> str:
    """A safe download name from the question: 「检索结果-什么是一岗双责-20261201-2134.md」."""
    words = re.sub(r"[^\w\u3400-\u9fff]+", "", _clean(answer.question))[:24] or "answer"
    return f"检索结果-{words}-{time.strftime('%Y%m%d-%H%M')}{suffix}"

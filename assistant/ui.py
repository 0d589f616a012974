"""The Gradio chat window over one shared `Assistant`.

Thin layer (STYLE §10): the handlers call `Assistant.ask` / `Assistant.context` and format with
`assistant.render`; no retrieval logic lives here. One `Assistant` serves every browser tab and API
client; it is thread-safe, so the events run up to `CONCURRENCY` at a time in Gradio's thread pool.

    demo = build_ui(assistant)              # a gr.Blocks, not yet listening
    serve(assistant, port=7860)             # what `assistant serve` runs; blocks until Ctrl-C
    demo = start(assistant, port=7861)      # non-blocking (tests): demo.local_url, demo.close()

Two tabs: 问答 (the chat, with each reply's export) and 文献库 (the document library: every document, what the
parser made of it, and, only when started with `uploads=UploadLimits(...)` (`--allow-uploads`), adding and
removing documents with a progress bar while the chat keeps answering from the current index).
"""
from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import ListFiles

from assistant import export, library, render
from assistant.errors import AssistantError
from assistant.library import UploadLimits

log = logging.getLogger(__name__)

TITLE = "政策文献问答助手"
CONCURRENCY = 8          # users answered at once; the requirement is eight
WARM_UP_JOIN_S = 60      # the longest a stop waits for the warm-up (a few seconds here)
QUEUE_MAX = 64           # beyond this a user is told the queue is full instead of waiting forever
TOP_K_DEFAULT, TOP_K_MAX = 5, 10
LIBRARY_POLL_S = 0.25    # how often the add/remove progress bar is redrawn
UPLOAD_TYPES = [".pdf", ".docx", ".html", ".htm", ".txt", ".md"]
READ_ONLY = ("只读：此服务未允许写入。要在界面中添加或删除文献，请在本机以 `assistant serve` 启动，"
             "或加 `--allow-uploads`（监听其他地址时还需 `--auth`）。")
_ARTICLE, _SOURCE = "article:", "source:"   # dropdown values carry their kind

INTRO = (
    '<div class="pa-header"><div class="pa-h1">政策文献问答助手</div>'
    '<div class="pa-sub">在本地语料中检索原文段落：每条结果都注明出处，'
    '<mark>黄色</mark>为回答问题的句子。中英文提问均可。</div></div>'
)
PLACEHOLDER = (
    "**请输入问题，或点选下面的示例**\n\n"
    "结果是语料原文，不做改写；每段附文章、作者、章节和可复制的引用。"
)
HELP = (
    "**置信度**：高 = 与问题高度相关；中 = 相关，请核对原文；低 = 仅部分相关。\n\n"
    "**没有可靠答案时**，助手会明确说明，并以虚线框列出最接近的段落。\n\n"
    "**引用**：「复制引用」得到 GB/T 7714 格式的参考文献及原文行号；"
    "「复制原文及引用」连同段落原文一起复制，便于写入报告。"
)

# Fonts present on the machine (no Google Fonts request: the tool runs offline).
_FONTS = ["Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "Source Han Sans SC",
          "system-ui", "sans-serif"]
_MONO = ["Noto Sans Mono CJK SC", "ui-monospace", "monospace"]

CSS = """
#pa-chat .example { border: 1px solid var(--border-color-primary); border-radius: 10px;
  background: var(--background-fill-primary); }
#pa-chat .example:hover { border-color: var(--color-accent); }
.pa-header { padding: 4px 2px 2px; }
.pa-h1 { font-size: 22px; font-weight: 700; letter-spacing: .02em; }
.pa-sub { font-size: 13.5px; color: var(--body-text-color-subdued); margin-top: 2px; }
.pa-sub mark { background: #fde68a; color: inherit; padding: 0 3px; border-radius: 3px; }
.pa-question { white-space: pre-wrap; font-weight: 600; font-size: 15.5px; }
.pa-question-empty { color: var(--body-text-color-subdued); font-weight: 400; }
#pa-chat .message-row.panel { padding-top: 14px; padding-bottom: 14px; }
#pa-chat .user-row { background: var(--background-fill-secondary);
  border-top: 1px solid var(--border-color-primary); }
#pa-chat .user-row .message.user { background: transparent; border: none; padding-left: 0; }
.pa-weak mark { background: #fef3c7; }
.pa-answer { display: flex; flex-direction: column; gap: 12px; line-height: 1.75; font-size: 15px; }
.pa-summary { font-size: 13px; color: var(--body-text-color-subdued); }
.pa-time { margin-left: .8em; opacity: .8; }
.pa-notfound { background: #fff7ed; border: 1px solid #fdba74; color: #9a3412;
  border-radius: 8px; padding: 10px 12px; font-size: 14.5px; }
.pa-notfound strong { margin-right: .4em; }
.pa-notfound-detail { font-size: 13px; color: var(--body-text-color-subdued); }
.pa-error { background: #fef2f2; border: 1px solid #fca5a5; color: #991b1b;
  border-radius: 8px; padding: 10px 12px; font-size: 14.5px; }
.pa-pending { color: var(--body-text-color-subdued); font-size: 14px; }
.pa-card { border: 1px solid var(--border-color-primary); border-radius: 10px;
  padding: 12px 14px; background: var(--background-fill-primary); box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.pa-card.pa-weak { border-style: dashed; background: var(--background-fill-secondary); }
.pa-card.pa-weak .pa-text { color: var(--body-text-color-subdued); }
.pa-head { display: flex; align-items: center; flex-wrap: wrap; gap: 6px 8px; }
.pa-rank { display: inline-flex; align-items: center; justify-content: center; flex: none;
  width: 22px; height: 22px; border-radius: 50%; background: #374151; color: #fff;
  font-size: 12px; font-weight: 600; }
.pa-badge { flex: none; font-size: 12px; line-height: 18px; padding: 0 8px; border-radius: 999px;
  border: 1px solid transparent; white-space: nowrap; }
.pa-conf-high { background: #dcfce7; color: #166534; border-color: #86efac; }
.pa-conf-medium { background: #fef9c3; color: #854d0e; border-color: #fde047; }
.pa-conf-low { background: #f3f4f6; color: #4b5563; border-color: #d1d5db; }
.pa-weak-badge { background: #fff7ed; color: #9a3412; border-color: #fdba74; }
.pa-block { background: #eef2ff; color: #3730a3; border-color: #c7d2fe; }
.pa-title { font-weight: 650; font-size: 15.5px; flex: 1 1 240px; min-width: 0; }
.pa-authors, .pa-section, .pa-where { font-size: 13px; color: var(--body-text-color-subdued); margin-top: 2px; }
.pa-section::before { content: "§ "; opacity: .6; }
.pa-text { margin-top: 8px; overflow-wrap: anywhere; }
.pa-answer mark { background: #fde68a; color: inherit; padding: 1px 2px; border-radius: 3px; }
.pa-ctx { margin-top: 6px; }
.pa-ctx summary { cursor: pointer; font-size: 13px; color: var(--link-text-color, #2563eb);
  user-select: none; width: fit-content; }
.pa-nb { font-size: 14px; color: var(--body-text-color-subdued); border-left: 3px solid
  var(--border-color-primary); padding: 2px 0 2px 10px; margin: 8px 0; overflow-wrap: anywhere; }
.pa-nb-self { color: var(--body-text-color); border-left-color: #f59e0b; }
.pa-ref { display: flex; align-items: flex-start; gap: 8px; margin-top: 10px; padding-top: 8px;
  border-top: 1px dashed var(--border-color-primary); font-size: 12.5px; line-height: 1.6; }
.pa-ref-label { flex: none; font-weight: 600; color: var(--body-text-color-subdued); }
.pa-ref-text { flex: 1; min-width: 0; overflow-wrap: anywhere; }
.pa-actions { flex: none; display: flex; gap: 6px; }
.pa-copy { flex: none; cursor: pointer; font-size: 12px; padding: 1px 10px; border-radius: 6px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary);
  color: var(--body-text-color); }
.pa-copy:hover { border-color: #f59e0b; }
.dark .pa-answer mark, .dark .pa-sub mark { background: #854d0e; }
.dark .pa-conf-high { background: #14532d; color: #dcfce7; }
.dark .pa-conf-medium { background: #713f12; color: #fef9c3; }
.dark .pa-notfound, .dark .pa-weak-badge { background: #431407; color: #fed7aa; }
.dark .pa-error { background: #450a0a; color: #fecaca; }
#pa-chat { flex-grow: 1; }
/* The question box must read as the place to type, its button as the action (Gradio's default is flat). */
#pa-input { border: 1.5px solid var(--border-color-primary) !important; border-radius: 12px !important; }
#pa-input:focus-within { border-color: var(--neutral-400) !important; }
#pa-input textarea { font-size: 15px; }
#pa-input .submit-button { background: var(--button-primary-background-fill); color: var(--button-primary-text-color);
  border-radius: 8px; padding: 4px 18px; font-weight: 600; min-width: 64px; }
#pa-input .submit-button:hover { background: var(--button-primary-background-fill-hover); }
#pa-help { font-size: 13px; color: var(--body-text-color-subdued); }
.pa-export { display: flex; flex-wrap: wrap; gap: 8px; padding-top: 2px; }
.pa-export .pa-copy { font-size: 13px; padding: 3px 12px; }
.pa-export-data { display: none !important; }
.pa-lib-scroll { overflow-x: auto; }
.pa-lib-table, .pa-lib-table * { border-left: none !important; border-right: none !important; }
.pa-lib-table { width: 100%; border-collapse: collapse; font-size: 13.5px; border: none !important; }
.pa-lib-table th, .pa-lib-table td { border: none !important; border-bottom: 1px solid var(--border-color-primary) !important;
  padding: 6px 8px; vertical-align: top; background: none; }
.pa-lib-table th { text-align: left; font-weight: 600; color: var(--body-text-color-subdued); white-space: nowrap; }
.pa-lib-table tbody tr:hover td { background: var(--background-fill-secondary); }
.pa-doc-title { font-weight: 700; font-size: 17px; }
#pa-upload-note { font-size: 12.5px; color: var(--body-text-color-subdued); }
.pa-lib-title { min-width: 200px; }
.pa-lib-t { font-weight: 600; }
.pa-lib-name { font-size: 12px; color: var(--body-text-color-subdued); overflow-wrap: anywhere; }
.pa-lib-flag { margin-left: 6px; background: #fff7ed; color: #9a3412; border-color: #fdba74; }
.pa-num { text-align: right; white-space: nowrap; }
.pa-lib-none { color: var(--body-text-color-subdued); text-align: center; }
.pa-lib-skipped { margin-top: 10px; font-size: 13px; color: #9a3412; }
.pa-doc { display: flex; flex-direction: column; gap: 8px; line-height: 1.7; }
.pa-doc-meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; font-size: 13px; margin: 0; }
.pa-doc-meta dt { color: var(--body-text-color-subdued); }
.pa-doc-meta dd { margin: 0; overflow-wrap: anywhere; }
.pa-doc-body { max-height: 70vh; overflow-y: auto; border-top: 1px solid var(--border-color-primary);
  padding-top: 6px; }
.pa-doc-article { font-weight: 700; font-size: 15px; margin-top: 10px; }
.pa-doc-authors { font-weight: 400; font-size: 13px; margin-left: .8em; color: var(--body-text-color-subdued); }
.pa-doc-heading { font-weight: 600; font-size: 14px; margin-top: 8px; color: #7f1d1d; }
.pa-doc-chunk { margin: 4px 0 8px; padding-left: 10px; border-left: 3px solid var(--border-color-primary); }
.pa-doc-where { font-size: 12px; color: var(--body-text-color-subdued); }
.pa-doc-text { font-size: 14px; overflow-wrap: anywhere; white-space: pre-wrap; }
.pa-progress { display: flex; flex-direction: column; gap: 4px; font-size: 13.5px; }
.pa-progress-count { margin-left: .6em; color: var(--body-text-color-subdued); }
.pa-progress-bar { width: 100%; height: 12px; accent-color: #b91c1c; }
.pa-libmsg { border-radius: 8px; padding: 8px 12px; font-size: 14px; }
.pa-libmsg ul { margin: 4px 0 0 1.2em; padding: 0; }
.pa-libmsg-ok { background: #f0fdf4; border: 1px solid #86efac; color: #166534; }
.pa-libmsg-warn { background: #fff7ed; border: 1px solid #fdba74; color: #9a3412; }
.pa-libmsg-error { background: #fef2f2; border: 1px solid #fca5a5; color: #991b1b; }
@media (max-width: 640px) {
  /* the library table keeps title, authors, genre, format and chunks on a phone; date and pages are in the
     document view */
  .pa-lib-table th:nth-child(5), .pa-lib-table td:nth-child(5),
  .pa-lib-table th:nth-child(6), .pa-lib-table td:nth-child(6) { display: none; }
  .pa-lib-title { min-width: 140px; }
  #pa-chat .message-row.panel { padding-left: 8px; padding-right: 8px; }
  #pa-chat .example { padding: 8px 12px; }
  #pa-chat .placeholder { padding: 0 16px; }
  .pa-h1 { font-size: 19px; }
  .pa-card { padding: 10px 11px; }
  .pa-answer { font-size: 14.5px; }
  .pa-ref { flex-wrap: wrap; }
  .pa-ref-text { flex-basis: calc(100% - 40px); }
  .pa-actions { margin-left: 36px; }
}
"""

# Gradio scopes `css` under `.contain`, which cannot reach the page frame: the frame's width
# (stable whether the chat is empty or full) and its phone padding go in as a plain <style>.
HEAD = """<style>
.gradio-container { width: 100% !important; max-width: 1180px !important; margin: 0 auto !important; }
@media (max-width: 640px) { .gradio-container .main { padding: 10px 6px !important; } }
</style>"""

# Page script, run once on load:
# - one delegated listener for the copy buttons: the chat's HTML sanitizer drops inline handlers
#   (onclick), and the cards are re-rendered on every update, so per-button binding would not last;
# - when a new question appears, scroll it to the top of the chat, so the reader starts at
#   passage 1 (Gradio's autoscroll would leave the view at the last, weakest passage).
JS = """
() => {
  if (window.__paBound) return;
  window.__paBound = true;
  const copyText = async (btn, text) => {
    let ok = false;
    try { await navigator.clipboard.writeText(text); ok = true; } catch (e) {
      // http on a LAN address is not a secure context: fall back to a hidden textarea.
      const ta = document.createElement('textarea');
      ta.value = text; ta.style.position = 'fixed'; ta.style.left = '-9999px';
      document.body.appendChild(ta); ta.select();
      try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
      ta.remove();
    }
    const label = btn.dataset.label || btn.textContent;
    btn.dataset.label = label;
    btn.textContent = ok ? '已复制 ✓' : '复制失败，请手动选择';
    setTimeout(() => { btn.textContent = label; }, 1800);
  };
  document.addEventListener('click', async (ev) => {
    const btn = ev.target && ev.target.closest ? ev.target.closest('.pa-copy') : null;
    if (!btn) return;
    // A reply's export bar: every quote with its numbered references, copied or saved as Markdown.
    const bar = btn.closest('.pa-export');
    if (bar) {
      if (btn.classList.contains('pa-save-md')) {
        const md = bar.querySelector('.pa-export-md').textContent;
        const a = document.createElement('a');
        a.href = URL.createObjectURL(new Blob([md], {type: 'text/markdown;charset=utf-8'}));
        a.download = btn.dataset.filename || 'answer.md';
        document.body.appendChild(a); a.click();
        setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      } else {
        await copyText(btn, bar.querySelector('.pa-export-text').textContent);
      }
      return;
    }
    const card = btn.closest('.pa-card');
    if (!card) return;
    const ref = card.querySelector('.pa-ref-text').textContent;
    await copyText(btn, btn.classList.contains('pa-copy-quote')
      ? card.querySelector('.pa-text').innerText.trim() + '\\n' + ref : ref);
  });
  const watch = () => {
    const chat = document.querySelector('#pa-chat');
    if (!chat) { setTimeout(watch, 300); return; }
    let seen = 0, settled = true;
    // Always the *current* last question: Gradio may replace the row's node on each update.
    const toTop = () => {
      const rows = chat.querySelectorAll('.message-row.user-row');
      const row = rows[rows.length - 1];
      const box = row && row.closest('.panel-wrap, .bubble-wrap');
      if (box) box.scrollTop += row.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    };
    new MutationObserver(() => {
      const n = chat.querySelectorAll('.message-row.user-row').length;
      if (n > seen) { settled = false; requestAnimationFrame(toTop); }
      seen = n;
      // Once more when the reply has replaced the "searching" line: only now is there room to
      // scroll. Its HTML may lay out over a few frames: settle a few times within 0.4 s.
      const all = chat.querySelectorAll('.message-row');
      const last = all[all.length - 1];
      const replied = last && last.classList.contains('bot-row') && last.querySelector('.pa-answer, .pa-error');
      if (!settled && replied) {
        settled = true;
        for (const ms of [0, 120, 400]) setTimeout(toTop, ms);
      }
    }).observe(chat, {childList: true, subtree: true});
  };
  watch();
}
"""


def theme() -> gr.themes.Base:
    # A restrained red accent (the domain's colour) on slate; labels as plain text, not chips.
    return gr.themes.Soft(primary_hue="red", secondary_hue="amber", neutral_hue="slate",
                          font=_FONTS, font_mono=_MONO).set(
        block_title_background_fill="none", block_title_text_color="*neutral_700",
        block_title_padding="0", block_title_text_weight="600",
        block_label_background_fill="none", block_label_text_color="*neutral_600",
    )


def scope_choices(articles: Sequence[dict]) -> list[tuple[str, str]]:
    """Dropdown (label, value) pairs: every article, then every file that holds several of them."""
    choices: list[tuple[str, str]] = []
    per_source: dict[str, int] = {}
    for a in articles:
        per_source[a["source"]] = per_source.get(a["source"], 0) + 1
        authors = "，".join(a.get("authors") or ())
        label = f"《{a.get('title') or a['key']}》" + (f" {authors}" if authors else "")
        choices.append((label, _ARTICLE + a["key"]))
    for source, n in per_source.items():
        if n > 1:
            choices.append((f"整个文件 {source}（{n} 篇）", _SOURCE + source))
    return choices


def split_scope(values: Sequence[str] | None) -> tuple[list[str] | None, list[str] | None]:
    """Dropdown values -> (sources, articles) for `Assistant.ask`; None means no restriction."""
    sources = [v[len(_SOURCE):] for v in values or () if v.startswith(_SOURCE)]
    articles = [v[len(_ARTICLE):] for v in values or () if v.startswith(_ARTICLE)]
    return sources or None, articles or None


def _whole(value: Any) -> Any:
    """5.0 -> 5 (JSON clients and sliders send floats); anything else goes to `ask` to be judged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def reply_html(assistant: Any, question: str, top_k: float | None, scope: Sequence[str] | None,
               include_refs: bool) -> str:
    """One question -> the reply's HTML. Never raises: bad input becomes a message in the chat."""
    return reply(assistant, question, top_k, scope, include_refs)[0]


def reply(assistant: Any, question: str, top_k: float | None, scope: Sequence[str] | None,
          include_refs: bool) -> tuple[str, Any]:
    """(the reply's HTML, the Answer or None on an error). Never raises."""
    sources, articles = split_scope(scope)
    try:
        answer = assistant.ask(question, top_k=_whole(top_k), sources=sources, articles=articles,
                               include=("references",) if include_refs else ())
        contexts = {p.chunk_id: assistant.context(p, before=1, after=1) for p in answer.passages}
    except AssistantError as err:
        return render.error_html(str(err)), None
    except Exception:  # the user gets a sentence; the operator gets the traceback in the log
        log.exception("ask failed for %r", question)
        return render.error_html("内部错误，本次检索未完成。请重试；若反复出现，请查看服务器日志。"), None
    footer = ""
    if answer.passages:
        footer = render.export_bar(export.answer_text(answer), export.answer_markdown(answer),
                                   export.filename(answer, ".md"))
    return render.answer_html(answer, contexts, footer), answer


EXPORTS_KEPT = 20      # a server's latest exports stay on disk (Gradio serves them from there); older ones go


def export_files(answer: Any, root: Path | None = None) -> tuple[str, str]:
    """The reply written as .md and .docx in a fresh folder under this process' export folder, which keeps only
    the latest EXPORTS_KEPT (a long-running server would otherwise fill /tmp) and is removed at exit."""
    root = root or _export_root()
    for old in sorted(root.iterdir(), key=lambda f: f.stat().st_mtime)[:-(EXPORTS_KEPT - 1) or None]:
        shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(dir=root))
    md = folder / export.filename(answer, ".md")
    md.write_text(export.answer_markdown(answer), encoding="utf-8")
    docx = folder / export.filename(answer, ".docx")
    docx.write_bytes(export.answer_docx(answer))
    return str(md), str(docx)


@functools.cache
def _export_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="pa-export-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


# ---------------------------------------------------------------- the library tab's work
_STAGES = {"reading": "读取语料文件", "chunking": "切分段落", "embedding chunks": "计算向量：段落",
           "embedding sentences": "计算向量：句子"}


def stage_label(stage: str) -> str:
    """A build stage (`index.build` / `assistant.library` on_progress) in the user's words."""
    if stage.startswith("checking "):
        return f"检查并读取 {stage[len('checking '):]}"
    if stage.startswith("ocr "):
        return f"OCR 识别扫描页：{stage[len('ocr '):]}（页）"
    return _STAGES.get(stage, stage)


def in_background(work: Callable[[Callable[[str, int, int], None]], Any], outcome: dict) -> Iterator[str]:
    """Run `work(on_progress)` in its own thread, yielding the progress bar's HTML until it ends.

    The thread, not the browser, owns the work: a closed tab does not interrupt a re-index halfway.
    `outcome` receives "value" or "error".
    """
    state = {"stage": "准备中", "done": 0, "total": 0}

    def hook(stage: str, done: int, total: int) -> None:
        state.update(stage=stage, done=done, total=total)

    def run() -> None:
        try:
            outcome["value"] = work(hook)
        except BaseException as e:   # reported by the generator below, in the page
            outcome["error"] = e

    t = threading.Thread(target=run, name="library-write", daemon=True)
    t.start()
    while t.is_alive():
        yield render.progress_html(stage_label(state["stage"]), state["done"], state["total"])
        t.join(LIBRARY_POLL_S)


def add_outcome_html(outcome: dict) -> str:
    err = outcome.get("error")
    if err is not None:
        if isinstance(err, AssistantError):
            return render.library_message_html("error", "未能添加", [str(err)])
        log.error("adding documents failed", exc_info=err)
        return render.library_message_html("error", "添加失败，语料和索引保持原样。请查看服务器日志。")
    rep = outcome["value"]
    lines = [f"{n}（已替换）" if n in rep.replaced else n for n in rep.added]
    refused = [f"{r.name}：{r.reason}" for r in rep.refused]
    if rep.added and not refused:
        return render.library_message_html("ok", f"已添加 {len(rep.added)} 篇，现可检索", lines)
    if rep.added:
        return render.library_message_html("warn", f"已添加 {len(rep.added)} 篇；{len(refused)} 个文件被拒绝",
                                           lines + refused)
    return render.library_message_html("error", f"{len(refused)} 个文件被拒绝，未添加任何文献", refused)


def remove_outcome_html(name: str, outcome: dict) -> str:
    err = outcome.get("error")
    if err is not None:
        if isinstance(err, AssistantError):
            return render.library_message_html("error", f"未能删除 {name}", [str(err)])
        log.error("removing %s failed", name, exc_info=err)
        return render.library_message_html("error", "删除失败，语料和索引保持原样。请查看服务器日志。")
    return render.library_message_html("ok", f"已删除 {name}，索引已更新")


def _documents(assistant: Any) -> tuple[list, list]:
    try:
        return list(assistant.documents()), library.skipped(assistant)
    except Exception:        # a stand-in without a library (tests) or an unreadable manifest: an empty list
        log.debug("no document list", exc_info=True)
        return [], []


def doc_choices(docs: Sequence) -> list[tuple[str, str]]:
    return [(f"{d.title or '（无题）'} — {d.name}", d.name) for d in docs]


def build_ui(assistant: Any, uploads: UploadLimits | None = None) -> gr.Blocks:
    """The chat window, the document library and the `/ask` API endpoint over one shared `assistant`.

    uploads: the limits for adding documents from the page; None (the default) shows the library read-only
    and registers no event that writes.
    """
    articles = assistant.articles()
    examples = [{"text": q} for q in assistant.example_questions()]

    def respond(question: str, history: list, answers: list, top_k: float, scope: list[str] | None,
                include_refs: bool) -> Iterator[tuple]:
        history = list(history or [])
        # An empty question still gets a bubble, so the error below it is scrolled into view.
        # Lone surrogates cannot be sent back as JSON; the echo replaces them, `ask` below reports them.
        echo = (question or "").strip().encode("utf-8", "replace").decode("utf-8")
        history.append({"role": "user", "content": render.question_html(echo)})
        yield history + [{"role": "assistant", "content": render.pending_html()}], "", gr.skip(), gr.skip()
        html, answer = reply(assistant, question or "", top_k, scope, include_refs)
        if answer is None or not answer.passages:
            yield history + [{"role": "assistant", "content": html}], "", gr.skip(), gr.skip()
            return
        answers = [*(answers or []), answer]
        yield (history + [{"role": "assistant", "content": html}], "", answers,
               gr.update(choices=export_choices(answers), value=len(answers) - 1))

    def respond_example(history: list, answers: list, top_k: float, scope: list[str] | None, include_refs: bool,
                        evt: gr.SelectData) -> Iterator[tuple]:
        text = evt.value.get("text", "") if isinstance(evt.value, dict) else str(evt.value)
        yield from respond(text, history, answers, top_k, scope, include_refs)

    def export_choices(answers: list) -> list[tuple[str, int]]:
        return [(f"{i}. {a.question[:40]}", i - 1) for i, a in enumerate(answers, 1)]

    def make_exports(answers: list, choice: int | None):
        if not answers or choice is None or not 0 <= int(choice) < len(answers):
            return gr.update(value=None, interactive=False), gr.update(value=None, interactive=False)
        md, docx = export_files(answers[int(choice)])
        return gr.update(value=md, interactive=True), gr.update(value=docx, interactive=True)

    def ask(question: str, top_k: int = TOP_K_DEFAULT) -> dict:
        """Cited lookup: the top passages for `question`, each with its reference (Answer.to_dict())."""
        try:
            return assistant.ask(question, top_k=_whole(top_k)).to_dict()
        except AssistantError as err:
            raise gr.Error(str(err), print_exception=False) from None

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.HTML(INTRO, padding=False)
        answers = gr.State([])          # this tab's Answers, for the export buttons
        with gr.Tabs(elem_id="pa-tabs"):
            with gr.Tab("问答", id="chat", elem_id="pa-tab-chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=340):
                        chatbot = gr.Chatbot(
                            elem_id="pa-chat", show_label=False, height="calc(100vh - 290px)", min_height=420,
                            layout="panel", placeholder=PLACEHOLDER, examples=examples or None,
                            # The reply is our own escaped HTML: no Markdown or LaTeX pass over corpus text
                            # (a "$$" or "*" in a paragraph must stay literal); Gradio still sanitizes.
                            render_markdown=False, latex_delimiters=[], sanitize_html=True,
                            # No per-message copy: it would copy our HTML source; replies have their own.
                            buttons=[], feedback_options=None,
                            autoscroll=False,  # JS below scrolls the new question to the top instead
                        )
                        box = gr.Textbox(
                            elem_id="pa-input", show_label=False, lines=1, max_lines=4, autofocus=True,
                            submit_btn="提问", placeholder="输入问题，按回车检索（中英文均可）",
                        )
                    with gr.Column(scale=1, min_width=250):
                        with gr.Accordion("检索设置", open=True):
                            top_k = gr.Slider(1, TOP_K_MAX, value=TOP_K_DEFAULT, step=1, label="显示段落数")
                            scope = gr.Dropdown(
                                scope_choices(articles), value=[], multiselect=True, label="限定文章或文件",
                                elem_id="pa-scope",
                                info="留空则检索全部语料", max_choices=None,
                            )
                            include_refs = gr.Checkbox(False, label="包括参考文献列表",
                                                       info="默认不检索文末参考文献")
                        with gr.Accordion("导出回答", open=True, elem_id="pa-export-panel"):
                            export_choice = gr.Dropdown([], value=None, label="选择回答", elem_id="pa-export-choice",
                                                        info="原文摘录及编号参考文献（GB/T 7714）")
                            with gr.Row():
                                dl_md = gr.DownloadButton("下载 Markdown", value=None, interactive=False,
                                                          size="sm", elem_id="pa-dl-md")
                                dl_docx = gr.DownloadButton("下载 Word", value=None, interactive=False,
                                                            size="sm", elem_id="pa-dl-docx")
                        clear = gr.Button("清空对话", variant="secondary", size="md")
                        gr.Markdown(HELP, elem_id="pa-help")
            with gr.Tab("文献库", id="library", elem_id="pa-tab-library"):
                lib = _library_tab(assistant, uploads, scope)

        settings = [top_k, scope, include_refs]
        common = dict(concurrency_limit=CONCURRENCY, concurrency_id="ask", api_visibility="private",
                      show_progress="hidden")
        outputs = [chatbot, box, answers, export_choice]
        box.submit(respond, [box, chatbot, answers, *settings], outputs, **common)
        chatbot.example_select(respond_example, [chatbot, answers, *settings], outputs, **common)
        export_choice.change(make_exports, [answers, export_choice], [dl_md, dl_docx], api_visibility="private",
                             show_progress="hidden")
        clear.click(lambda: ([], "", [], gr.update(choices=[], value=None)), None, outputs, queue=False,
                    api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_limit=CONCURRENCY, concurrency_id="ask")
        demo.load(lib.refresh, None, lib.outputs, api_visibility="private", show_progress="hidden")
    demo.queue(max_size=QUEUE_MAX, default_concurrency_limit=CONCURRENCY)
    return demo


def named_files(**kwargs) -> gr.File:
    """A gr.File whose handler gets (name as the browser sent it, Gradio's stored copy) pairs.

    Gradio stores an upload under the last part of its name only, so `../../x.txt` would arrive as a harmless
    `x.txt`; the library checks the name the user's file really had and refuses it with the reason. The
    override is on the instance: a gr.File subclass would make Gradio write a .pyi stub beside this module.
    """
    box = gr.File(**kwargs)

    def preprocess(payload):
        if payload is None:
            return None
        items = list(payload) if isinstance(payload, ListFiles) else [payload]
        # Gradio's cache folder can be gone (a fresh /tmp, a tmp cleaner) while the server runs
        Path(box.GRADIO_CACHE).mkdir(parents=True, exist_ok=True)
        return [(f.orig_name or Path(f.path).name, box._process_single_file(f)) for f in items]

    box.preprocess = preprocess
    return box


@dataclass
class _LibraryTab:
    refresh: Callable[[], tuple]    # the list, the "open" choices and the chat's scope choices, as they are now
    outputs: list


def _library_tab(assistant: Any, uploads: UploadLimits | None, scope: gr.Dropdown) -> _LibraryTab:
    """The 文献库 tab: filterable list, one document's chunks and metadata, and (uploads only) add/remove."""
    docs, skipped = _documents(assistant)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=340):
            query = gr.Textbox(label="筛选文献", placeholder="按标题、作者、文件名、类型、格式或日期筛选",
                               elem_id="pa-lib-filter", max_lines=1)
            table = gr.HTML(render.library_html(docs, skipped), elem_id="pa-lib-list")
            pick = gr.Dropdown(doc_choices(docs), value=None, label="打开文献", elem_id="pa-lib-open",
                               info="查看索引中的全部段落（按阅读顺序、在各自标题下）及解析出的元数据")
            detail = gr.HTML("", elem_id="pa-lib-detail")
        with gr.Column(scale=2, min_width=280):
            if uploads is None:
                gr.Markdown(READ_ONLY, elem_id="pa-lib-readonly")
            else:
                mb = uploads.max_file_bytes / library.MB
                files = named_files(file_count="multiple", file_types=UPLOAD_TYPES, type="filepath",
                                label="添加文献：拖放或选择文件", elem_id="pa-upload", height=170)
                gr.Markdown(f"PDF、Word（.docx）、网页（.html）、TXT、MD，可多选；每个不超过 {mb:g} MB。"
                            "文件先检查（按内容而非扩展名），再复制到语料文件夹并更新索引；更新期间仍可提问。",
                            elem_id="pa-upload-note")
                add_btn = gr.Button("添加到文献库", variant="primary", elem_id="pa-add")
                replace_btn = gr.Button("替换同名文件并添加", variant="stop", visible=False, elem_id="pa-replace")
                status = gr.HTML("", elem_id="pa-lib-status")
                remove_btn = gr.Button("删除所打开的文献", variant="secondary", elem_id="pa-remove")
                with gr.Column(visible=False, elem_id="pa-remove-box") as confirm_box:
                    confirm_text = gr.HTML("")
                    with gr.Row():
                        confirm_remove = gr.Button("确认删除", variant="stop", elem_id="pa-remove-confirm")
                        cancel_remove = gr.Button("取消", elem_id="pa-remove-cancel")

    def listing(q: str = ""):
        docs, skipped = _documents(assistant)
        return (render.library_html(docs, skipped, q or ""), gr.update(choices=doc_choices(docs)),
                gr.update(choices=scope_choices(assistant.articles())))

    def show(name: str | None) -> str:
        if not name:
            return ""
        try:
            return render.document_html(assistant.document(name))
        except AssistantError as err:
            return render.library_message_html("error", "无法打开", [str(err)])

    private = dict(api_visibility="private", show_progress="hidden")
    query.change(lambda q: render.library_html(*_documents(assistant), q or ""), [query], [table], **private)
    pick.change(show, [pick], [detail], **private)
    if uploads is None:
        return _LibraryTab(listing, [table, pick, scope])

    writes = dict(concurrency_limit=1, concurrency_id="library", **private)
    skips = (gr.skip(),) * 4

    # The upload box is never sent an update (gr.skip()/gr.update() would make Gradio re-create it without the
    # name-keeping preprocess of `named_files`): a chained event clears it with a plain value, and what waits for
    # the "replace" confirmation is kept in `pending`.
    pending = gr.State([])

    def add(uploaded: list[tuple[str, str]] | None, q: str, replace: bool = False) -> Iterator[tuple]:
        uploaded = [(str(name), str(path)) for name, path in (uploaded or [])]
        if not uploaded:
            yield (render.library_message_html("warn", "请先拖放或选择要添加的文件"), gr.update(visible=False),
                   *skips[:3], [])
            return
        if not replace:
            taken = library.clashes(assistant, [name for name, _ in uploaded])
            if taken:
                yield (render.library_message_html(
                    "warn", "文献库中已有同名文件，是否替换？",
                    [*taken, "点击“替换同名文件并添加”确认替换；不替换则重新选择文件。"]),
                    gr.update(visible=True), *skips[:3], uploaded)
                return
        outcome: dict = {}
        for bar in in_background(lambda hook: assistant.add_documents(uploaded, replace=replace, limits=uploads,
                                                                       on_progress=hook), outcome):
            yield bar, gr.update(visible=False), *skips[:3], gr.skip()
        _discard_uploads([path for _, path in uploaded])
        yield (add_outcome_html(outcome), gr.update(visible=False), *listing(q), [])

    def add_replacing(uploaded: list[tuple[str, str]] | None, q: str) -> Iterator[tuple]:
        yield from add(uploaded, q, replace=True)

    def ask_remove(name: str | None):
        if not name:
            return gr.update(visible=False), "", render.library_message_html("warn", "请先在“打开文献”中选择一篇")
        return (gr.update(visible=True),
                render.library_message_html("warn", f"确认删除 {name}？",
                                            ["文件将从语料文件夹中删除，并重建索引；之后的回答不再引用它。"]),
                "")

    def remove(name: str | None, q: str) -> Iterator[tuple]:
        if not name:
            yield render.library_message_html("warn", "请先选择一篇"), gr.update(visible=False), *skips
            return
        outcome: dict = {}
        for bar in in_background(lambda hook: assistant.remove_document(name, on_progress=hook), outcome):
            yield bar, gr.update(visible=False), *skips
        table_html, pick_update, scope_update = listing(q)
        if "error" in outcome:
            yield remove_outcome_html(name, outcome), gr.update(visible=False), *skips
            return
        yield (remove_outcome_html(name, outcome), gr.update(visible=False), table_html,
               gr.update(choices=pick_update["choices"], value=None), scope_update, "")

    add_outputs = [status, replace_btn, table, pick, scope, pending]
    add_btn.click(add, [files, query], add_outputs, **writes).then(lambda: None, None, [files], **private)
    replace_btn.click(add_replacing, [pending, query], add_outputs, **writes)
    remove_btn.click(ask_remove, [pick], [confirm_box, confirm_text, status], **private)
    cancel_remove.click(lambda: gr.update(visible=False), None, [confirm_box], **private)
    confirm_remove.click(remove, [pick, query], [status, confirm_box, table, pick, scope, detail], **writes)
    return _LibraryTab(listing, [table, pick, scope])


def _discard_uploads(paths: Sequence[str]) -> None:
    """Gradio's copies of the uploaded files (in its temporary folder): not kept once added or refused."""
    tmp = Path(tempfile.gettempdir()).resolve()
    for p in paths:
        path = Path(p).resolve()
        if tmp in path.parents:
            try:
                os.unlink(path)
            except OSError:
                pass


def launch_options(host: str = "127.0.0.1", port: int = 7860, auth: Any = None,
                   quiet: bool = True, uploads: UploadLimits | None = None) -> dict:
    """`Blocks.launch` arguments: loopback by default, never shared, offline, our look, no blocking."""
    return dict(
        server_name=host, server_port=port, auth=auth, share=False, inbrowser=False,
        # Without uploads Gradio's /upload route must store nothing (it would otherwise take anything); with
        # them it refuses a file above the limit before it is written (library.py checks again).
        max_file_size=uploads.max_file_bytes if uploads else 1,
        prevent_thread_lock=True, quiet=quiet, show_error=False, ssr_mode=False, pwa=False,
        mcp_server=False, enable_monitoring=False, run_history=False,
        footer_links=["api", "settings"], theme=theme(), css=CSS, js=JS, head=HEAD,
    )


def start(assistant: Any, host: str = "127.0.0.1", port: int = 7860, auth: Any = None,
          quiet: bool = True, uploads: UploadLimits | None = None) -> gr.Blocks:
    """Build and launch without blocking; returns the running Blocks (`.local_url`, `.close()`)."""
    demo = build_ui(assistant, uploads)
    try:
        demo.launch(**launch_options(host, port, auth, quiet, uploads))
    except OSError as err:   # Gradio's message points at its own env vars, not at our CLI
        raise AssistantError(f"cannot listen on {host}:{port} ({err.strerror or 'address in use'}); "
                             f"choose another port, e.g. --port {port + 1}") from None
    return demo


def serve(assistant: Any, host: str = "127.0.0.1", port: int = 7860, auth: Any = None,
          uploads: UploadLimits | None = None) -> None:
    """Serve the chat on http://host:port until interrupted (loopback only unless `host` says so).

    uploads: limits for adding documents from the page (`--allow-uploads`); None keeps the library read-only."""
    demo = start(assistant, host=host, port=port, auth=auth, uploads=uploads)
    # Once the UI is up, not beside the import of gradio (the two compete for the GIL, and together took 4x
    # longer). A question asked meanwhile takes the slower eager path instead of waiting.
    warm = threading.Thread(target=assistant.warm_up, name="warm-up", daemon=True)
    warm.start()
    print(f"政策文献问答助手 is ready: http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    try:
        demo.block_thread()
    finally:
        demo.close(verbose=False)
        # A Ctrl-C while torch is still tracing would end the interpreter under that thread, and the C++
        # runtime aborts the process ("terminate called without an active exception"): let it finish first.
        if warm.is_alive():
            print("waiting for the model warm-up to finish ...", flush=True)
            warm.join(WARM_UP_JOIN_S)

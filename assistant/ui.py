"""The Gradio chat window over one shared `Assistant`.

Thin layer (STYLE §10): the handlers call `Assistant.ask` / `Assistant.context` and format with
`assistant.render`; no retrieval logic lives here. One `Assistant` serves every browser tab and API
client; it is thread-safe, so the events run up to `CONCURRENCY` at a time in Gradio's thread pool.

    demo = build_ui(assistant)              # a gr.Blocks, not yet listening
    serve(assistant, port=7860)             # what `assistant serve` runs; blocks until Ctrl-C
    demo = start(assistant, port=7861)      # non-blocking (tests): demo.local_url, demo.close()
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import gradio as gr

from assistant import render
from assistant.errors import AssistantError

log = logging.getLogger(__name__)

TITLE = "政策文献问答助手"
CONCURRENCY = 8          # users answered at once; the requirement is eight
WARM_UP_JOIN_S = 60      # the longest a stop waits for the warm-up (a few seconds here)
QUEUE_MAX = 64           # beyond this a user is told the queue is full instead of waiting forever
TOP_K_DEFAULT, TOP_K_MAX = 5, 10
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
@media (max-width: 640px) {
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
  document.addEventListener('click', async (ev) => {
    const btn = ev.target && ev.target.closest ? ev.target.closest('.pa-copy') : null;
    const card = btn && btn.closest('.pa-card');
    if (!card) return;
    const ref = card.querySelector('.pa-ref-text').textContent;
    const text = btn.classList.contains('pa-copy-quote')
      ? card.querySelector('.pa-text').innerText.trim() + '\\n' + ref : ref;
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
    sources, articles = split_scope(scope)
    try:
        answer = assistant.ask(question, top_k=_whole(top_k), sources=sources, articles=articles,
                               include=("references",) if include_refs else ())
        contexts = {p.chunk_id: assistant.context(p, before=1, after=1) for p in answer.passages}
    except AssistantError as err:
        return render.error_html(str(err))
    except Exception:  # the user gets a sentence; the operator gets the traceback in the log
        log.exception("ask failed for %r", question)
        return render.error_html("内部错误，本次检索未完成。请重试；若反复出现，请查看服务器日志。")
    return render.answer_html(answer, contexts)


def build_ui(assistant: Any) -> gr.Blocks:
    """The chat window and the `/ask` API endpoint over one shared `assistant`."""
    articles = assistant.articles()
    examples = [{"text": q} for q in assistant.example_questions()]

    def respond(question: str, history: list, top_k: float, scope: list[str] | None,
                include_refs: bool) -> Iterator[tuple[list, str]]:
        history = list(history or [])
        # An empty question still gets a bubble, so the error below it is scrolled into view.
        # Lone surrogates cannot be sent back as JSON; the echo replaces them, `ask` below reports them.
        echo = (question or "").strip().encode("utf-8", "replace").decode("utf-8")
        history.append({"role": "user", "content": render.question_html(echo)})
        yield history + [{"role": "assistant", "content": render.pending_html()}], ""
        html = reply_html(assistant, question or "", top_k, scope, include_refs)
        yield history + [{"role": "assistant", "content": html}], ""

    def respond_example(history: list, top_k: float, scope: list[str] | None, include_refs: bool,
                        evt: gr.SelectData) -> Iterator[tuple[list, str]]:
        text = evt.value.get("text", "") if isinstance(evt.value, dict) else str(evt.value)
        yield from respond(text, history, top_k, scope, include_refs)

    def ask(question: str, top_k: int = TOP_K_DEFAULT) -> dict:
        """Cited lookup: the top passages for `question`, each with its reference (Answer.to_dict())."""
        try:
            return assistant.ask(question, top_k=_whole(top_k)).to_dict()
        except AssistantError as err:
            raise gr.Error(str(err), print_exception=False) from None

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.HTML(INTRO, padding=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                chatbot = gr.Chatbot(
                    elem_id="pa-chat", show_label=False, height="calc(100vh - 250px)", min_height=420,
                    layout="panel", placeholder=PLACEHOLDER, examples=examples or None,
                    # The reply is our own escaped HTML: no Markdown or LaTeX pass over corpus text
                    # (a "$$" or "*" in a paragraph must stay literal); Gradio still sanitizes.
                    render_markdown=False, latex_delimiters=[], sanitize_html=True,
                    # No per-message copy: it would copy our HTML source; cards have their own buttons.
                    buttons=[], feedback_options=None,
                    autoscroll=False,  # JS below scrolls the new question to the top instead
                )
                box = gr.Textbox(
                    elem_id="pa-input", show_label=False, lines=1, max_lines=4, autofocus=True, submit_btn="提问",
                    placeholder="输入问题，按回车检索（中英文均可）",
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
                clear = gr.Button("清空对话", variant="secondary", size="md")
                gr.Markdown(HELP, elem_id="pa-help")

        settings = [top_k, scope, include_refs]
        common = dict(concurrency_limit=CONCURRENCY, concurrency_id="ask", api_visibility="private",
                      show_progress="hidden")
        box.submit(respond, [box, chatbot, *settings], [chatbot, box], **common)
        chatbot.example_select(respond_example, [chatbot, *settings], [chatbot, box], **common)
        clear.click(lambda: ([], ""), None, [chatbot, box], queue=False, api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_limit=CONCURRENCY, concurrency_id="ask")
    demo.queue(max_size=QUEUE_MAX, default_concurrency_limit=CONCURRENCY)
    return demo


def launch_options(host: str = "127.0.0.1", port: int = 7860, auth: Any = None,
                   quiet: bool = True) -> dict:
    """`Blocks.launch` arguments: loopback by default, never shared, offline, our look, no blocking."""
    return dict(
        server_name=host, server_port=port, auth=auth, share=False, inbrowser=False,
        max_file_size=1,   # the app takes no uploads: Gradio's /upload route would otherwise store anything
        prevent_thread_lock=True, quiet=quiet, show_error=False, ssr_mode=False, pwa=False,
        mcp_server=False, enable_monitoring=False, run_history=False,
        footer_links=["api", "settings"], theme=theme(), css=CSS, js=JS, head=HEAD,
    )


def start(assistant: Any, host: str = "127.0.0.1", port: int = 7860, auth: Any = None,
          quiet: bool = True) -> gr.Blocks:
    """Build and launch without blocking; returns the running Blocks (`.local_url`, `.close()`)."""
    demo = build_ui(assistant)
    try:
        demo.launch(**launch_options(host, port, auth, quiet))
    except OSError as err:   # Gradio's message points at its own env vars, not at our CLI
        raise AssistantError(f"cannot listen on {host}:{port} ({err.strerror or 'address in use'}); "
                             f"choose another port, e.g. --port {port + 1}") from None
    return demo


def serve(assistant: Any, host: str = "127.0.0.1", port: int = 7860, auth: Any = None) -> None:
    """Serve the chat on http://host:port until interrupted (loopback only unless `host` says so)."""
    demo = start(assistant, host=host, port=port, auth=auth)
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

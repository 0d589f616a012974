"""HTML of the chat replies (pure functions, no browser): escaping, highlights, not-found, references.

The oracle for escaping is an HTML parser: whatever the corpus holds, the reply may contain only the
tags we emit ourselves and no event-handler attribute.
"""
from html.parser import HTMLParser

import pytest

from assistant import render, ui
from assistant.errors import EmptyQueryError, UnknownSourceError
from assistant.records import Answer, Citation, Passage

OUR_TAGS = {"div", "span", "mark", "details", "summary", "button", "strong", "br"}
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]

    def handle_data(self, data):
        self.text.append(data)


def parse(markup: str) -> _Tags:
    p = _Tags()
    p.feed(markup)
    p.close()
    return p


def citation(**kw) -> Citation:
    base = dict(title="国企党建与生产经营工作创新融合的探索实践", authors=("曾程", "杜淏天"),
                affiliation="", section=("2 主要做法", "2.2 压实责任"), source="001_x.txt",
                line_start=35, line_end=36, doi="10.1/abc")
    return Citation(**{**base, **kw})


def passage(text="建立“一岗双责”制度。坚持同步考核。", highlights=((0, 10),), confidence="high",
            chunk_id="c1", block="body", **cit) -> Passage:
    return Passage(chunk_id, text, 0.5, confidence, highlights, block, citation(**cit))


def answer(passages, found=True, message="找到 1 段相关原文（按相关度排序）。") -> Answer:
    return Answer("什么是“一岗双责”？", found, tuple(passages), message, 12.5)


# ---------------------------------------------------------------- escaping
@pytest.mark.parametrize("field", ["text", "title", "authors", "section", "source", "doi", "neighbour"])
@pytest.mark.parametrize("payload", [SCRIPT, IMG, '"><svg onload=alert(1)>', "<b>粗</b>&amp;"])
def test_corpus_text_is_escaped_everywhere(field, payload):
    kw = {"text": "正文。", "highlights": ((0, 3),)}
    if field == "text":
        kw = {"text": f"前文{payload}后文。", "highlights": ((1, 6),)}   # a span that cuts the payload
    elif field == "authors":
        kw["authors"] = ("张三", payload)
    elif field == "section":
        kw["section"] = (payload,)
    elif field != "neighbour":
        kw[field] = payload
    p = passage(**kw)
    context = {p.chunk_id: [passage(text=payload, highlights=(), chunk_id="n0"), p]}
    markup = render.answer_html(answer([p]), context)
    parsed = parse(markup)
    assert set(parsed.tags) <= OUR_TAGS, markup
    assert not [a for a in parsed.attrs if a.startswith("on")], markup
    assert "<script" not in markup.lower() and "<img" not in markup.lower() and "<svg" not in markup.lower()
    # ... and the text is still there for the reader, verbatim once unescaped
    assert payload in "".join(parsed.text)


@pytest.mark.parametrize("make", [
    lambda s: render.question_html(s),
    lambda s: render.error_html(s),
    lambda s: render.answer_html(answer([], found=False, message=s)),
])
def test_question_error_and_message_are_escaped(make):
    markup = make(SCRIPT + IMG)
    assert set(parse(markup).tags) <= OUR_TAGS
    assert "&lt;script&gt;" in markup and "&lt;img" in markup


# ---------------------------------------------------------------- highlights
@pytest.mark.parametrize("text, spans, want", [
    ("一二三四五", [(1, 3)], "一<mark>二三</mark>四五"),
    ("一二三四五", [], "一二三四五"),
    ("一二三四五", [(0, 5)], "<mark>一二三四五</mark>"),
    ("一二三四五", [(3, 4), (0, 1)], "<mark>一</mark>二三<mark>四</mark>五"),       # unsorted
    ("一二三四五", [(0, 2), (1, 3)], "<mark>一二三</mark>四五"),                    # overlapping
    ("一二三四五", [(0, 2), (2, 3)], "<mark>一二三</mark>四五"),                    # touching
    ("一二三", [(2, 99), (-5, 1)], "<mark>一</mark>二<mark>三</mark>"),             # clipped
    ("一二三", [(2, 2), (3, 1)], "一二三"),                                         # empty spans
    ("a<b>c", [(1, 3)], "a<mark>&lt;b</mark>&gt;c"),                               # span cuts a tag
    ("x&y", [(0, 2)], "<mark>x&amp;</mark>y"),
    ("第一行\n第二行", [(4, 7)], "第一行<br><mark>第二行</mark>"),
])
def test_highlight_spans_become_mark(text, spans, want):
    assert render.highlight(text, spans) == want


def test_card_marks_the_evidence_sentence():
    text = "建立“一岗双责”制度。坚持同步考核。"
    p = passage(text=text, highlights=((0, text.index("。") + 1),))
    markup = render.answer_html(answer([p]))
    assert "<mark>建立“一岗双责”制度。</mark>坚持同步考核。" in markup


# ---------------------------------------------------------------- found / not found
def test_not_found_says_so_and_marks_passages_weak():
    ps = [passage(chunk_id="a", confidence="low"), passage(chunk_id="b", confidence="low")]
    markup = render.answer_html(answer(ps, found=False, message="语料中没有找到可靠的答案；以下是最接近的段落。"))
    assert "语料中没有找到可靠的答案" in markup
    assert markup.count('class="pa-card pa-weak"') == 2
    assert markup.count("可能相关") >= 2
    assert "置信度" not in markup                 # weak passages get no confidence badge
    assert markup.count(render.NOT_FOUND) == 1    # the API's message is not repeated


def test_not_found_without_passages_suggests_rephrasing():
    markup = render.answer_html(answer([], found=False, message=""))
    assert render.NOT_FOUND in markup and "换一种说法" in markup and "pa-card" not in markup


def test_found_answer_has_no_not_found_notice():
    markup = render.answer_html(answer([passage()]))
    assert render.NOT_FOUND not in markup and "pa-weak" not in markup
    assert "找到 1 段相关原文" in markup


@pytest.mark.parametrize("confidence, label", [("high", "高"), ("medium", "中"), ("low", "低")])
def test_confidence_label(confidence, label):
    markup = render.passage_card(passage(confidence=confidence), 1)
    assert f"置信度 {label}</span>" in markup and f"pa-conf-{confidence}" in markup


def test_cards_are_ranked_in_answer_order():
    ps = [passage(chunk_id=str(i), title=f"标题{i}") for i in range(3)]
    markup = render.answer_html(answer(ps))
    positions = [markup.index(f'<span class="pa-rank">{i}</span>') for i in (1, 2, 3)]
    assert positions == sorted(positions)
    assert [markup.index(f"标题{i}") for i in range(3)] == sorted(markup.index(f"标题{i}") for i in range(3))


# ---------------------------------------------------------------- citation, authors, section, context
def test_card_shows_title_authors_section_and_reference_with_copy_button():
    p = passage()
    markup = render.passage_card(p, 1)
    assert "国企党建与生产经营工作创新融合的探索实践" in markup
    assert "曾程，杜淏天" in markup
    assert "2 主要做法 › 2.2 压实责任" in markup
    ref = p.citation.reference()
    assert f'<span class="pa-ref-text">{render._esc(ref)}</span>' in markup
    assert "001_x.txt:35-36" in ref
    assert 'class="pa-copy pa-copy-ref"' in markup and 'class="pa-copy pa-copy-quote"' in markup


def test_fallback_title_and_missing_authors_are_labelled():
    markup = render.passage_card(passage(title="1 引言", title_is_fallback=True, authors=()), 1)
    assert "［无题，取自首个标题］1 引言" in markup and "作者不详" in markup


@pytest.mark.parametrize("block, label", [("references", "参考文献"), ("abstract", "摘要"), ("body", None)])
def test_non_body_blocks_are_tagged(block, label):
    markup = render.passage_card(passage(block=block), 1)
    assert ("pa-block" in markup) == (label is not None)
    if label:
        assert f">{label}</span>" in markup


def test_context_is_a_collapsed_details_with_neighbours_in_order():
    p = passage(chunk_id="me")
    ctx = [passage(text="上一段。", highlights=(), chunk_id="prev"), p,
           passage(text="下一段。", highlights=(), chunk_id="next")]
    markup = render.passage_card(p, 1, ctx)
    assert "<details" in markup and "<details open" not in markup
    assert markup.index("上一段。") < markup.index("pa-nb-self") < markup.index("下一段。")
    assert "前后 2 段" in markup


def test_no_details_when_the_passage_has_no_neighbours():
    p = passage()
    assert "<details" not in render.passage_card(p, 1, [p])
    assert "<details" not in render.passage_card(p, 1, [])


def test_markup_is_one_line():
    # One raw-HTML block: a Markdown pass (if ever enabled) must not see blank lines inside it.
    p = passage(text="第一段\n\n第二段", highlights=())
    assert "\n" not in render.answer_html(answer([p]), {p.chunk_id: [p]})


# ---------------------------------------------------------------- the UI's handler and filter (no server)
class _Raises:
    def __init__(self, err):
        self.err = err

    def ask(self, *a, **kw):
        raise self.err


@pytest.mark.parametrize("err, shown, hidden", [
    (EmptyQueryError("问题为空，请输入一个问题。 (the question is empty)"), "问题为空", "Traceback"),
    (UnknownSourceError("unknown source 'x.txt'; the index has: a.txt"), "unknown source", "Traceback"),
    (RuntimeError("secret internal detail <b>"), "内部错误", "secret internal detail"),
])
def test_errors_become_a_message_never_a_traceback(err, shown, hidden):
    markup = ui.reply_html(_Raises(err), "问题", 5, None, False)
    assert 'class="pa-error"' in markup and shown in markup and hidden not in markup


class _Records:
    """Records the call and answers with one passage."""
    def __init__(self):
        self.calls = []

    def ask(self, question, top_k=5, *, sources=None, articles=None, include=()):
        self.calls.append((question, top_k, sources, articles, tuple(include)))
        return answer([passage()])

    def context(self, p, before=1, after=1):
        return [p]


@pytest.mark.parametrize("scope, include_refs, want", [
    (None, False, (None, None, ())),
    ([], True, (None, None, ("references",))),
    (["article:001_x.txt#0", "source:002_y.txt"], False, (["002_y.txt"], ["001_x.txt#0"], ())),
])
def test_handler_passes_the_controls_to_ask(scope, include_refs, want):
    rec = _Records()
    markup = ui.reply_html(rec, "一岗双责", 7.0, scope, include_refs)
    assert rec.calls == [("一岗双责", 7, *want)]
    assert "pa-card" in markup


def test_scope_choices_list_articles_then_multi_article_files():
    arts = [{"key": "a.txt#0", "source": "a.txt", "title": "甲文", "authors": ["张三"], "kind": "article"},
            {"key": "b.txt#0", "source": "b.txt", "title": "乙文", "authors": [], "kind": "article"},
            {"key": "b.txt#1", "source": "b.txt", "title": "丙文", "authors": [], "kind": "notice"}]
    choices = ui.scope_choices(arts)
    assert choices == [("《甲文》 张三", "article:a.txt#0"), ("《乙文》", "article:b.txt#0"),
                       ("《丙文》", "article:b.txt#1"), ("整个文件 b.txt（2 篇）", "source:b.txt")]
    assert ui.split_scope([v for _, v in choices]) == (["b.txt"], ["a.txt#0", "b.txt#0", "b.txt#1"])


# ---------------------------------------------------------------- the Blocks' wiring (built, not launched)
class _Static(_Records):
    def articles(self):
        return [{"key": "a.txt#0", "source": "a.txt", "title": "甲文", "authors": [], "kind": "article"}]

    def example_questions(self):
        return ["什么是“一岗双责”？"]


def test_every_ask_event_shares_one_group_of_eight_and_only_ask_is_public():
    demo = ui.build_ui(_Static())
    fns = list(demo.fns.values())
    asking = [f for f in fns if f.name in ("respond", "respond_example", "ask")]
    assert len(asking) == 3
    assert {(f.concurrency_id, f.concurrency_limit) for f in asking} == {("ask", 8)}
    assert [f.api_name for f in fns if f.api_visibility == "public"] == ["ask"]
    chat = next(b for b in demo.blocks.values() if b.get_block_name() == "chatbot")
    # our escaped HTML is rendered as is: no Markdown/LaTeX pass over corpus text, sanitizer kept on
    assert (chat.render_markdown, chat.latex_delimiters, chat.sanitize_html) == (False, [], True)


def test_launch_options_stay_local_and_private():
    opts = ui.launch_options()
    assert opts["server_name"] == "127.0.0.1" and opts["share"] is False
    assert opts["mcp_server"] is False and opts["run_history"] is False


def test_not_found_shows_why_escaped():
    why = "《<img src=x onerror=alert(1)>》不在语料中"     # the name comes from the user's question
    ans = Answer("问题", False, (passage(confidence="low"),), "语料中没有找到可靠的答案；以下是最接近的段落。", 1.0, why)
    markup = render.answer_html(ans)
    assert "原因：《&lt;img src=x onerror=alert(1)&gt;》不在语料中。" in markup and "<img" not in markup
    assert ans.to_dict()["reason"] == why
    assert "原因" not in render.answer_html(answer([passage()]))

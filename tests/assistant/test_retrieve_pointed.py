"""Questions that point at a block (参考文献, 关键词, 摘要, DOI, 简介) or at an article (author, 《title》, title word)."""
import dataclasses
import shutil
from pathlib import Path

import pytest

from assistant import Assistant, query, retrieve
from assistant.query import AskConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def a(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", corpus)
    return Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)


def _q(a, text, cfg=None):
    cfg = cfg or a.config
    return query.encode(text, a.embedder, a.loaded.tokenizer, cfg, top_k=10)


def _key(chunk):
    return f"{chunk.source}#{chunk.article}"


@pytest.mark.parametrize("question, want", [
    ("刘隆的文章列了哪些参考文献？", ("references",)),
    ("北起院文章引用了中国能建的哪篇报道？", ("references",)),
    ("夏海龙的研究发表在哪份报纸上？", ("references",)),
    ("北起院这篇文章的关键词有哪些？", ("keywords",)),
    ("杨晓炜的文章摘要认为党建工作与生产经营是什么关系？", ("abstract",)),
    ("曾程的教育背景和研究方向是什么？", ("bio",)),
    ("这篇文章的DOI是多少？", ("doi",)),
    ("党组织前置研究讨论重大事项应如何落实？", ()),       # 研究 is no 研究方向, 讨论 no block
    ("如何发挥党员先锋模范作用推动生产经营？", ()),
    # English questions name the blocks in English
    ("Which references does Liu Long's article cite?", ("references",)),
    ("What are the English keywords of the Beiqi Institute paper?", ("keywords",)),
    ("What does the abstract of Yang Xiaowei's paper say?", ("abstract",)),
    ("What is Cheng Zeng's professional background?", ("bio",)),
    ("What is the DOI of this article?", ("doi",)),
    ("Which company is Liu Long affiliated with?", ("front",)),
    ("刘隆的工作单位是哪家公司？", ("front",)),
    ("用人单位应当如何订立劳动合同？", ()),                                      # 用人单位 is no 作者单位
    ("Which typical cases does the paper use as references?", ()),             # 参照, not its reference list
    ("How can abstract political theory be made concrete for workers?", ()),   # an adjective, not the block
    ("What are enterprises doing to integrate Party building?", ()),            # "doing" holds no DOI
])
def test_asked_blocks(question, want):
    assert retrieve.asked_blocks(question) == want


def test_an_author_names_the_article_and_a_title_word_only_when_the_question_speaks_of_an_article(a):
    index = a.loaded
    by_author = {name: keys for name, keys in index.authors.items()}
    assert "刘隆" in by_author and len(by_author["刘隆"]) == 1
    assert retrieve.focused_articles(index, _q(a, "刘隆的文章列了哪些参考文献？")) == by_author["刘隆"]
    # 北起院 is a word of one title (……——以北起院为例) and of that article's text: named when the question
    # speaks of an article, not otherwise (a topic word such as 工会 would send every question to one article).
    (bqy,) = retrieve.focused_articles(index, _q(a, "北起院这篇文章的关键词有哪些？"))
    assert "北起院" in index.titles[bqy]
    assert retrieve.focused_articles(index, _q(a, "北起院如何构建党委引领的协同治理体系？")) == ()
    assert retrieve.focused_articles(index, _q(a, "工会经费的来源与用途是否应该公开？")) == ()
    # 《title》 names its article too
    title = index.titles[bqy]
    assert retrieve.focused_articles(index, _q(a, f"《{title[:20]}》提出了哪些建议？")) == (bqy,)


@pytest.mark.parametrize("question, author, block", [
    ("刘隆的文章列了哪些参考文献？", "刘隆", "references"),
    ("曾程的教育背景和研究方向是什么？", "曾程", "bio"),
    ("杨晓炜这篇党建融合文章的DOI是多少？", "杨晓炜", "front"),
])
def test_the_asked_block_of_the_named_article_comes_first(a, question, author, block):
    index = a.loaded
    (want,) = index.authors[author]
    top = a.ask(question, top_k=5).passages[0]
    chunk = next(c for c in index.stored.chunks if c.id == top.chunk_id)
    assert (_key(chunk), chunk.block) == (want, block)
    if block == "front":
        assert "DOI" in chunk.text
    # without the pointers the demoted block is not first (the rule is what puts it there)
    off = dataclasses.replace(a.config, asked_blocks=False, article_focus=False)
    _, ids = retrieve.rank(index, _q(a, question, off), off)
    first = index.stored.chunks[int(ids[0])]
    assert (_key(first), first.block) != (want, block)


def test_pointers_respect_the_file_filter(a):
    index = a.loaded
    (key,) = index.authors["刘隆"]
    other = next(s for s in index.by_source if s != key.split("#")[0])
    allowed = index.allowed(sources=[other])
    q = query.encode("刘隆的文章列了哪些参考文献？", a.embedder, index.tokenizer, a.config, top_k=10, allowed=allowed)
    _, ids = retrieve.rank(index, q, a.config)
    assert len(ids) and set(ids.tolist()) <= set(allowed.tolist())


@pytest.mark.parametrize("question, author", [
    ("Which company is Liu Long affiliated with?", "刘隆"),          # surname first
    ("What is Cheng Zeng's professional background?", "曾程"),       # surname last; 曾 read zeng, not ceng
])
def test_an_english_question_names_an_author_in_pinyin(a, question, author):
    index = a.loaded
    assert retrieve.focused_articles(index, _q(a, question)) == index.authors[author]


@pytest.mark.parametrize("question", [
    "which company is liu long affiliated with?",      # no capitals: "how long" must never be a name
    "How long should a Party branch meeting last?",
    "Which company is Li Ming affiliated with?",       # a name no author of the corpus has
])
def test_an_english_question_names_no_author_without_a_capitalised_name_the_corpus_has(a, question):
    assert retrieve.focused_articles(a.loaded, _q(a, question)) == ()


def test_romanized_forms_cover_both_orders_compound_surnames_and_u_umlaut():
    from types import SimpleNamespace

    index = SimpleNamespace(authors={"吕梁": ("a#0",), "欧阳修": ("b#0",), "Smith": ("c#0",)}, romanized_cache={})
    forms = retrieve.romanized_authors(index)
    for form in ("lvliang", "luliang", "lyuliang", "lianglu"):
        assert forms[form] == ("a#0",)
    assert forms["ouyangxiu"] == forms["xiuouyang"] == ("b#0",)
    assert not any(k.startswith("smith") for k in forms)        # only names in Chinese characters
    assert retrieve.latin_name_spans("Did Lü Liang write it?") == ["didlu", "didluliang", "luliang"]
    assert "xiuouyang" in retrieve.latin_name_spans("Xiu Ouyang's paper")
    assert retrieve.romanized_authors(index) is forms            # computed once per index


def test_the_bio_of_an_author_named_in_english_comes_first(a):
    index = a.loaded
    (want,) = index.authors["曾程"]
    top = a.ask("What is Cheng Zeng's professional background?", top_k=5)
    chunk = next(c for c in index.stored.chunks if c.id == top.passages[0].chunk_id)
    assert (_key(chunk), chunk.block) == (want, "bio")
    assert top.found          # the asked block of the named article answers by what it is
    off = dataclasses.replace(a.config, asked_blocks=False, article_focus=False)
    _, ids = retrieve.rank(index, _q(a, "What is Cheng Zeng's professional background?", off), off)
    first = index.stored.chunks[int(ids[0])]
    assert (_key(first), first.block) != (want, "bio")

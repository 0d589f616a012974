"""The evidence stage: support thresholds, labels and the named-document rule decide "not found"."""
from types import SimpleNamespace

import numpy as np
import pytest

from assistant import evidence, query
from assistant.query import AskConfig
from assistant.retrieve import document_names, document_titles, holds_document, speaks_of


class _Chunk:
    def __init__(self, title, text):
        self.title, self.text = title, text


class _Index:
    """What judge reads of an index: its names, its titles alone, the chunks' text."""

    def __init__(self, names, titles=None, texts=("",) * 8):
        self.names = names
        self.title_names = names if titles is None else titles
        self.stored = type("Stored", (), {"chunks": [_Chunk("", t) for t in texts]})()
        self.blocks = np.asarray(["body"] * len(texts))

    def holds_document(self, name):
        return holds_document(self.names, name)


def _q(text, latin=False):
    return query.Query(text, text, np.zeros(4, np.float32), (), latin, query.named_documents(text), 5)


T = evidence.Thresholds(found=0.9, found_latin=0.7, high_margin=0.03)


@pytest.mark.parametrize("supports, latin, found, labels", [
    ([0.95, 0.91, 0.5], False, True, ("high", "medium", "low")),
    ([0.89, 0.5], False, False, ("low", "low")),
    ([0.75, 0.71], True, True, ("high", "medium")),       # English: its own, lower threshold
    ([], False, False, ()),
])
def test_judge_by_support(supports, latin, found, labels):
    ev = [evidence.Evidence(i, s, ()) for i, s in enumerate(supports)]
    v = evidence.judge(_Index(()), _q("问题", latin), ev, T, AskConfig())
    assert (v.found, v.labels) == (found, labels)


def test_a_named_document_the_corpus_lacks_is_not_found_however_strong_the_support():
    ev = [evidence.Evidence(0, 0.99, ())]
    idx = _Index(("党政机关办公用房管理办法", "中国共产党纪律处分条例"))
    v = evidence.judge(idx, _q("《中央企业合规管理办法》要求设立首席合规官吗？"), ev, T, AskConfig())
    assert not v.found and v.labels == ("low",) and "中央企业合规管理办法" in v.reason
    ok = evidence.judge(idx, _q("《中国共产党纪律处分条例》规定了哪些处分？"), ev, T, AskConfig())
    assert ok.found
    off = evidence.judge(idx, _q("《中央企业合规管理办法》要求设立首席合规官吗？"), ev, T,
                         AskConfig(named_document_check=False))
    assert off.found


NAMES = document_names([
    _Chunk("中华人民共和国监察法", "第一条 为了……"),
    _Chunk("中国共产党纪律处分条例（2023年修订）", "依照《中国共产党章程》制定本条例。"),
    _Chunk("關於新形勢下黨內政治生活的若干準則", "……"),           # a title in traditional characters
    _Chunk("", "根据《事业单位领导人员管理规定》"),
])


@pytest.mark.parametrize("name, held", [
    ("监察法", True),                          # the short form of a title
    ("中华人民共和国监察法", True),
    ("纪律处分条例", True),
    ("中国共产党纪律处分条例", True),           # edition note set aside
    ("中国共产党章程", True),                  # cited in the text
    ("关于新形势下党内政治生活的若干准则", True),   # traditional title, simplified question
    ("事业单位领导人员管理规定", True),
    ("中央企业合规管理办法", False),
    ("监察法实施条例", False),                   # a longer name is another document
    ("企业国有资产法", False),
    ("法", True),                              # too short to refuse anything
])
def test_holds_document(name, held):
    assert holds_document(NAMES, name) is held


def test_a_document_the_corpus_only_cites_must_be_spoken_of_by_a_passage_found():
    # The corpus holds 纪律处分条例 and cites 《劳动法》 in it; a question about 《中华人民共和国劳动法》 answered by a
    # passage that never names it is not found; a passage that cites it answers.
    chunks = [_Chunk("中国共产党纪律处分条例", "第一条 为了……"), _Chunk("", "依照《劳动法》的规定……")]
    idx = _Index(document_names(chunks), document_titles(chunks), ["第三条 党员应当……", "依照《劳动法》的规定，工作时间……"])
    question = _q("《中华人民共和国劳动法》规定劳动者每日工作时间不超过几小时？")
    assert holds_document(idx.names, "中华人民共和国劳动法")          # cited: the old rule let it through
    off_topic = evidence.judge(idx, question, [evidence.Evidence(0, 0.99, ())], T, AskConfig())
    assert not off_topic.found and "只被引用" in off_topic.reason
    cites = evidence.judge(idx, question, [evidence.Evidence(0, 0.99, ()), evidence.Evidence(1, 0.95, ())], T,
                           AskConfig())
    assert cites.found
    # a title of the corpus needs no passage to name it
    own = evidence.judge(idx, _q("《纪律处分条例》规定了哪些处分？"), [evidence.Evidence(0, 0.99, ())], T, AskConfig())
    assert own.found


@pytest.mark.parametrize("text, name, spoken", [
    ("依照《劳动法》的规定", "中华人民共和国劳动法", True),      # the core form, prefix set aside
    ("依照《勞動法》的規定", "劳动法", True),                    # traditional passage
    ("依照 《劳动 法》", "劳动法", True),                        # spaces of a PDF line
    ("第三条 党员应当……", "劳动法", False),
    ("本条例（2023年修订）", "中国共产党纪律处分条例（2023年修订）", False),
])
def test_speaks_of(text, name, spoken):
    assert speaks_of(text, name) is spoken


class _OnePassage:
    """One chunk of two sentences, its passage vector and the sentence vectors: what `assess` reads."""

    def __init__(self, passage, sentences):
        self.sentence_starts = np.array([0, len(sentences)])
        self.latin = np.array([False])
        self.stored = type("Stored", (), {
            "vectors": np.asarray([passage], np.float32),
            "sentence_vectors": np.asarray(sentences, np.float32),
            "sentences": np.array([[0, 0, 4], [0, 4, 8]], np.int32)})()

    def sentence_terms(self, row):
        return [{"党建"}, {"考核"}]


def test_support_mixes_the_best_sentence_and_the_whole_passage_by_passage_weight():
    unit = lambda *v: np.asarray(v, np.float32) / np.linalg.norm(v)
    idx = _OnePassage(unit(1, 1, 0, 0), [unit(1, 0, 0, 0), unit(0, 0, 1, 0)])
    q = query.Query("党建", "党建", unit(1, 0, 0, 0), ("党建",), False, (), 5)
    sentence, passage = 1.0, float(unit(1, 1, 0, 0) @ unit(1, 0, 0, 0))    # cosines 1.0 and 0.707
    for w in (0.0, 0.5, 1.0):
        cfg = AskConfig(passage_weight=w, coverage_weight=0.06)
        ev = evidence.assess(idx, 0, q, cfg)
        assert ev.support == pytest.approx((1 - w) * sentence + w * passage + 0.06 * 1.0, abs=1e-6)
        assert ev.spans == ((0, 4),)         # the highlight is still the best sentence


class _Articles:
    """Two chunks of one article by 刘隆 (body, references): what held_by_structure reads."""

    def __init__(self, texts=("党组织前置研究讨论重大经营管理事项。", "[1] 刘隆. 国有企业党建研究[J]."),
                 blocks=("body", "references")):
        self.stored = type("Stored", (), {"chunks": [_Chunk("", t) for t in texts]})()
        self.blocks = np.asarray(blocks)
        self.authors, self.titles, self.doi = {"刘隆": ("a.txt#0",)}, {}, None
        self.by_article = {"a.txt#0": np.arange(len(texts))}


def _ask(text):
    return query.Query(text, text, np.zeros(4, np.float32), (), False, (), 5)


LOW = evidence.Thresholds(found=0.99, found_latin=0.99, high_margin=0.03)    # no support reaches it


@pytest.mark.parametrize("question, row", [
    ("前置研究", 0),                    # a keyword search a body passage uses word for word
    ("前置研究 重大经营管理事项", 0),     # every part of it
    ("前置研究 首席合规官", None),        # one part missing
    ("什么是前置研究", None),             # a question, judged by support
    ("刘隆的文章列了哪些参考文献？", 1),   # a named article's asked block
    ("张三的文章列了哪些参考文献？", None),  # an author the corpus does not have
])
def test_a_passage_can_answer_by_what_it_is(question, row):
    idx = _Articles()
    ev = [evidence.Evidence(0, 0.5, ()), evidence.Evidence(1, 0.5, ())]
    assert evidence.held_by_structure(idx, _ask(question), ev) == row
    v = evidence.judge(idx, _ask(question), ev, LOW, AskConfig())
    assert v.found == (row is not None)
    if row is not None:
        assert v.labels[row] == "medium" and v.labels[1 - row] == "low"
    assert not evidence.judge(idx, _ask(question), ev, LOW, AskConfig(structural_found=False)).found


def test_a_keyword_only_listed_among_keywords_is_not_an_answer():
    idx = _Articles(texts=("关键词：前置研究；党建", "正文"), blocks=("keywords", "body"))
    ev = [evidence.Evidence(0, 0.5, ()), evidence.Evidence(1, 0.5, ())]
    assert evidence.held_by_structure(idx, _ask("前置研究"), ev) is None


class _Regulations:
    """A regulation and a notice, each closing with its commencement clause: what held_by_structure and judge read."""

    def __init__(self):
        texts = ("第一条　为了严明党的纪律，制定本条例。", "第一百五十八条　本条例自2024年1月1日起施行。",
                 "六、本办法自印发之日起施行。")
        self.stored = type("Stored", (), {"chunks": [_Chunk("", t) for t in texts]})()
        self.blocks = np.asarray(["body"] * 3)
        self.authors, self.doi = {}, None
        self.titles = {"a.md#0": "中国共产党纪律处分条例", "b.md#0": "党政机关办公用房管理办法"}
        self.by_article = {"a.md#0": np.array([0, 1]), "b.md#0": np.array([2])}
        self.names = self.title_names = document_names(
            [_Chunk(t, "") for t in self.titles.values()])


def _named(text):
    return query.Query(text, text, np.zeros(4, np.float32), (), False, query.named_documents(text), 5)


@pytest.mark.parametrize("question, rows, row", [
    ("2023年修订的《中国共产党纪律处分条例》自何时起施行？", (0, 1, 2), 1),
    ("《党政机关办公用房管理办法》什么时候开始施行？", (0, 1, 2), 2),
    ("《党政机关办公用房管理办法》的施行日期是哪天？", (2,), 2),
    ("《中国共产党纪律处分条例》自何時起施行？", (0, 1), 1),            # traditional 時: q.match is simplified
    ("《中国共产党纪律处分条例》自何时起施行？", (0, 2), None),        # only the other document's clause was found
    ("《中国共产党纪律处分条例》如何施行？", (0, 1, 2), None),          # not a question about when
    ("《中国共产党纪律处分条例》规定了哪些处分？", (0, 1), None),
    ("《中央企业合规管理办法》自何时起施行？", (0, 1, 2), None),         # a document the corpus does not hold
])
def test_a_when_in_force_question_is_answered_by_its_documents_commencement_clause(question, rows, row):
    from index.normalize import simplified

    idx = _Regulations()
    q = _named(simplified(question))
    ev = [evidence.Evidence(r, 0.5, ()) for r in rows]
    assert evidence.held_by_structure(idx, q, ev) == row
    v = evidence.judge(idx, q, ev, LOW, AskConfig())
    assert v.found == (row is not None)
    if row is not None:
        assert v.labels[rows.index(row)] == "medium"


@pytest.mark.parametrize("text, pairs", [
    ("2019年修订的《中国共产党问责条例》对问责情形作了哪些调整？", (("2019", "中国共产党问责条例"),)),
    ("《中国共产党纪律处分条例》（2023年修订）规定了什么？", (("2023", "中国共产党纪律处分条例"),)),
    ("《中国共产党纪律处分条例（2018年修订）》规定了什么？", (("2018", "中国共产党纪律处分条例"),)),
    ("2016年版《中国共产党问责条例》", (("2016", "中国共产党问责条例"),)),
    ("2023年的工作要点和《中国共产党问责条例》有什么关系？", ()),     # a year, but not of the document
    ("《中国共产党问责条例》自2016年7月8日起施行吗？", ()),
])
def test_edition_years(text, pairs):
    assert evidence.edition_years(text) == pairs


class _Editions(_Regulations):
    """_Regulations and the 2016 《中国共产党问责条例》 (its text names no other year)."""

    def __init__(self, source="wenze.md"):
        super().__init__()
        self.stored.chunks.append(_Chunk("", "第二十六条　本条例自2016年7月8日起施行。"))
        self.blocks = np.asarray(["body"] * 4)
        self.titles[f"{source}#0"] = "中国共产党问责条例"
        self.by_article[f"{source}#0"] = np.array([3])
        self.names = self.title_names = document_names([_Chunk(t, "") for t in self.titles.values()])


@pytest.mark.parametrize("question, source, found", [
    ("2019年修订的《中国共产党问责条例》对问责情形作了哪些调整？", "wenze.md", False),   # the 2016 one is held
    ("2019年修订的《中国共产党问责条例》对问责情形作了哪些调整？", "wenze_2019.md", True),  # its file name says 2019
    ("2016年印发的《中国共产党问责条例》规定了哪些问责情形？", "wenze.md", True),
    ("2015年印发的《中国共产党问责条例》规定了哪些问责情形？", "wenze.md", True),       # 2016: in force the next year
    ("《中国共产党问责条例》规定了哪些问责情形？", "wenze.md", True),                  # no edition asked
    ("2023年修订的《中国共产党纪律处分条例》规定了什么？", "wenze.md", True),          # in force 2024: the next year
    ("2010年修订的《中国共产党纪律处分条例》规定了什么？", "wenze.md", False),
])
def test_an_edition_the_corpus_does_not_hold_is_not_found(question, source, found):
    idx = _Editions(source)
    q = _named(question)
    v = evidence.judge(idx, q, [evidence.Evidence(r, 0.999, ()) for r in range(4)], LOW, AskConfig())
    assert v.found == found
    assert (evidence.missing_edition(idx, q) == "") == found
    if not found:
        assert "不是" in v.reason and "年的版本" in v.reason and all(lab == "low" for lab in v.labels)


@pytest.mark.parametrize("text, parts", [
    ("前置研究", ("前置研究",)),
    ("红色引擎 党建", ("红色引擎", "党建")),
    ("几何级数增长", ("几何级数增长",)),          # 几何 is a word, not 几 asking "how many"
    ("哪怕困难再大", ("哪怕困难再大",)),
    ("党委会开了几次", ()),                      # 几 asks
    ("哪些单位适用", ()),
    ("前置研究是什么", ()),
])
def test_keyword_parts_tell_a_keyword_search_from_a_question(text, parts):
    q = SimpleNamespace(match=text, latin=False)
    assert evidence.keyword_parts(q) == parts

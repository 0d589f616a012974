"""The evidence stage: support thresholds, labels and the named-document rule decide "not found"."""
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
    assert not off_topic.found and "only cited" in off_topic.reason
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

"""The question side: checks, the glossary, named documents, and the frozen Query (no model)."""
import dataclasses

import numpy as np
import pytest

from assistant import query
from assistant.errors import EmptyQueryError, InvalidOptionError, QueryTooLongError
from assistant.query import AskConfig


@pytest.mark.parametrize("raw, want", [
    ("  什么是\n“一岗双责”？ ", "什么是 “一岗双责”？"),
    ("How do SOEs\tavoid it?", "How do SOEs avoid it?"),
])
def test_check_question_folds_whitespace(raw, want):
    assert query.check_question(raw, 2000) == want


@pytest.mark.parametrize("raw, error, match", [
    ("", EmptyQueryError, "empty"),
    (None, EmptyQueryError, "must be text, got NoneType"),
    ("党" * 11, QueryTooLongError, "11 characters, limit 10"),
    ("党建\x07", InvalidOptionError, "control"),
])
def test_check_question_errors(raw, error, match):
    with pytest.raises(error, match=match):
        query.check_question(raw, 10)


@pytest.mark.parametrize("text, want", [
    ("How do SOEs avoid the two skins problem?", {"国有企业", "两张皮"}),
    ("What does one post, two responsibilities mean for Party building?", {"一岗双责", "党建"}),
    ("Can a probationary member pay party dues?", {"预备党员", "党费"}),
    ("What is the boiling point of water?", set()),
])
def test_glossary_terms(text, want):
    got = set(query.glossary_terms(text))
    assert want <= got
    if not want:
        assert got == set()


def test_glossary_longer_phrase_claims_its_words_first():
    # "wholly state-owned company" must not also fire the shorter "state-owned company"
    got = query.glossary_terms("a wholly state-owned company")
    assert got == ["国有独资公司"]


def test_glossary_file_is_well_formed():
    entries = query.glossary()
    assert len(entries) > 100
    assert all(chinese for _, chinese in entries)


@pytest.mark.parametrize("text, want", [
    ("《中央企业合规管理办法》要求设立首席合规官吗？", ("中央企业合规管理办法",)),
    ("《监察法》和《监察法》有何不同？", ("监察法",)),
    ("没有书名号的问题", ()),
    ("《 中国共产党 章程 》", ("中国共产党章程",)),
])
def test_named_documents(text, want):
    assert query.named_documents(text) == want


class _Tok:
    def __call__(self, text):
        return text.split()


class _Emb:
    def __init__(self):
        self.seen = []

    def encode_queries(self, texts):
        self.seen += list(texts)
        return np.ones((len(texts), 4), np.float32) / 2


def test_encode_matches_in_simplified_but_keeps_the_question_as_written():
    emb = _Emb()
    q = query.encode("什麼是 「一崗雙責」？", emb, _Tok(), AskConfig(), top_k=5)
    assert q.text == "什麼是 「一崗雙責」？"
    assert q.match == "什么是 「一岗双责」？"
    assert emb.seen == ["什么是 「一岗双责」？"]     # the model sees the simplified text
    assert q.terms == ("什么是", "「一岗双责」？") and not q.latin
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.text = "x"


def test_english_query_gets_glossary_terms_only_when_enabled():
    on = query.build("party dues of SOEs", np.zeros(4), _Tok(), AskConfig(), top_k=5)
    off = query.build("party dues of SOEs", np.zeros(4), _Tok(), AskConfig(glossary=False), top_k=5)
    assert on.latin and {"党费", "国有企业"} <= set(on.terms)
    assert off.terms == ("party", "dues", "of", "SOEs")


def test_the_model_reads_an_english_question_with_its_chinese_terms_and_a_chinese_one_simplified():
    cfg = AskConfig()
    assert query.model_text("How do SOEs avoid the two skins problem?", cfg).startswith(
        "How do SOEs avoid the two skins problem? ")
    assert {"国有企业", "两张皮"} <= set(query.model_text("How do SOEs avoid the two skins problem?", cfg).split())
    assert query.model_text("What is the boiling point of water?", cfg) == "What is the boiling point of water?"
    assert query.model_text("黨建工作", cfg) == "党建工作"
    off = AskConfig(glossary_vector=False)
    assert query.model_text("How do SOEs avoid the two skins problem?", off) == "How do SOEs avoid the two skins problem?"
    emb = _Emb()
    query.encode("party dues of SOEs", emb, _Tok(), cfg, top_k=5)
    assert emb.seen == [query.model_text("party dues of SOEs", cfg)]

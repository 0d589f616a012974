"""English questions: the glossary's lemma matcher, the concepts a question names, and support on the Chinese
side (fake embedder, no model)."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant, calibrate, evidence, query
from assistant.query import AskConfig


@pytest.mark.parametrize("a, b", [
    ("integrating", "integrate"), ("integrated", "integrate"), ("subsidies", "subsidy"), ("SOEs", "SOE"),
    ("labour", "labor"), ("organisation", "organization"), ("planned", "plan"), ("committees", "committee"),
    ("businesses", "business"), ("status", "status"),
])
def test_lemmas_meet(a, b):
    assert query.english_words(a) == query.english_words(b)


@pytest.mark.parametrize("text, want", [
    ("How are labour contracts terminated?", {"劳动合同", "解除"}),          # UK spelling, plural, -ed
    ("Labor-contract termination", {"劳动合同"}),                            # hyphen separates words
    ("What is the pre-study of major matters by the Party committee?", {"前置研究", "重大事项", "党委"}),
    ("Integrating Party-building into SOE operations", {"融合", "党建", "国有企业", "生产经营"}),
    ("the supervisory organs' powers", {"监察机关", "职权"}),                 # possessive
])
def test_glossary_matches_inflected_phrases(text, want):
    assert want <= set(query.glossary_terms(text))


def test_longest_phrase_claims_its_words_wherever_it_starts():
    concepts, unmapped = query.glossary_match("Do wholly state-owned companies have a board of directors?")
    assert [c.chinese for c in concepts] == [("国有独资公司",), ("董事会",)]
    assert unmapped == ()


def test_content_words_no_line_covers_are_unmapped():
    concepts, unmapped = query.glossary_match("What is the capital of Australia?")
    assert concepts == () and unmapped == ("capital", "australia")
    concepts, unmapped = query.glossary_match("How do the rules apply?")     # question words are no content
    assert [c.chinese for c in concepts] == [("规定", "条例"), ("应用", "申请")] and unmapped == ()


def test_glossary_has_no_phrase_on_two_lines_and_every_line_has_chinese():
    line_of, dup, n = {}, [], 0
    for line in query.GLOSSARY.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        english, chinese = line.split("\t")
        n += 1
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese), line
        for e in english.split("|"):
            words = tuple(query.english_words(e))
            if line_of.setdefault(words, n) != n:
                dup.append(e)
    assert not dup, f"phrases whose lemmas another line already claims (they never match here): {dup[:5]}"
    assert n > 400


def test_off_topic_english_probes_name_no_domain_concept():
    # The probes stand for questions no policy corpus answers; a glossary that maps their words would
    # make them look answerable.
    for probe in calibrate.PROBES_EN[:10]:
        concepts, unmapped = query.glossary_match(probe)
        assert len(concepts) <= len(unmapped), (probe, concepts)


def test_query_carries_concepts_with_their_tokens_only_for_english():
    tok = lambda s: [w for w in s.replace("，", " ").split() if w]  # noqa: E731
    q = query.build("party dues of SOEs", np.zeros(4), tok, AskConfig(), top_k=5)
    assert [c.chinese for c in q.concepts] == [("党费",), ("国有企业", "国企")]
    assert q.concepts[1].tokens == (frozenset({"国有企业"}), frozenset({"国企"}))
    zh = query.build("党费 国企", np.zeros(4), tok, AskConfig(), top_k=5)
    assert zh.concepts == () and zh.unmapped == ()
    off = query.build("party dues of SOEs", np.zeros(4), tok, AskConfig(glossary=False), top_k=5)
    assert off.concepts == ()


# ---------------------------------------------------------------- support on the Chinese side

DOCS = {
    "a.txt": "# 党费管理\n\n党员应当按月交纳党费。党费由党支部收缴。\n",
    "b.txt": "# 国有企业\n\n国有企业应当加强公司治理。董事会依法决策。\n",
    "c.txt": "# 劳动\n\n用人单位与劳动者订立劳动合同。\n",
    "d.txt": "# Dues\n\nEvery member pays the Party dues each month to the branch.\n",
    "e.txt": "# 监察法\n\n监察机关应当依法履行职责。\n",
}


@pytest.fixture
def small(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)


def _row(a, source):
    return next(i for i, c in enumerate(a.loaded.stored.chunks) if c.source == source)


def _q(a, text):
    return query.build(text, np.zeros(a.embedder.dim), a.loaded.tokenizer, a.config, top_k=5)


def test_term_df_counts_chunks_and_zero_for_absent_terms(small):
    ix = small.loaded
    assert ix.term_df("党费") == 1 and ix.term_df("国有企业") == 1
    assert ix.term_df("澳大利亚") == 0


def test_concept_coverage_is_the_idf_share_of_concepts_the_passage_holds(small):
    ix, cfg = small.loaded, small.config
    q = _q(small, "party dues of SOEs")
    a, b = _row(small, "a.txt"), _row(small, "b.txt")
    held = lambda r: set().union(*ix.sentence_terms(r))  # noqa: E731
    ca = evidence.concept_coverage(ix, a, q, held(a), cfg)
    cb = evidence.concept_coverage(ix, b, q, held(b), cfg)
    assert ca == pytest.approx(0.5) and cb == pytest.approx(0.5)     # one of two equally rare concepts each
    assert evidence.concept_coverage(ix, _row(small, "c.txt"), q, held(_row(small, "c.txt")), cfg) == 0.0
    # An unmapped content word is a concept no passage holds: it lowers every passage's share.
    q2 = _q(small, "party dues of SOEs in Australia")
    assert q2.unmapped == ("australia",)
    weighed = dataclasses.replace(cfg, unmapped_weight_latin=0.5)
    assert evidence.concept_coverage(ix, a, q2, held(a), weighed) < ca
    ignored = dataclasses.replace(cfg, unmapped_weight_latin=0.0)
    assert evidence.concept_coverage(ix, a, q2, held(a), ignored) == pytest.approx(ca)


def test_english_support_rises_with_the_concepts_a_passage_holds(small):
    ix, cfg = small.loaded, small.config
    q = _q(small, "What are the party dues of party members and of the party branch?")
    a, c = _row(small, "a.txt"), _row(small, "c.txt")
    sa, sc = evidence.assess(ix, a, q, cfg).support, evidence.assess(ix, c, q, cfg).support
    assert sa - sc == pytest.approx(cfg.coverage_weight_latin, abs=1e-6)   # zero vector: cosines are 0
    old = dataclasses.replace(cfg, concept_support_latin=False)
    assert evidence.assess(ix, a, q, old).support == pytest.approx(
        cfg.coverage_weight * len(q.term_set & set().union(*ix.sentence_terms(a))) / len(q.term_set))


def test_calibration_cache_key_follows_the_glossary(small, monkeypatch, tmp_path):
    key = calibrate.cache_key(small.loaded, small.embedder, small.config)
    other = tmp_path / "g.tsv"
    other.write_text(Path(query.GLOSSARY).read_text(encoding="utf-8") + "sourdough\t酸面包\n", encoding="utf-8")
    monkeypatch.setattr(query, "GLOSSARY", other)    # the glossary file is the module's one input
    query._glossary_table.cache_clear()
    query._phrases_by_first.cache_clear()
    try:
        assert calibrate.cache_key(small.loaded, small.embedder, small.config) != key
        assert query.glossary_terms("sourdough bread") == ["酸面包"]
    finally:
        monkeypatch.undo()
        query._glossary_table.cache_clear()
        query._phrases_by_first.cache_clear()


def test_an_english_passage_holds_a_concept_by_its_english_phrase(small):
    ix, cfg = small.loaded, small.config
    q = _q(small, "party dues of SOEs")
    d = _row(small, "d.txt")
    assert ix.latin[d]
    assert evidence.concept_coverage(ix, d, q, set().union(*ix.sentence_terms(d)), cfg) == pytest.approx(0.5)


def test_a_passage_holds_the_concepts_its_documents_title_names(small):
    ix, cfg = small.loaded, small.config
    q = _q(small, "What duties does the Supervision Law give?")
    e = _row(small, "e.txt")
    assert ix.stored.chunks[e].title == "监察法" and "监察法" not in ix.stored.chunks[e].text
    on = evidence.assess(ix, e, q, cfg).support
    off = evidence.assess(ix, e, q, dataclasses.replace(cfg, title_held_latin=False)).support
    assert on > off
    # Chinese questions keep the share of their terms the passage itself holds
    zh = _q(small, "监察法规定了哪些职责？")
    assert evidence.assess(ix, e, zh, cfg).support == evidence.assess(
        ix, e, zh, dataclasses.replace(cfg, title_held_latin=False)).support

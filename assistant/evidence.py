"""Which sentence(s) of a passage answer the question, and how sure we are: support, "not found", labels.

The evidence stage of `Assistant.ask`: `assess` gives each kept passage its support and highlight spans,
`judge` decides found / not found and the confidence labels from the thresholds (the index's own calibration
when it has one, else the global ones in `AskConfig`). Nothing else decides "not found".

Sentence vectors were computed at build time, so choosing evidence costs one small matrix product and a few
token-set intersections per passage, never a model call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Term overlap breaks ties between sentences the model finds equally close: with e5, cosines of sentences in
# one passage often differ by less than 0.01, and the sentence that uses the question's words is the one a
# reader expects to see marked.
OVERLAP_WEIGHT = 0.08
SECOND_MARGIN = 0.015    # a second sentence is marked when it scores within this of the best one
MAX_MARKED = 2


def sentence_scores(query_vec: np.ndarray, sentence_vecs: np.ndarray, query_terms: set[str],
                    sentence_terms: list[set[str]]) -> np.ndarray:
    """Cosine to the question plus a bonus for the share of the question's terms the sentence contains."""
    cos = sentence_vecs @ query_vec
    if not query_terms:
        return cos
    overlap = np.array([len(query_terms & t) / len(query_terms) for t in sentence_terms], dtype=np.float32)
    return cos + OVERLAP_WEIGHT * overlap


def pick(scores: np.ndarray, spans: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The best sentence and, when nearly as good, one more; returned in text order."""
    if len(scores) == 0:
        return ()
    order = np.argsort(-scores, kind="stable")
    best = scores[order[0]]
    chosen = [int(i) for i in order[:MAX_MARKED] if scores[i] >= best - SECOND_MARGIN]
    return tuple(sorted((int(spans[i][0]), int(spans[i][1])) for i in chosen))


def confidence(cosine: float, high: float, found: float) -> str:
    """A label a reader understands, from the passage's cosine to the question and the calibrated thresholds."""
    if cosine >= high:
        return "high"
    return "medium" if cosine >= found else "low"


@dataclass(frozen=True, slots=True)
class Evidence:
    row: int                               # chunk row in the index
    support: float                         # best sentence's cosine + coverage bonus
    spans: tuple[tuple[int, int], ...]     # highlight spans in the chunk's text


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Support a question's best passage must reach to be answered, per script, and where the numbers come from."""
    found: float
    found_latin: float
    high_margin: float
    origin: str = "global"                 # "global" (AskConfig) or "self-calibrated (n probes)"

    def found_for(self, latin: bool) -> float:
        return self.found_latin if latin else self.found


@dataclass(frozen=True, slots=True)
class Verdict:
    found: bool
    labels: tuple[str, ...]                # per passage: "high" / "medium" / "low"
    reason: str = ""                       # why not found: "" when found


def global_thresholds(cfg) -> Thresholds:
    return Thresholds(cfg.found_support, cfg.found_support_latin, cfg.high_margin)


def assess(index, row: int, q, cfg) -> Evidence:
    """Support and highlight spans of chunk `row` for query `q`: how well its best sentence answers, which to mark.

    Support = the best sentence's cosine to the question (minus the script penalty for an English question
    against English text) + cfg.coverage_weight x the share of the question's terms the chunk contains.
    """
    a, b = index.sentence_starts[row], index.sentence_starts[row + 1]
    if b == a:
        return Evidence(row, 0.0, ())
    spans = index.stored.sentences[a:b, 1:]
    vecs = index.stored.sentence_vectors[a:b]
    sent_terms = index.sentence_terms(row)
    terms = q.term_set
    scores = sentence_scores(q.vector, vecs, terms, sent_terms)
    cos = vecs @ q.vector
    if q.latin and index.latin[row]:
        cos = cos - cfg.latin_penalty
    held = set().union(*sent_terms)
    if q.latin and cfg.concept_support_latin and (q.concepts or q.unmapped):
        coverage = concept_coverage(index, row, q, held, cfg)
        return Evidence(row, float(cos.max()) + cfg.coverage_weight_latin * coverage, pick(scores, spans))
    coverage = len(terms & held) / len(terms) if terms else 0.0
    return Evidence(row, float(cos.max()) + cfg.coverage_weight * coverage, pick(scores, spans))


def concept_coverage(index, row: int, q, held: set[str], cfg) -> float:
    """For an English question: the IDF-weighted share of its glossary concepts that chunk `row` holds.

    An English question shares no words with a Chinese passage, so its term share says nothing; the
    Chinese terms its phrases map to do. Each concept weighs by the IDF of its commonest rendering in this
    corpus (a concept every passage holds says little); a concept whose renderings the corpus never uses,
    and a content word no glossary line covers (weighted cfg.unmapped_weight_latin), can never be held:
    a question about things this corpus does not speak of gets little support wherever it lands.
    """
    from assistant.query import english_words

    n = len(index.stored.chunks)
    # An English passage (an abstract) holds a concept when it uses the English phrase itself.
    english = f" {' '.join(english_words(index.stored.chunks[row].text))} " if index.latin[row] else ""
    total = got = 0.0
    for concept in q.concepts:
        dfs = [index.term_df(z) for z in concept.chinese]
        w = 1.0 if any(d is None for d in dfs) else _idf(max(dfs), n)
        total += w
        if any(tokens <= held for tokens in concept.tokens) or f" {concept.english} " in english:
            got += w
    if q.unmapped and cfg.unmapped_weight_latin > 0:
        w = cfg.unmapped_weight_latin * _idf(0, n)
        for word in q.unmapped:
            total += w
            got += w if f" {word} " in english else 0.0
    return got / total if total > 0 else 0.0


def _idf(df: int, n: int) -> float:
    """BM25's IDF: log(1 + (n - df + 0.5) / (df + 0.5))."""
    return float(np.log1p((n - df + 0.5) / (df + 0.5)))


def missing_document(q, names: tuple[str, ...], titles: tuple[str, ...], passages: list[str]) -> str:
    """Why a document the question names in 《》 cannot answer it here, or "" when each one can.

    `names`: the corpus' titles and the names its text cites (retrieve.document_names); `titles`: its titles
    alone (retrieve.document_titles); `passages`: the texts of the passages found. A name the corpus neither
    holds nor cites is not in it. A name it only cites (「依据《劳动法》……」 in another regulation) is not in
    it either, unless a passage found speaks of it: the dev corpus cites 《劳动法》 without holding it, and a
    question about its working hours was answered from another regulation.
    """
    from assistant.retrieve import holds_document, speaks_of

    for name in q.named:
        if not holds_document(names, name):
            return f"《{name}》 is not in the corpus"
        if not holds_document(titles, name) and not any(speaks_of(text, name) for text in passages):
            return f"《{name}》 is only cited in the corpus, and no passage found speaks of it"
    return ""


def judge(index, q, found_evidence: list[Evidence], thresholds: Thresholds, cfg) -> Verdict:
    """Found or not, and a label per passage.

    Not found when a document the question names in 《》 is not in the corpus (the answer cannot be there, and a
    passage of another 条例 would be a wrong answer), or when no passage's support reaches the threshold.
    Every label is "low" when not found.
    """
    n = len(found_evidence)
    if cfg.named_document_check and q.named:
        reason = missing_document(q, index.names, index.title_names,
                                  [index.stored.chunks[e.row].text for e in found_evidence])
        if reason:
            return Verdict(False, ("low",) * n, reason)
    t = thresholds.found_for(q.latin)
    if not any(e.support >= t for e in found_evidence):
        return Verdict(False, ("low",) * n, "no passage reaches the support threshold")
    return Verdict(True, tuple(confidence(e.support, t + thresholds.high_margin, t) for e in found_evidence))

"""Which sentence(s) of a passage answer the question, and how sure we are.

Sentence vectors were computed at build time, so choosing evidence costs one small matrix product and a few
token-set intersections per passage, never a model call.
"""
from __future__ import annotations

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

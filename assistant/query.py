"""The question side of the pipeline: the knobs (`AskConfig`), the checks, and the one frozen `Query` record.

`Assistant.ask` runs   validate -> encode -> rank -> collapse -> evidence -> records;
this module owns the first two. A `Query` carries the question as written (shown back to the user) and the
form every matching step uses: simplified characters (a question in traditional characters meets simplified
documents), the jieba terms, and for an English question the Chinese domain terms its words name.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.errors import EmptyQueryError, InvalidOptionError, QueryTooLongError

MODES = ("hybrid", "dense", "bm25")
BLOCKS = ("body", "abstract", "keywords", "front", "references", "caption", "bio")
GLOSSARY = Path(__file__).parent / "data" / "glossary_en_zh.tsv"


@dataclass(frozen=True, slots=True)
class AskConfig:
    """Every query-time knob, with why. Fit with leave-one-corpus-out on seeds/ and the dev corpus
    (`python -m eval.tune`, eval/results/tune.md); UI and CLI read their defaults from here."""
    top_k: int = 5
    max_top_k: int = 50
    max_question_chars: int = 2000
    candidates: int = 60           # per retriever, before fusion
    # Weighted RRF over the passage-vector, best-sentence and BM25 rankings. Chosen leave-one-corpus-out over
    # seeds/ and the dev folders (python -m eval.tune; eval/results/tune.md): equal weights and a small k
    # (trusting the first ranks) were best on the other corpora for 6 of 8 left-out corpora; the earlier
    # BM25 x2 / sentence x0.5 wins only when seeds/ is all there is to train on.
    rrf_k: int = 10
    dense_weight: float = 1.0
    # A question's best-matching sentence ranks passages too; across languages it is the strongest signal.
    # Chinese questions: 1.5, chosen leave-one-corpus-out over sentence weights 1/1.5/2/3 x rrf_k 10/30 on 7 of 8
    # left-out corpora (the dev corpus left out, i.e. seeds/ alone to train on, keeps 1.0): MRR@10 of Chinese
    # questions on the left-out corpus, 1.0 -> 1.5: regulations 0.90 -> 0.93 (paraphrased 0.82 -> 0.88),
    # notices 0.92 -> 0.94, seeds/ 0.871 -> 0.870 (paraphrased 0.735 -> 0.762).
    sentence_weight: float = 1.5
    sentence_weight_latin: float = 2.0
    bm25_weight: float = 1.0
    # English questions: BM25 over the Chinese terms the glossary gives for the question's words. Their
    # BM25 list gets this weight (the English words themselves only match English text). MRR@10 of English
    # questions with 2 against 1: seeds/ 0.58 vs 0.52, dev 0.58 vs 0.60 (eval/results/tune.md).
    bm25_weight_latin: float = 2.0
    glossary: bool = True
    # ... and the model encodes the English question followed by those Chinese terms (one encoding still):
    # MRR@10 of English questions 0.47 -> 0.58 on seeds/ and on the dev corpus (eval/results/tune.md).
    glossary_vector: bool = True
    duplicate_jaccard: float = 0.8
    demoted_blocks: tuple[str, ...] = ("references", "caption", "bio")
    # A Chinese question that asks for a block by name (参考文献, 关键词, 摘要, DOI, 简介) or names an article (its
    # author, 《title》, a word only its title and text use) adds a ranked list of those chunks to the fusion
    # (assistant/retrieve.py `pointed`): seeds/ direct questions hit@5 0.887 -> see eval/results/tune.md.
    asked_blocks: bool = True
    asked_weight: float = 2.0
    article_focus: bool = True
    focus_weight: float = 1.0
    # e5 rates an English question closer to any English text (here: the one English abstract) than to the
    # Chinese passage that answers it; this much cosine is taken off same-script matches for Latin questions.
    latin_penalty: float = 0.06
    # "Not found" and the confidence labels (assistant/evidence.py). Support of a passage = its best
    # sentence's cosine to the question + coverage_weight x the share of the question's terms it contains.
    # found_support / found_support_latin are the global thresholds (fit on seeds/ and the dev corpus together);
    # an index that calibrated itself (assistant/calibrate.py) replaces them with its own probe-based ones,
    # which transfer better leave-one-corpus-out (dev corpus left out: 87% of unanswerable questions flagged
    # against 47%; eval/results/tune.md).
    coverage_weight: float = 0.06
    found_support: float = 0.925
    found_support_latin: float = 0.795
    high_margin: float = 0.03
    # Self-calibration: the threshold is the `probe_quantile` of this corpus' supports for the off-topic and
    # near-topic probe questions, plus `probe_margin` (fit leave-one-corpus-out).
    self_calibrate: bool = True
    probe_quantile: float = 0.9
    probe_margin: float = 0.03
    probe_margin_latin: float = -0.06
    # A question that names a document in 《》 which no title or text of the corpus names is not found.
    named_document_check: bool = True


@dataclass(frozen=True, slots=True)
class Query:
    """One question, checked and encoded once; every later stage reads it and none changes it."""
    text: str                          # as written (whitespace folded): shown back to the user
    match: str                         # simplified characters, for every comparison with the corpus
    vector: np.ndarray                 # float32 (dim,), unit length: the model's view of `match`
    terms: tuple[str, ...]             # jieba terms of `match` (and the glossary's Chinese terms)
    latin: bool                        # mostly Latin script: an English question
    named: tuple[str, ...]             # document names the question puts in 《》 (simplified)
    top_k: int
    mode: str = "hybrid"
    allowed: np.ndarray | None = None  # chunk rows the filters allow (None: all)
    include: tuple[str, ...] = ()      # demoted block kinds to rank like body text

    @property
    def term_set(self) -> frozenset[str]:
        return frozenset(self.terms)


# ---------------------------------------------------------------- stage 1: validate

def check_question(question, limit: int) -> str:
    """The question with whitespace folded; a clear error for non-text, over-long, control chars or empty."""
    if not isinstance(question, str):
        raise EmptyQueryError(f"the question must be text, got {type(question).__name__}")
    if len(question) > limit:
        raise QueryTooLongError(f"问题过长：{len(question)} 个字符，上限 {limit}。"
                                f" (question too long: {len(question)} characters, limit {limit})")
    bad = [ch for ch in question if _is_bad_char(ch)]
    if bad:
        raise InvalidOptionError(f"问题含有控制字符或无效字符 {bad[0]!r}，请删除后重试。"
                                 f" (the question contains a control or invalid character {bad[0]!r})")
    question = " ".join(question.split())
    if not question:
        raise EmptyQueryError("问题为空，请输入一个问题。 (the question is empty)")
    return question


def check_top_k(top_k, hi: int) -> int:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= hi:
        raise InvalidOptionError(f"top_k must be an integer between 1 and {hi}, got {top_k!r}")
    return top_k


def check_mode(mode) -> str:
    mode = mode or "hybrid"
    if mode not in MODES:
        raise InvalidOptionError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def check_include(include) -> tuple[str, ...]:
    if isinstance(include, str):
        include = (include,)
    include = tuple(include or ())
    unknown = [b for b in include if b not in BLOCKS]
    if unknown:
        raise InvalidOptionError(f"include= takes block kinds {', '.join(BLOCKS)}; unknown: {unknown[0]!r}")
    return include


def _is_bad_char(ch: str) -> bool:
    """Control characters (other than tab and newlines) and lone surrogates, which no corpus text contains."""
    if ch in "\t\n\r":
        return False
    cat = unicodedata.category(ch)
    return cat == "Cc" or cat == "Cs"


# ---------------------------------------------------------------- stage 2: encode

def encode(text: str, embedder, tokenizer, cfg: AskConfig, *, top_k: int, mode: str = "hybrid",
           allowed: np.ndarray | None = None, include: tuple[str, ...] = ()) -> Query:
    """The checked question -> a `Query`: one model call (on `model_text`), one jieba cut."""
    vector = embedder.encode_queries([model_text(text, cfg)])[0]
    return build(text, vector, tokenizer, cfg, top_k=top_k, mode=mode, allowed=allowed, include=include)


def model_text(text: str, cfg: AskConfig) -> str:
    """What the model encodes for a question: its simplified form; for an English question with
    cfg.glossary_vector, followed by the glossary's Chinese terms (the model then meets the Chinese passage
    half-way; still one encoding)."""
    from index.normalize import simplified

    match = simplified(text)
    if cfg.glossary and cfg.glossary_vector and is_latin(match):
        zh = glossary_terms(match)
        if zh:
            return f"{match} {' '.join(zh)}"
    return match


def build(text: str, vector, tokenizer, cfg: AskConfig, *, top_k: int, mode: str = "hybrid",
          allowed: np.ndarray | None = None, include: tuple[str, ...] = ()) -> Query:
    """A `Query` from the checked question and its vector (already encoded: probes are encoded in one batch)."""
    from index.normalize import simplified

    match = simplified(text)
    latin = is_latin(match)
    terms = list(tokenizer(match))
    if latin and cfg.glossary:
        # Cut the Chinese terms like any Chinese text, so they meet the index's own tokens.
        terms += [t for t in dict.fromkeys(tokenizer(" ".join(glossary_terms(match)))) if t not in terms]
    return Query(text, match, np.asarray(vector, dtype=np.float32), tuple(terms), latin, named_documents(match),
                 top_k, mode, allowed, include)


def is_latin(text: str) -> bool:
    """Mostly Latin letters (an English question, an English abstract) rather than CJK."""
    latin = sum(ch.isascii() and ch.isalpha() for ch in text)
    cjk = sum("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)
    return latin > 2 * cjk


_NAMED = re.compile(r"《([^《》]{2,60})》")


def named_documents(text: str) -> tuple[str, ...]:
    """The document names a question puts in 《》: 「《中央企业合规管理办法》要求…」 -> ("中央企业合规管理办法",)."""
    return tuple(dict.fromkeys("".join(m.group(1).split()) for m in _NAMED.finditer(text)))


@functools.lru_cache(maxsize=1)
def glossary() -> tuple[tuple[re.Pattern, tuple[str, ...]], ...]:
    """(English phrase pattern, Chinese terms) pairs from assistant/data/glossary_en_zh.tsv, longest first.

    Written from general domain knowledge (not from any question set): the BM25 side of an English question
    needs the Chinese words a Chinese document would use; the model's cross-lingual match is weak for them.
    """
    rows = []
    for n, line in enumerate(GLOSSARY.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"{GLOSSARY}:{n}: want 'english<TAB>中文|中文', got {line!r}")
        english = [e.strip().lower() for e in parts[0].split("|") if e.strip()]
        chinese = tuple(c.strip() for c in parts[1].split("|") if c.strip())
        for e in english:
            # Word boundaries; an optional plural/possessive tail so "SOEs" and "SOE's" meet "SOE".
            words = r"[\s\-]+".join(re.escape(w) for w in e.split())
            rows.append((len(e), re.compile(rf"(?<![a-z]){words}(?:s|es|'s|’s)?(?![a-z])"), chinese))
    rows.sort(key=lambda r: -r[0])
    return tuple((p, c) for _, p, c in rows)


def glossary_terms(text: str) -> list[str]:
    """Chinese terms for the English phrases of `text`; a longer phrase claims its words before a shorter one."""
    low = text.lower()
    out: list[str] = []
    for pattern, chinese in glossary():
        hit = pattern.search(low)
        if hit is None:
            continue
        low = low[:hit.start()] + " " * (hit.end() - hit.start()) + low[hit.end():]
        out += [c for c in chinese if c not in out]
    return out

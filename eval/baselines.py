"""The baselines to beat: what a user assembles from the usual tutorials (Langchain-Chatchat, QAnything).

Recipe: each file's raw text, split into 500-character windows with 50 characters of overlap by
LangChain's RecursiveCharacterTextSplitter (separators "\\n\\n", "\\n", "。", ""), then either
(a) BM25 (bm25s) over `jieba.lcut` tokens - default dictionary, no stopwords, lower-cased - or
(b) dense retrieval with the same embedding model our assistant uses, over the same windows.

No cleaning, no structure, no fusion: that is the point. The splitter is re-implemented here (a
faithful copy of langchain_text_splitters' algorithm with its defaults keep_separator="start" and
strip_whitespace=True) so that the evaluation does not pull in LangChain.

Files other than .txt/.md get the text the tutorials' loaders give: a PDF's page texts (PyPDFium2Loader: the
same pypdfium2 text layer, pages joined by a newline), a DOCX's paragraph texts and table cells
(Docx2txtLoader), an HTML page's visible text, navigation and footers included (BSHTMLLoader's
`get_text`, which skips <script> and <style>). A file a loader cannot read is skipped, as LangChain's
DirectoryLoader(silent_errors=True) does.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

CHUNK_SIZE = 500
CHUNK_OVERLAP = 50
SEPARATORS = ("\n\n", "\n", "。", "")
CORPUS_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the splitter
def _split_keeping_separator(text: str, separator: str) -> list[str]:
    """Split on `separator`, gluing each separator to the start of the piece after it."""
    if not separator:
        return list(text)
    pieces = re.split(f"({re.escape(separator)})", text)
    glued = [pieces[0]] + [pieces[i] + pieces[i + 1] for i in range(1, len(pieces) - 1, 2)]
    return [p for p in glued if p]


def _merge(splits: list[str], chunk_size: int, chunk_overlap: int) -> list[str]:
    """Greedily pack splits into chunks of at most chunk_size, carrying up to chunk_overlap characters
    of trailing splits into the next chunk (LangChain's `_merge_splits` with an empty separator)."""
    chunks: list[str] = []
    current: list[str] = []
    total = 0
    for piece in splits:
        n = len(piece)
        if total + n > chunk_size and current:
            joined = "".join(current).strip()
            if joined:
                chunks.append(joined)
            while total > chunk_overlap or (total + n > chunk_size and total > 0):
                total -= len(current[0])
                current = current[1:]
        current.append(piece)
        total += n
    joined = "".join(current).strip()
    if joined:
        chunks.append(joined)
    return chunks


def split_text(text: str, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP,
               separators: Sequence[str] = SEPARATORS) -> list[str]:
    """RecursiveCharacterTextSplitter(chunk_size, chunk_overlap, separators).split_text(text)."""
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"need 0 <= chunk_overlap < chunk_size, got overlap={chunk_overlap}, size={chunk_size}")
    # The first separator present in the text wins; the rest are tried on pieces that are still too long.
    separator, rest = separators[-1], ()
    for i, sep in enumerate(separators):
        if sep == "":
            separator, rest = "", ()
            break
        if sep in text:
            separator, rest = sep, tuple(separators[i + 1:])
            break
    out: list[str] = []
    good: list[str] = []
    for piece in _split_keeping_separator(text, separator):
        if len(piece) < chunk_size:
            good.append(piece)
            continue
        if good:
            out.extend(_merge(good, chunk_size, chunk_overlap))
            good = []
        out.extend(split_text(piece, chunk_size, chunk_overlap, rest) if rest else [piece])
    if good:
        out.extend(_merge(good, chunk_size, chunk_overlap))
    return out


@dataclass(frozen=True, slots=True)
class Window:
    source: str   # file name, relative to the corpus folder
    text: str     # raw text, exactly as the splitter cut it


def _pdf_text(data: bytes) -> str:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in pdf)
    finally:
        pdf.close()


def _docx_text(data: bytes) -> str:
    import io

    import docx

    doc = docx.Document(io.BytesIO(data))
    cells = [cell.text for table in doc.tables for row in table.rows for cell in row.cells]
    return "\n".join([p.text for p in doc.paragraphs] + cells)


def _html_text(data: bytes) -> str:
    from html.parser import HTMLParser

    class Visible(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.hidden = 0

        def handle_starttag(self, tag, attrs):
            self.hidden += tag in ("script", "style")

        def handle_endtag(self, tag):
            if tag in ("script", "style") and self.hidden:
                self.hidden -= 1

        def handle_data(self, data):
            if not self.hidden:
                self.parts.append(data)

    parser = Visible()
    parser.feed(data.decode("utf-8", errors="replace"))
    return "\n".join(parser.parts)


def raw_text(path: Path) -> str:
    """A file's text as a tutorial loader returns it (see the module docstring); raises ValueError when the
    file cannot be read."""
    suffix = path.suffix.lower()
    data = path.read_bytes()
    try:
        if suffix == ".pdf":
            return _pdf_text(data)
        if suffix == ".docx":
            return _docx_text(data)
        if suffix in (".html", ".htm"):
            return _html_text(data)
        return data.decode("utf-8")
    except Exception as e:    # any loader failure means "skip this file", whatever the library raises
        raise ValueError(f"{path.name}: {type(e).__name__}: {e}") from None


def corpus_windows(corpus: str | Path) -> list[Window]:
    """Every readable file under `corpus` with a CORPUS_SUFFIXES ending (sorted), split into windows."""
    root = Path(corpus)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES)
    if not files:
        raise ValueError(f"no {'/'.join(CORPUS_SUFFIXES)} files under {root} (looked at "
                         f"{sum(1 for _ in root.rglob('*'))} paths); pass the corpus folder, e.g. seeds/")
    windows = []
    for p in files:
        try:
            text = raw_text(p)
        except ValueError as e:
            log.info("baseline skips %s", e)
            continue
        windows += [Window(p.relative_to(root).as_posix(), w) for w in split_text(text)]
    return windows


# ---------------------------------------------------------------- the two retrievers
def _check(question: str, k: int) -> None:
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    # Stable sort: equal scores keep corpus order, so runs are reproducible.
    return np.argsort(-scores, kind="stable")[:k]


def jieba_tokens(text: str) -> list[str]:
    """jieba.lcut on the lower-cased text, default dictionary, no stopwords.

    Whitespace-only tokens are dropped: the hard-wrapped files would otherwise count a newline token
    every ten characters in the BM25 length normalisation, which is layout, not a user's choice.
    The baseline deliberately does not use index/tokenize.py: it is what a user would write.
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)   # jieba prints its dictionary loading at INFO
    return [t for t in jieba.lcut(text.lower()) if t.strip()]


class Embedder(Protocol):
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...
    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...


class BM25Baseline:
    """bm25s (Lucene BM25, k1=1.5, b=0.75) over jieba tokens of the raw windows."""

    name = "baseline-bm25"

    def __init__(self, windows: Sequence[str]):
        import bm25s

        if not windows:
            raise ValueError("BM25Baseline needs at least one window, got 0")
        self.windows = list(windows)
        self._bm25 = bm25s.BM25()
        self._bm25.index([jieba_tokens(w) for w in self.windows], show_progress=False)

    def scores(self, question: str) -> np.ndarray:
        tokens = jieba_tokens(question)
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:   # bm25s cannot score an empty query; nothing matches, so every window scores 0
            return np.zeros(len(self.windows), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def search(self, question: str, k: int) -> list[str]:
        """The k best windows, best first."""
        return [self.windows[i] for i, _ in self.top(question, k)]

    def top(self, question: str, k: int) -> list[tuple[int, float]]:
        """(window index, score) of the k best windows, best first."""
        _check(question, k)
        scores = self.scores(question)
        return [(int(i), float(scores[i])) for i in _top(scores, k)]


class DenseBaseline:
    """Cosine similarity between the query and window embeddings (the embedder normalises both and
    adds its own query/passage prefixes)."""

    name = "baseline-dense"

    def __init__(self, windows: Sequence[str], embedder: Embedder, cache_dir: Path | None = None):
        """cache_dir: where window vectors are kept between runs (.npy, no pickle), keyed by the embedder's
        fingerprint and the windows' text; None embeds every time."""
        if not windows:
            raise ValueError("DenseBaseline needs at least one window, got 0")
        self.windows = list(windows)
        self._embedder = embedder
        vectors = self._cached(cache_dir)
        if vectors.ndim != 2 or vectors.shape[0] != len(self.windows):
            raise ValueError(f"encode_documents returned shape {vectors.shape} for {len(self.windows)} "
                             "windows; it must return one row per text")
        self._vectors = vectors

    def _cached(self, cache_dir: Path | None) -> np.ndarray:
        import hashlib

        fingerprint = getattr(self._embedder, "fingerprint", None)
        if cache_dir is None or not fingerprint:    # an embedder without a fingerprint cannot be keyed safely
            return np.asarray(self._embedder.encode_documents(self.windows), dtype=np.float32)
        key = hashlib.sha256("\x00".join([str(fingerprint), *self.windows]).encode("utf-8")).hexdigest()[:24]
        path = Path(cache_dir) / f"windows-{key}.npy"
        if path.is_file():
            try:
                vectors = np.load(path, allow_pickle=False)
                if vectors.ndim == 2 and vectors.shape[0] == len(self.windows):
                    return vectors.astype(np.float32, copy=False)
            except (OSError, ValueError) as e:    # a damaged cache file is recomputed, not fatal
                log.info("ignoring the cached baseline vectors %s: %s", path, e)
        vectors = np.asarray(self._embedder.encode_documents(self.windows), dtype=np.float32)
        if vectors.ndim == 2 and vectors.shape[0] == len(self.windows):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
                np.save(tmp, vectors, allow_pickle=False)
                os.replace(tmp, path)
            except OSError as e:       # a read-only cache only costs the embedding next time
                log.info("cannot cache the baseline vectors in %s: %s", cache_dir, e)
        return vectors

    def scores(self, question: str) -> np.ndarray:
        """Cosine of the question to every window."""
        query = np.asarray(self._embedder.encode_queries([question]), dtype=np.float32).reshape(-1)
        if query.shape[0] != self._vectors.shape[1]:
            raise ValueError(f"query vector has dimension {query.shape[0]}, windows have "
                             f"{self._vectors.shape[1]}: use the same embedder for both")
        return self._vectors @ query

    def search(self, question: str, k: int) -> list[str]:
        """The k best windows, best first."""
        return [self.windows[i] for i, _ in self.top(question, k)]

    def top(self, question: str, k: int) -> list[tuple[int, float]]:
        """(window index, cosine) of the k best windows, best first."""
        _check(question, k)
        scores = self.scores(question)
        return [(int(i), float(scores[i])) for i in _top(scores, k)]

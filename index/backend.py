"""The storage interface: what a build writes and a reader opens, whichever engine holds the index.

Two implementations: `index.store.LocalStore` (the default: generations in a folder, FAISS + bm25s, every
property of the local index) and `index.milvus_store.MilvusStore` (collections in a Milvus server, from the
embedded test server up to Milvus Distributed). `index.build` only computes a `GenerationData` and hands it to
`backend.begin().write`; it never writes a file or a collection itself, so both engines see the same chunks, vectors and
BM25 tokens, and an answer differs between them only by what their search engines do.

A backend is picked by `open_backend(spec, index_dir, corpus)`: None -> the local folder, ``milvus://HOST:PORT[/db]``
-> Milvus (the local folder then only caches read documents).
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from index.chunk import Chunk
from index.errors import AssistantError


class BackendError(AssistantError):
    """A backend specification that cannot be used (bad URL, missing client package)."""


@dataclass(frozen=True)
class GenerationData:
    """Everything one generation holds, computed by the build; a backend only stores and indexes it."""
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray            # float32 (n, d) chunk (passage) embeddings, unit length
    sentences: np.ndarray          # int32 (m, 3): chunk row, start, end of each sentence in the chunk text
    sentence_vectors: np.ndarray   # float32 (m, d)
    keys: dict                     # {"chunks": [...], "sentences": [...]}: embedding-cache keys per row
    terms: tuple[str, ...]         # the jieba user dictionary the tokens were cut with
    tokens: tuple[tuple[str, ...], ...]   # BM25 tokens of each chunk (index.tokenize.Tokenizer over bm25_text)


# finish(index_settings) -> the manifest to commit: the build supplies it so the manifest's build time and
# counts are its own, the backend adds what it built ("index": dense index type, nprobe, recall ...).
Finish = Callable[[dict], dict]


@runtime_checkable
class IndexBackend(Protocol):
    """One index (one corpus) in one engine: read the live generation, write the next one beside it."""

    location: str                  # for messages: a folder, or milvus://host:port/db#prefix

    def read_manifest(self) -> dict | None:
        """The live generation's manifest (checked), or None when no generation was ever committed."""

    def load_vectors(self) -> tuple[dict, np.ndarray, np.ndarray]:
        """(keys, chunk vectors, sentence vectors) of the live generation: the next build's embedding cache."""

    def lock(self, wait_seconds: float) -> AbstractContextManager:
        """Held by the one build that may write at a time."""

    def prune(self) -> None:
        """Drop dead half-written generations and all but the live one and its predecessor."""

    def begin(self) -> "GenerationWriter":
        """A new generation beside the live one, created now: a build killed from here on leaves a dead
        generation that readers never see and the next build's `prune` removes."""

    def load(self):
        """The live generation, ready to search: an `index.store.StoredIndex`."""


class GenerationWriter(Protocol):
    def write(self, data: GenerationData, dense_config, finish: Finish) -> dict:
        """Store and index `data`, then switch readers to this generation atomically; the committed manifest."""

    def discard(self) -> None:
        """Remove what was written (the build failed); the live generation is untouched."""


def parse_milvus_url(spec: str) -> tuple[str, int, str]:
    """``milvus://HOST:PORT[/db]`` -> (host, port, db); a clear error for anything else."""
    from urllib.parse import urlsplit

    hint = "expected milvus://HOST:PORT[/db], e.g. milvus://127.0.0.1:19530/default"
    parts = urlsplit(spec)
    if parts.scheme != "milvus" or not parts.hostname:
        raise BackendError(f"unknown index backend {spec!r}; {hint} (or leave it out for the local index)")
    try:
        port = parts.port or 19530
    except ValueError:
        raise BackendError(f"bad port in {spec!r}; {hint}") from None
    db = parts.path.strip("/") or "default"
    if "/" in db or not db.replace("_", "").isalnum():
        raise BackendError(f"bad database name {db!r} in {spec!r}; {hint}")
    return parts.hostname, port, db


def open_backend(spec: str | None, index_dir: Path, corpus: Path) -> IndexBackend:
    """The backend a command or `Assistant.open(backend=...)` names; None or "local" -> the local folder."""
    from index import store

    if spec is None or spec == "local":
        return store.LocalStore(Path(index_dir))
    host, port, db = parse_milvus_url(spec)
    try:
        from index.milvus_store import MilvusStore
    except ImportError as e:
        raise BackendError(f"the Milvus backend needs the 'scale' extra (pip install -e '.[scale]'): {e}") from None
    return MilvusStore(host, port, db, corpus=Path(corpus), lock_dir=Path(index_dir))

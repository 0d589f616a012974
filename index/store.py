"""The index folder on disk: generations, the manifest, saving and checked loading.

Layout of an index folder:
    CURRENT                 the name of the live generation (replaced atomically)
    gen-<time>-<rand>/      one complete index; a build writes a new one beside it
        chunks.jsonl        the chunk table (UTF-8 JSON lines)
        vectors.npy         float32 (n, d) chunk embeddings, L2-normalized
        dense.faiss         FAISS inner-product index over the same vectors (exact, or IVF: index/dense.py)
        bm25/               bm25s' own save (npy arrays + JSON vocabulary)
        terms.txt           the jieba user dictionary the BM25 tokens were cut with
        sentences.npy       int32 (m, 3): chunk row, start, end of each sentence in the chunk text
        sentence_vectors.npy float32 (m, d): sentence embeddings, so highlighting costs no model call
        keys.json           embedding-cache keys of the chunk and sentence rows
        manifest.json       written last; its checksum covers itself and the size and hash of every file
    build.lock              held by the one build that may run at a time

Readers open whatever CURRENT names and keep it in memory, so a build never blocks or disturbs them; a
build that dies leaves a `.tmp-*` folder that the next build removes, and CURRENT untouched.
Nothing here is pickled: JSON, `np.save(allow_pickle=False)`, `faiss.write_index`, bm25s' save.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.chunk import Chunk
from index.errors import CorruptIndexError, IndexBusyError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
# Hash every file on load below this total size; above it, sizes are checked (hashing 1 GB costs seconds).
_HASH_LIMIT = 256 * 2**20


def _rebuild_hint(index_dir: Path) -> str:
    return f"corrupt index at {index_dir}: {{}}; run `assistant build --force` to rebuild it"


def default_index_dir(corpus: Path, cache_dir: Path | None = None) -> Path:
    """Where the index of `corpus` lives unless told otherwise: one folder per corpus in the user cache.

    Keyed by the corpus' absolute path, so two corpora never share an index and the corpus folder (which may
    be read-only, or under version control) is never written to.
    """
    if cache_dir is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        cache_dir = Path(base) / "policy-assistant"
    corpus = corpus.resolve()
    tag = hashlib.sha256(str(corpus).encode()).hexdigest()[:10]
    return cache_dir / "indexes" / f"{corpus.name or 'corpus'}-{tag}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checksum(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")


@dataclass(frozen=True)
class StoredIndex:
    """One generation read back from disk (arrays in memory; the FAISS and BM25 objects ready to search)."""
    path: Path
    manifest: dict
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray            # float32 (n, d)
    dense: object                  # faiss.Index
    bm25: object                   # bm25s.BM25
    terms: tuple[str, ...]
    sentences: np.ndarray          # int32 (m, 3)
    sentence_vectors: np.ndarray   # float32 (m, d)
    keys: dict                     # {"chunks": [...], "sentences": [...]}
    # A search engine over the sentence vectors that lives with the index (Milvus); None: the reader builds an
    # exact FAISS index over `sentence_vectors` itself.
    sentence_search: object = None


def current_generation(index_dir: Path) -> Path | None:
    """The live generation folder, or None when no index was ever completed here."""
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptIndexError(_rebuild_hint(index_dir).format(f"cannot read {CURRENT}: {e}")) from None
    if not name.startswith("gen-") or "/" in name or not (index_dir / name).is_dir():
        raise CorruptIndexError(_rebuild_hint(index_dir).format(f"{CURRENT} names a missing generation {name!r}"))
    return index_dir / name


def read_manifest(index_dir: Path) -> dict | None:
    """The live manifest, checked against its checksum; None when there is no index yet."""
    gen = current_generation(index_dir)
    if gen is None:
        return None
    hint = _rebuild_hint(index_dir)
    try:
        manifest = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptIndexError(hint.format(f"unreadable {MANIFEST} ({e})")) from None
    if not isinstance(manifest, dict) or manifest.get("checksum") != _checksum(manifest):
        raise CorruptIndexError(hint.format(f"{MANIFEST} was modified after the build (checksum mismatch)"))
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        why = (f"it was written by a newer version of the assistant (format {version}, this one reads "
               f"{FORMAT_VERSION}); upgrade, or" if newer else f"unknown format version {version!r};")
        raise CorruptIndexError(f"cannot open the index at {index_dir}: {why} run `assistant build --force`")
    return manifest


def load(index_dir: Path) -> StoredIndex:
    """Read the live generation and check every file against the manifest."""
    import bm25s
    import faiss

    manifest = read_manifest(index_dir)
    if manifest is None:
        raise CorruptIndexError(f"no index at {index_dir}; run `assistant build` first")
    gen = current_generation(index_dir)
    hint = _rebuild_hint(index_dir)
    files = manifest.get("files", {})
    deep = sum(f["bytes"] for f in files.values()) <= _HASH_LIMIT
    for name, meta in files.items():
        path = gen / name
        if not path.is_file() or path.stat().st_size != meta["bytes"]:
            raise CorruptIndexError(hint.format(f"{name} is missing or truncated"))
        if deep and sha256_file(path) != meta["sha256"]:
            raise CorruptIndexError(hint.format(f"{name} does not match its checksum"))
    try:
        chunks = tuple(Chunk.from_dict(json.loads(ln))
                       for ln in (gen / "chunks.jsonl").read_text(encoding="utf-8").splitlines() if ln)
        vectors = np.load(gen / "vectors.npy", allow_pickle=False)
        sentences = np.load(gen / "sentences.npy", allow_pickle=False)
        sentence_vectors = np.load(gen / "sentence_vectors.npy", allow_pickle=False)
        keys = json.loads((gen / "keys.json").read_text(encoding="utf-8"))
        terms = tuple(ln for ln in (gen / "terms.txt").read_text(encoding="utf-8").splitlines() if ln)
        dense = faiss.read_index(str(gen / "dense.faiss"))
        if manifest["index"]["type"] == "ivf":
            # The tuned nprobe is the manifest's (what the build measured the recall at), not whatever the
            # file or a faiss default says.
            faiss.extract_index_ivf(dense).nprobe = int(manifest["index"]["nprobe"])
        bm25 = bm25s.BM25.load(str(gen / "bm25"), show_progress=False, allow_pickle=False)
    except Exception as e:  # any parse failure of a file that passed the size check means corruption
        raise CorruptIndexError(hint.format(f"{type(e).__name__}: {e}")) from None
    n = len(chunks)
    if not (vectors.shape[0] == dense.ntotal == n == len(keys.get("chunks", ()))
            and sentences.shape[0] == sentence_vectors.shape[0] == len(keys.get("sentences", ()))):
        raise CorruptIndexError(hint.format("the chunk table, vectors and indexes disagree in size"))
    return StoredIndex(gen, manifest, chunks, vectors, dense, bm25, terms, sentences, sentence_vectors, keys)


def load_vectors(index_dir: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """Only what the embedding cache needs: (keys, chunk vectors, sentence vectors) of the live generation."""
    gen = current_generation(index_dir)
    manifest = read_manifest(index_dir)
    if gen is None or manifest is None:
        raise CorruptIndexError(f"no index at {index_dir}")
    # A damaged vector file must not become the next build's embedding cache (it would be re-saved with
    # fresh checksums): check these three against the manifest before trusting them.
    for name in ("keys.json", "vectors.npy", "sentence_vectors.npy"):
        meta = manifest.get("files", {}).get(name)
        if meta is None or not (gen / name).is_file() or sha256_file(gen / name) != meta["sha256"]:
            raise CorruptIndexError(_rebuild_hint(index_dir).format(f"{name} does not match its checksum"))
    try:
        keys = json.loads((gen / "keys.json").read_text(encoding="utf-8"))
        vectors = np.load(gen / "vectors.npy", allow_pickle=False)
        sentence_vectors = np.load(gen / "sentence_vectors.npy", allow_pickle=False)
    except Exception as e:
        raise CorruptIndexError(_rebuild_hint(index_dir).format(f"{type(e).__name__}: {e}")) from None
    if len(keys.get("chunks", ())) != len(vectors) or len(keys.get("sentences", ())) != len(sentence_vectors):
        raise CorruptIndexError(_rebuild_hint(index_dir).format("keys and vectors disagree in size"))
    return keys, vectors, sentence_vectors


class Generation:
    """A generation being written: a `.tmp-*` folder that becomes live only through `commit`."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self.path = index_dir / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir(parents=True)

    def save_arrays(self, **arrays: np.ndarray) -> None:
        for name, arr in arrays.items():
            np.save(self.path / f"{name}.npy", arr, allow_pickle=False)

    def write(self, data, dense_config, finish) -> dict:
        """FAISS over the chunk vectors (exact or tuned IVF), bm25s over the tokens, the tables; then commit."""
        import bm25s
        import faiss

        from index.dense import build_dense, probe_queries

        bm25 = bm25s.BM25()
        bm25.index([list(t) or [""] for t in data.tokens], show_progress=False)
        dense, settings = build_dense(data.vectors, probe_queries(data.vectors, data.sentence_vectors,
                                                                  dense_config), dense_config)
        faiss.write_index(dense, str(self.path / "dense.faiss"))
        del dense
        bm25.save(str(self.path / "bm25"), show_progress=False)
        with open(self.path / "chunks.jsonl", "w", encoding="utf-8") as fh:
            for c in data.chunks:
                fh.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        (self.path / "terms.txt").write_text("\n".join(data.terms) + "\n", encoding="utf-8")
        self.save_arrays(vectors=data.vectors, sentence_vectors=data.sentence_vectors,
                         sentences=np.asarray(data.sentences, dtype=np.int32).reshape(-1, 3))
        write_json(self.path / "keys.json", data.keys)
        manifest = finish(settings)
        self.commit(manifest)
        return manifest

    def commit(self, manifest: dict) -> Path:
        """Write the manifest last, move the folder into place, then point CURRENT at it."""
        files = {}
        for p in sorted(self.path.rglob("*")):
            if p.is_file():
                files[str(p.relative_to(self.path))] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files}
        manifest["checksum"] = _checksum(manifest)
        write_json(self.path / MANIFEST, manifest)
        _fsync_tree(self.path)
        name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        final = self.index_dir / name
        os.replace(self.path, final)
        tmp_pointer = self.index_dir / f".tmp-{CURRENT}-{os.getpid()}"
        tmp_pointer.write_text(name + "\n", encoding="utf-8")
        os.replace(tmp_pointer, self.index_dir / CURRENT)
        _fsync_dir(self.index_dir)
        return final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def prune(index_dir: Path, keep: int = 2) -> None:
    """Remove dead temporary folders and all but the `keep` newest generations.

    The previous generation is kept so a reader that read CURRENT just before the swap can still open it.
    Only called while holding the build lock.
    """
    try:
        live = current_generation(index_dir)
    except CorruptIndexError:   # the build that called us is about to replace it
        live = None
    for p in index_dir.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    gens = sorted((p for p in index_dir.glob("gen-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for p in gens[:-keep]:
        if p != live:
            shutil.rmtree(p, ignore_errors=True)


@contextmanager
def build_lock(index_dir: Path, wait_seconds: float):
    """One build at a time per index folder; a second one waits up to `wait_seconds`, then says it is busy."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / "build.lock", "a+") as f:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"another build of {index_dir} is running; wait for it to finish and try again") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class LocalStore:
    """The local folder as an `index.backend.IndexBackend`: generations, FAISS + bm25s, the default.

    Writing and reading sit side by side here: `begin()` opens a `Generation` whose `write` builds the FAISS and
    BM25 indexes and commits it, `load` reads it back and checks every file.
    """

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self.location = str(self.index_dir)

    def read_manifest(self) -> dict | None:
        return read_manifest(self.index_dir)

    def load_vectors(self) -> tuple[dict, np.ndarray, np.ndarray]:
        return load_vectors(self.index_dir)

    def lock(self, wait_seconds: float):
        return build_lock(self.index_dir, wait_seconds)

    def prune(self) -> None:
        prune(self.index_dir)

    def load(self) -> StoredIndex:
        return load(self.index_dir)

    def begin(self) -> "Generation":
        return Generation(self.index_dir)


def _fsync_tree(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The index in Milvus: the same generations, manifest and searches as the local folder, in an engine that shards.

Per corpus (a collection prefix derived from the corpus path, like the local folder's name):
    <prefix>_meta                       the manifest of every generation (JSON text in parts, checksummed)
    <prefix>_g<time><rand>_chunks       one generation's chunks: content-hash id (primary key), row, the chunk
                                        record (JSON), embedding-cache key, passage vector (HNSW, inner product),
                                        the BM25 tokens and the sparse vector Milvus' BM25 function derives
    <prefix>_g<time><rand>_sentences    its sentences: row (primary key), chunk row, span, key, vector
    alias <prefix>_live                 -> the live generation's chunks collection: the one atomic switch

A build writes a new generation beside the live one (embedding only texts whose cache key the live generation
does not hold), checks the row counts, writes the manifest, loads the collections and only then moves the alias;
a build killed at any point leaves collections no alias names, which the next build's prune drops.

BM25: the field holds our own jieba tokens (index.tokenize.Tokenizer, with the corpus' user dictionary and the
stopwords), each written as a letter code, so Milvus' analyzer (the `standard` one, which keeps a run of letters
whole) sees exactly the terms bm25s sees locally, and scores them with the same BM25 (k1 1.5, b 0.75; Milvus keeps
the constant factor k1 + 1 that Lucene's variant drops, which no ranking sees).
Milvus' jieba analyzer would cut the text again with its own normalization (no NFKC, no simplification, keeps
punctuation as terms), so local and Milvus answers would drift apart.

The question side asks Milvus for the three rankings the local index computes (passage vectors, best sentence,
BM25, each filtered by row when the question is restricted to sources); the weighted reciprocal rank fusion of
those id lists, and everything after it, is the same code as for the local index.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

from index.backend import BackendError, GenerationData
from index.chunk import Chunk
from index.errors import CorruptIndexError

log = logging.getLogger("assistant")

FORMAT_VERSION = 1
_PART = 60_000          # characters of manifest JSON per row (a VARCHAR holds at most 65,535 bytes... of ASCII)
_BM25_MAX = 65_535


class BackendUnavailableError(BackendError):
    """The Milvus server did not answer (down, unreachable, or went away mid-query)."""


@dataclass(frozen=True, slots=True)
class MilvusConfig:
    """How the Milvus collections are indexed and searched. Written into the manifest's "index"."""
    # HNSW: graph search, the index Milvus Distributed serves from memory. M 16 / efConstruction 200 are Milvus'
    # customary settings; ef at search time is at least `ef_search` and at least k (Milvus requires ef >= k).
    index_type: str = "HNSW"
    m: int = 16
    ef_construction: int = 200
    ef_search: int = 128
    # ef is tuned at build like the local IVF's nprobe: doubled from ef_search until recall@10 against exact search
    # reaches target_recall on `tune_probes` probe queries (sentence vectors: index.dense.probe_queries).
    target_recall: float = 0.98
    tune_probes: int = 64
    max_ef: int = 4096
    bm25_k1: float = 1.5           # bm25s' defaults, so both backends score alike
    bm25_b: float = 0.75
    # BM25 hits fetched per question: the fusion reads the best `candidates` (60) after the source filter; the
    # filter is applied after this cut, so a restricted question sees at most this many BM25 candidates.
    bm25_limit: int = 1000
    batch: int = 2000              # rows per insert call
    timeout: float = 20.0          # seconds per server call before it counts as gone


def token_code(token: str) -> str:
    """A token as 14 lowercase letters (64 bits of blake2b): one word to any Milvus analyzer, our term to BM25."""
    h = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
    out = []
    for _ in range(14):
        h, r = divmod(h, 26)
        out.append(chr(97 + r))
    return "".join(out)


def bm25_field(tokens) -> str:
    return " ".join(token_code(t) for t in tokens)


def collection_prefix(corpus: Path) -> str:
    """pa_<corpus name>_<hash of its absolute path>: two corpora never share collections (Milvus names: [A-Za-z0-9_])."""
    corpus = Path(corpus).resolve()
    name = re.sub(r"[^A-Za-z0-9_]", "_", corpus.name or "corpus")[:40]
    return f"pa_{name}_{hashlib.sha256(str(corpus).encode()).hexdigest()[:10]}"


def _checksum(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class MilvusStore:
    """One corpus' index in a Milvus server, as an `index.backend.IndexBackend`."""

    def __init__(self, host: str, port: int, db: str = "default", *, corpus: Path,
                 lock_dir: Path | None = None, config: MilvusConfig = MilvusConfig()):
        self.host, self.port, self.db = host, port, db
        self.config = config
        self.prefix = collection_prefix(corpus)
        self.alias = f"{self.prefix}_live"
        self.meta = f"{self.prefix}_meta"
        self.location = f"milvus://{host}:{port}/{db}#{self.prefix}"
        self.lock_dir = lock_dir
        self._client = None

    # ------------------------------------------------------------------ connection and errors
    def _unavailable(self, e: Exception) -> BackendUnavailableError:
        why = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        return BackendUnavailableError(
            f"the Milvus server at {self.host}:{self.port} did not answer ({why}); check that it is running "
            f"and reachable, or use the local index (leave out --backend)")

    @property
    def client(self):
        if self._client is None:
            logging.getLogger("pymilvus").setLevel(logging.CRITICAL)   # its own tracebacks are not for users
            try:
                self._client = MilvusClient(uri=f"http://{self.host}:{self.port}", db_name=self.db,
                                            timeout=self.config.timeout)
            except Exception as e:
                raise self._unavailable(e) from None
        return self._client

    def call(self, method: str, *args, **kwargs):
        """One client call; any failure to get an answer becomes BackendUnavailableError (one line)."""
        fn = getattr(self.client, method)
        try:
            return fn(*args, timeout=self.config.timeout, **kwargs)
        except Exception as e:
            if _is_missing(e):
                raise
            raise self._unavailable(e) from None

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None

    # ------------------------------------------------------------------ generations
    def live_generation(self) -> str | None:
        """The live generation's name (its chunks collection without the suffix), or None."""
        if self.alias not in self.call("list_aliases")["aliases"]:
            return None
        target = self.call("describe_alias", alias=self.alias)["collection_name"]
        return target.removesuffix("_chunks")

    def read_manifest(self) -> dict | None:
        gen = self.live_generation()
        if gen is None:
            return None
        hint = f"corrupt index at {self.location}: {{}}; run `assistant build --force --backend ...` to rebuild it"
        try:
            rows = self.call("query", self.meta, filter=f'gen == "{gen}"', output_fields=["part", "text"])
        except Exception as e:
            raise CorruptIndexError(hint.format(f"cannot read the manifest of {gen} ({e})")) from None
        try:
            manifest = json.loads("".join(r["text"] for r in sorted(rows, key=lambda r: r["part"])))
        except ValueError as e:
            raise CorruptIndexError(hint.format(f"unreadable manifest of {gen} ({e})")) from None
        if not isinstance(manifest, dict) or manifest.get("checksum") != _checksum(manifest):
            raise CorruptIndexError(hint.format(f"the manifest of {gen} is incomplete or was modified"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise CorruptIndexError(hint.format(f"unknown format version {manifest.get('format_version')!r}"))
        return manifest

    def lock(self, wait_seconds: float):
        """One build at a time from this machine (a file lock beside the document cache).

        Milvus has no locks of its own; builders on several machines must be serialized by whoever runs them
        (one build job per corpus).
        """
        from index.store import build_lock

        if self.lock_dir is None:
            return _no_lock()
        return build_lock(Path(self.lock_dir), wait_seconds)

    def prune(self) -> None:
        """Drop generations that are neither live nor the newest other one (a reader may still be on it)."""
        live = self.live_generation()
        names = self.call("list_collections")
        gens = sorted({n.removesuffix("_chunks").removesuffix("_sentences") for n in names
                       if n.startswith(f"{self.prefix}_g") and n.endswith(("_chunks", "_sentences"))})
        keep = {live} if live else set()
        older = [g for g in gens if g != live and (live is None or g < live)]
        if older and live:
            keep.add(older[-1])
        for g in gens:
            if g in keep:
                continue
            for suffix in ("_chunks", "_sentences"):
                if f"{g}{suffix}" in names:
                    self.call("drop_collection", f"{g}{suffix}")
            if self.meta in names:
                self.call("delete", self.meta, filter=f'gen == "{g}"')

    def begin(self) -> "MilvusGeneration":
        return MilvusGeneration(self)

    # ------------------------------------------------------------------ reading
    def _iterate(self, collection: str, fields: list[str]):
        try:
            it = self.client.query_iterator(collection, batch_size=4096, output_fields=fields, filter="",
                                            timeout=self.config.timeout)
        except Exception as e:
            if _is_missing(e):
                raise CorruptIndexError(f"corrupt index at {self.location}: collection {collection} is missing; "
                                        "run `assistant build --force --backend ...`") from None
            raise self._unavailable(e) from None
        try:
            while True:
                try:
                    batch = it.next()
                except Exception as e:
                    raise self._unavailable(e) from None
                if not batch:
                    break
                yield from batch
        finally:
            it.close()

    def load_vectors(self) -> tuple[dict, np.ndarray, np.ndarray]:
        gen = self.live_generation()
        if gen is None:
            raise CorruptIndexError(f"no index at {self.location}")
        chunks = sorted(self._iterate(f"{gen}_chunks", ["row", "key", "vec"]), key=lambda r: r["row"])
        sents = sorted(self._iterate(f"{gen}_sentences", ["sid", "key", "vec"]), key=lambda r: r["sid"])
        keys = {"chunks": [r["key"] for r in chunks], "sentences": [r["key"] for r in sents]}
        return keys, _matrix([r["vec"] for r in chunks]), _matrix([r["vec"] for r in sents])

    def load(self):
        """The live generation: chunk table, sentence table and vectors in memory; the searches stay in Milvus."""
        from index.store import StoredIndex

        manifest = self.read_manifest()
        if manifest is None:
            raise CorruptIndexError(f"no index at {self.location}; run `assistant build --backend ...` first")
        gen = self.live_generation()
        rows = sorted(self._iterate(f"{gen}_chunks", ["row", "chunk"]), key=lambda r: r["row"])
        sents = sorted(self._iterate(f"{gen}_sentences", ["sid", "chunk_row", "start", "end"]),
                       key=lambda r: r["sid"])
        n, m = manifest["counts"]["chunks"], manifest["counts"]["sentences"]
        if len(rows) != n or len(sents) != m or [r["row"] for r in rows] != list(range(n)):
            raise CorruptIndexError(f"corrupt index at {self.location}: the collections of {gen} hold {len(rows)} "
                                    f"chunks and {len(sents)} sentences, the manifest says {n} and {m}; "
                                    "run `assistant build --force --backend ...`")
        chunks = tuple(Chunk.from_dict(r["chunk"]) for r in rows)
        sentences = np.asarray([(r["chunk_row"], r["start"], r["end"]) for r in sents], dtype=np.int32).reshape(-1, 3)
        dim = int(manifest["embedder"]["dim"])
        # Sentence vectors stay in Milvus (5 KB a chunk: most of an index): the evidence stage fetches the few
        # sentences of the passages it shows.
        svectors = MilvusVectors(self, f"{gen}_sentences", m, dim)
        # Chunk vectors likewise: the evidence stage reads the passage vectors of the passages it judges.
        cvectors = MilvusVectors(self, f"{gen}_chunks", n, dim, key="row")
        terms = tuple(manifest["tokenizer_terms"])
        ef = manifest["index"].get("ef_search")
        dense = MilvusSearch(self, f"{gen}_chunks", "row", n, ef)
        return StoredIndex(Path(gen), manifest, chunks, cvectors, dense,
                           MilvusBM25(self, f"{gen}_chunks", n), terms, sentences, svectors,
                           {"chunks": [], "sentences": []},   # the build's cache reads load_vectors
                           sentence_search=MilvusSearch(self, f"{gen}_sentences", "sid", m, ef))


class MilvusGeneration:
    """A generation being written: two collections no alias names yet."""

    def __init__(self, st: MilvusStore):
        self.st = st
        self.name = f"{st.prefix}_g{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"
        self._create()

    def _create(self) -> None:
        """The meta collection, once per prefix; the generation's own collections wait for the vectors' dim."""
        st = self.st
        if not st.call("has_collection", st.meta):
            s = MilvusClient.create_schema(auto_id=False)
            s.add_field("key", DataType.VARCHAR, max_length=300, is_primary=True)
            s.add_field("gen", DataType.VARCHAR, max_length=200)
            s.add_field("part", DataType.INT64)
            s.add_field("text", DataType.VARCHAR, max_length=65_535)
            s.add_field("v", DataType.FLOAT_VECTOR, dim=2)      # Milvus wants a vector field in every collection
            ip = MilvusClient.prepare_index_params()
            ip.add_index("v", index_type="FLAT", metric_type="L2")
            st.call("create_collection", st.meta, schema=s, index_params=ip)

    def _schemas(self, dim: int):
        cfg = self.st.config
        c = MilvusClient.create_schema(auto_id=False)
        c.add_field("id", DataType.VARCHAR, max_length=128, is_primary=True)
        c.add_field("row", DataType.INT64)
        c.add_field("source", DataType.VARCHAR, max_length=4096)
        c.add_field("chunk", DataType.JSON)
        c.add_field("key", DataType.VARCHAR, max_length=128)
        c.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        c.add_field("bm25_text", DataType.VARCHAR, max_length=_BM25_MAX, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard"})
        c.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        c.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["bm25_text"],
                                output_field_names=["sparse"]))
        ci = MilvusClient.prepare_index_params()
        ci.add_index("vec", index_type=cfg.index_type, metric_type="IP",
                     params={"M": cfg.m, "efConstruction": cfg.ef_construction})
        ci.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": cfg.bm25_k1, "bm25_b": cfg.bm25_b})
        s = MilvusClient.create_schema(auto_id=False)
        s.add_field("sid", DataType.INT64, is_primary=True)
        s.add_field("chunk_row", DataType.INT64)
        s.add_field("start", DataType.INT32)
        s.add_field("end", DataType.INT32)
        s.add_field("key", DataType.VARCHAR, max_length=128)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        si = MilvusClient.prepare_index_params()
        si.add_index("vec", index_type=cfg.index_type, metric_type="IP",
                     params={"M": cfg.m, "efConstruction": cfg.ef_construction})
        return (c, ci), (s, si)

    def _insert(self, collection: str, rows: list[dict]) -> None:
        b = self.st.config.batch
        for i in range(0, len(rows), b):
            self.st.call("insert", collection, rows[i:i + b])

    def write(self, data: GenerationData, dense_config, finish) -> dict:
        """Insert, check the counts, write the manifest, load, then move the alias (the commit)."""
        st, cfg = self.st, self.st.config
        n, m = len(data.chunks), len(data.sentences)
        dim = int(data.vectors.shape[1])
        (cs, ci), (ss, si) = self._schemas(dim)
        chunks_c, sents_c = f"{self.name}_chunks", f"{self.name}_sentences"
        st.call("create_collection", chunks_c, schema=cs, index_params=ci)
        st.call("create_collection", sents_c, schema=ss, index_params=si)
        ids = [c.id for c in data.chunks]
        seen: set[str] = set()
        pks = []
        for row, i in enumerate(ids):     # a repeated content hash (the same text twice at one place) stays apart
            pks.append(i if i not in seen else f"{i}-{row}")
            seen.add(i)
        self._insert(chunks_c, [
            {"id": pks[r], "row": r, "source": c.source, "chunk": c.to_dict(), "key": data.keys["chunks"][r],
             "vec": data.vectors[r].tolist(), "bm25_text": bm25_field(data.tokens[r]) or token_code("")}
            for r, c in enumerate(data.chunks)])
        srows = np.asarray(data.sentences, dtype=np.int64).reshape(-1, 3)
        self._insert(sents_c, [
            {"sid": j, "chunk_row": int(srows[j, 0]), "start": int(srows[j, 1]), "end": int(srows[j, 2]),
             "key": data.keys["sentences"][j], "vec": data.sentence_vectors[j].tolist()} for j in range(m)])
        for c in (chunks_c, sents_c):
            st.call("flush", c)
        got = [int(st.call("query", c, filter="", output_fields=["count(*)"])[0]["count(*)"])
               for c in (chunks_c, sents_c)]
        if got != [n, m]:
            raise CorruptIndexError(f"Milvus holds {got[0]} chunks and {got[1]} sentences of {self.name} after "
                                    f"inserting {n} and {m}; the live generation was left in place")
        for c in (chunks_c, sents_c):
            st.call("load_collection", c)
        ef, recall = self._tune_ef(chunks_c, data, dense_config)
        settings = {"type": f"milvus-{cfg.index_type.lower()}", "metric": "inner_product", "M": cfg.m,
                    "efConstruction": cfg.ef_construction, "ef_search": ef, "probe_recall": round(recall, 4),
                    "target_recall": cfg.target_recall, "recall_k": 10,
                    "bm25": {"k1": cfg.bm25_k1, "b": cfg.bm25_b, "tokens": "index.tokenize (letter codes)"}}
        manifest = {**finish(settings), "format_version": FORMAT_VERSION,
                    "backend": {"engine": "milvus", "generation": self.name, "collections": [chunks_c, sents_c]},
                    "tokenizer_terms": list(data.terms)}
        manifest["checksum"] = _checksum(manifest)
        text = json.dumps(manifest, ensure_ascii=False)
        # VARCHAR limits count bytes: cut by characters small enough that 4-byte characters still fit.
        step = _PART // 4
        parts = [text[i:i + step] for i in range(0, len(text), step)] or [""]
        st.call("insert", st.meta, [{"key": f"{self.name}:{p}", "gen": self.name, "part": p, "text": t,
                                     "v": [0.0, 0.0]} for p, t in enumerate(parts)])
        st.call("flush", st.meta)
        st.call("load_collection", st.meta)
        # The commit: readers see the new generation from the moment the alias names it, never before.
        if st.alias in st.call("list_aliases")["aliases"]:
            st.call("alter_alias", collection_name=chunks_c, alias=st.alias)
        else:
            st.call("create_alias", collection_name=chunks_c, alias=st.alias)
        return manifest

    def _tune_ef(self, collection: str, data: GenerationData, dense_config) -> tuple[int, float]:
        """The smallest ef (doubling) whose recall@10 against exact search reaches the target: (ef, recall)."""
        from dataclasses import replace

        from index.dense import probe_queries

        cfg = self.st.config
        probes = probe_queries(data.vectors, data.sentence_vectors, replace(dense_config, probes=cfg.tune_probes))
        k = min(10, len(data.vectors))
        scores = probes @ data.vectors.T
        truth = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.argsort(-scores, axis=1)
        del scores
        search = MilvusSearch(self.st, collection, "row", len(data.vectors))
        ef, recall = cfg.ef_search, 0.0
        while True:
            search.ef = ef
            got = [search.ranking(p, 60, None)[1][:k] for p in probes]
            recall = float(np.mean([len(set(g.tolist()) & set(t.tolist())) / k for g, t in zip(got, truth)]))
            if recall >= cfg.target_recall or ef >= cfg.max_ef:
                return ef, recall
            ef *= 2

    def discard(self) -> None:
        try:
            for suffix in ("_chunks", "_sentences"):
                if self.st.call("has_collection", f"{self.name}{suffix}"):
                    self.st.call("drop_collection", f"{self.name}{suffix}")
        except BackendError:
            pass   # the server is gone: the next build's prune drops them


class MilvusSearch:
    """Nearest rows of one vector field in Milvus, with the faiss-free `ranking` the retriever calls."""

    def __init__(self, st: MilvusStore, collection: str, row_field: str, ntotal: int, ef: int | None = None):
        self.st, self.collection, self.row_field, self.ntotal = st, collection, row_field, ntotal
        self.ef = ef or st.config.ef_search     # the build's tuned ef (manifest "index"), else the default

    def ranking(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the `k` nearest by inner product, best first, ties by row; only `allowed` rows."""
        k = min(k, self.ntotal if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        hits = self.st.call("search", self.collection, data=[np.asarray(query, np.float32).tolist()],
                            anns_field="vec", limit=k, output_fields=[self.row_field],
                            filter=_row_filter(self.row_field, allowed),
                            search_params={"metric_type": "IP", "params": {"ef": max(self.ef, k)}})[0]
        return _ordered([h["distance"] for h in hits], [h["entity"][self.row_field] for h in hits])


    @staticmethod
    def fuses(cfg) -> bool:
        """Whether Milvus can fuse this configuration's dense + BM25 rankings exactly as the local index does:
        its RRF is unweighted, so BM25's weight must be a whole multiple (1..8) of the dense one's."""
        ratio = cfg.bm25_weight / cfg.dense_weight if cfg.dense_weight > 0 else 0.0
        return 1 <= round(ratio) <= 8 and abs(ratio - round(ratio)) < 1e-9

    def hybrid(self, q, cfg, sentence_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The hybrid ranking of a question, fused by reciprocal rank in Milvus: (scores, rows), best first.

        One `hybrid_search` on the chunks collection: the passage-vector request and the BM25 request, fused by
        Milvus' RRFRanker(k = cfg.rrf_k). RRF there is unweighted, so BM25's weight (twice the dense one's) is
        given by sending its request that many times (`fuses`): the sum over requests of 1/(k + rank) is then
        dense_weight/(k + r_dense) + bm25_weight/(k + r_bm25) up to the factor dense_weight, the local fusion.
        The sentence ranking (a search of the sentences collection, grouped by chunk) is added here with its
        weight: Milvus fuses requests on one collection only.
        """
        st, k = self.st, cfg.rrf_k
        expr = _row_filter("row", q.allowed) or None
        n = min(cfg.candidates, self.ntotal if q.allowed is None else len(q.allowed))
        fused: dict[int, float] = {}
        if n > 0:
            reqs = [AnnSearchRequest([np.asarray(q.vector, np.float32).tolist()], "vec",
                                     {"metric_type": "IP", "params": {"ef": max(self.ef, n)}}, n,
                                     expr=expr)]
            codes = " ".join(token_code(t) for t in q.terms)
            if codes:
                copies = int(round(cfg.bm25_weight / cfg.dense_weight))
                reqs += [AnnSearchRequest([codes], "sparse", {"metric_type": "BM25"}, n, expr=expr)] * copies
            hits = st.call("hybrid_search", self.collection, reqs, RRFRanker(k), limit=2 * n,
                           output_fields=["row"])[0]
            fused = {int(h["entity"]["row"]): cfg.dense_weight * float(h["distance"]) for h in hits}
        for rank, i in enumerate(np.asarray(sentence_ids).tolist(), start=1):
            fused[i] = fused.get(i, 0.0) + cfg.sentence_weight / (k + rank)
        if not fused:
            return np.zeros(0, np.float64), np.zeros(0, np.int64)
        ids = np.fromiter(fused.keys(), dtype=np.int64, count=len(fused))
        scores = np.fromiter(fused.values(), dtype=np.float64, count=len(fused))
        order = np.lexsort((ids, -scores))
        return scores[order], ids[order]


class MilvusVectors:
    """Rows of a vector field read from Milvus when sliced (`vectors[a:b]`), remembered a while; a numpy view."""

    MEMO = 4096

    def __init__(self, st: MilvusStore, collection: str, n: int, dim: int, key: str = "sid"):
        self.st, self.collection, self.shape, self.key = st, collection, (n, dim), key
        self._memo: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Read several row ranges in one query (the passages of one answer), so each later slice is a memo hit."""
        todo = sorted({(int(a), int(b)) for a, b in ranges if b > a and (int(a), int(b)) not in self._memo})
        if not todo:
            return
        k = self.key
        where = " or ".join(f"({k} >= {a} and {k} < {b})" for a, b in todo)
        got = {r[k]: r["vec"] for r in self.st.call("query", self.collection, filter=where, output_fields=[k, "vec"])}
        if len(self._memo) + len(todo) > self.MEMO:
            self._memo.clear()
        for a, b in todo:
            if all(i in got for i in range(a, b)):      # a gap is left to the slice, which names it
                self._memo[(a, b)] = _matrix([got[i] for i in range(a, b)], self.shape[1])

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"vectors in Milvus are read by contiguous slices, got {key!r}")
        a, b, _ = key.indices(self.shape[0])
        if b <= a:
            return np.zeros((0, self.shape[1]), np.float32)
        hit = self._memo.get((a, b))
        if hit is None:
            k = self.key
            rows = self.st.call("query", self.collection, filter=f"{k} >= {a} and {k} < {b}",
                                output_fields=[k, "vec"])
            rows = sorted(rows, key=lambda r: r[k])
            if [r[k] for r in rows] != list(range(a, b)):
                raise CorruptIndexError(f"corrupt index at {self.st.location}: rows {a}..{b - 1} of {self.collection} "
                                        "are missing from Milvus; run `assistant build --force --backend ...`")
            hit = _matrix([r["vec"] for r in rows], self.shape[1])
            if len(self._memo) >= self.MEMO:
                self._memo.clear()
            self._memo[(a, b)] = hit
        return hit


class MilvusBM25:
    """Milvus' BM25 full-text search behind the two bm25s calls the retriever makes."""

    def __init__(self, st: MilvusStore, collection: str, n: int):
        self.st, self.collection, self.n = st, collection, n

    def get_tokens_ids(self, terms: list[str]) -> list[str]:
        return [token_code(t) for t in terms]

    def get_scores_from_ids(self, codes: list[str]) -> np.ndarray:
        """A score for every row (0 where Milvus returned none): the shape bm25s gives."""
        out = np.zeros(self.n, dtype=np.float32)
        if not codes or not self.n:
            return out
        hits = self.st.call("search", self.collection, data=[" ".join(codes)], anns_field="sparse",
                            limit=min(self.n, self.st.config.bm25_limit), output_fields=["row"],
                            search_params={"metric_type": "BM25"})[0]
        for h in hits:
            # BM25 scores are >= 0; some Milvus builds report them negated (smaller distance = better).
            out[h["entity"]["row"]] = abs(h["distance"])
        return out


def _row_filter(field: str, allowed: np.ndarray | None) -> str:
    if allowed is None:
        return ""
    return f"{field} in [{','.join(str(int(i)) for i in allowed)}]"


def _ordered(scores, rows) -> tuple[np.ndarray, np.ndarray]:
    """Best first, ties broken by row as the local index does (Milvus returns ties in any order)."""
    d = np.asarray(scores, dtype=np.float32)
    i = np.asarray(rows, dtype=np.int64)
    order = np.lexsort((i, -d))
    return d[order], i[order]


def _matrix(vectors: list, dim: int | None = None) -> np.ndarray:
    if not vectors:
        return np.zeros((0, dim or 0), dtype=np.float32)
    return np.asarray(vectors, dtype=np.float32)


def _is_missing(e: Exception) -> bool:
    """A well-formed answer saying a collection or alias does not exist (not a dead server)."""
    text = str(e).lower()
    return "not exist" in text or ("not found" in text and "collection" in text)


@contextmanager
def _no_lock():
    yield

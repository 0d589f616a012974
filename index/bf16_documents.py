"""Large document batches in bfloat16 on CPUs with bf16 matrix units (Intel AMX, AVX512-BF16).

Why: on such a CPU the fp32 matrix-product rate is not the limit. Measured on this 2-core Xeon (AMX): torch's bf16
product runs at ~3.1 TFLOP/s against ~360 GFLOP/s in fp32, and the bundled model's forward under bf16 autocast,
its linear layers' weights cast to bf16 once, encodes 1,000 dev chunks at ~79/s and 1,000 sentences at ~365/s,
against 31-32 and ~155 through ONNX Runtime fp32 (whose CPU kernels have no bf16 path on x86). The products
accumulate in fp32 and layer norm, softmax and pooling stay fp32, so the vectors stay within cosine 0.99998 of
the fp32 ones (min over those 2,000 texts): the same vectors for the index, which keeps its fingerprint.

It costs importing torch and sentence-transformers, loading the weights and checking them (~8 s here), so the embedder takes
this path only for a build with enough text to repay that (`MIN_CHARS`), and only after checking, on this CPU,
that it matches (`MIN_COSINE` on probe texts) and is faster (timed on a sample of the texts themselves). Questions
stay on ONNX Runtime: a question's few rows leave the products a small part of its time.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TOKEN_BUDGET = 2048   # padded tokens a call: 1,000 dev chunks 68/s at 2048, 61/s at 1024 (fp32 ONNX is best at 512)
ROUND = 8             # widths padded to a multiple: fewer distinct shapes for oneDNN to build kernels for (each new
                      # shape costs a first call; all of seeds/ took 3.7 s the first time at 8, 3.9 s at 1)
MIN_CHARS = 200_000   # 0.06 ms saved a character of chunks, 0.08 of sentences (1,000 dev ones each, against ONNX
                      # fp32), ~8 s to load and check (5.8 + 2.4): the saving passes that at ~130k characters
                      # (seeds/ has 66k, the dev corpus 737k)
MIN_COSINE = 0.9999   # as for the ONNX export: below this the vectors would not be the same vectors
MIN_SPEEDUP = 1.2     # a CPU whose bf16 is emulated (or slow) is not worth the load
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
log = logging.getLogger(__name__)


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU reports bf16 matrix instructions (Linux; elsewhere False: no torch import to find out)."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(set(line.split(":", 1)[-1].split()) & set(BF16_FLAGS))
    except OSError:
        pass
    return False


class Bf16Documents:
    """The bundled model's sentence-transformers forward under bf16 autocast, over token ids the caller made.

    Not thread-safe: the owning embedder calls it under its lock.
    """

    def __init__(self, st_model, dim: int, input_names: tuple[str, ...], pad_id: int, threads: int):
        self.model = st_model
        self.dim = dim
        self._inputs = input_names
        self._pad_id = pad_id
        self._threads = threads

    @classmethod
    def load(cls, folder: Path, dim: int, input_names: tuple[str, ...], pad_id: int, threads: int) -> "Bf16Documents":
        import torch
        from sentence_transformers import SentenceTransformer

        from index.embed import _quiet

        with _quiet("sentence_transformers", "transformers"):
            st = SentenceTransformer(str(folder), local_files_only=True, device="cpu")
        st.eval()
        for module in st.modules():
            # Cast once: autocast would otherwise cast every weight matrix again at every call (~14% of the time).
            if isinstance(module, torch.nn.Linear):
                module.weight.data = module.weight.data.to(torch.bfloat16)
                if module.bias is not None:
                    module.bias.data = module.bias.data.to(torch.bfloat16)
        return cls(st, dim, input_names, pad_id, threads)

    def run(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Vectors (float32, L2-normalized) for token-id rows, in TOKEN_BUDGET batches of similar length."""
        import torch

        from index.onnx_encoder import _batches, padded

        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        before = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                for batch in _batches(np.asarray([len(i) for i in ids]), TOKEN_BUDGET):
                    rows = [ids[i] for i in batch]
                    longest = max(len(r) for r in rows)
                    width = max(longest, min(-(-longest // ROUND) * ROUND, self.model.max_seq_length))
                    feed = padded(rows, self._pad_id, self._inputs, width)
                    vectors = self.model({k: torch.from_numpy(v) for k, v in feed.items()})["sentence_embedding"]
                    vectors = vectors.float()
                    out[batch] = torch.nn.functional.normalize(vectors, dim=-1).numpy()
        finally:
            torch.set_num_threads(before)
        return out


def checked(engine: Bf16Documents, fp32_run, probe_ids: list[list[int]], sample_ids: list[list[int]]) -> str | None:
    """Why `engine` should not be used here (its vectors differ, or it is not faster), or None when it should.

    `fp32_run(ids)` is the embedder's own fp32 path; both are timed on `sample_ids`, after one warm-up run each.
    """
    t = time.perf_counter()
    got, want = engine.run(probe_ids), fp32_run(probe_ids)
    log.debug("bf16 check: probes %.2f s", time.perf_counter() - t)
    cosine = float(np.min(np.sum(got * want, axis=1)))
    if cosine < MIN_COSINE:
        return f"its vectors differ from fp32's (min cosine {cosine:.6f} < {MIN_COSINE})"
    seconds = []
    for run in (engine.run, fp32_run):
        # Warm on the sample itself: oneDNN builds kernels per new shape, which a build pays once for its few
        # hundred shapes, but which would dominate a timing of 32 texts (0.48 s cold, 0.24-0.30 s warm here).
        run(sample_ids)
        t = time.perf_counter()
        run(sample_ids)
        seconds.append(time.perf_counter() - t)
    log.debug("bf16 check: sample %.2f s bf16, %.2f s fp32", *seconds)
    if seconds[1] < MIN_SPEEDUP * seconds[0]:
        return f"it is not faster here ({seconds[0]:.2f} s against fp32's {seconds[1]:.2f} s on a sample)"
    log.info("large document batches take bf16 (%.1fx fp32's speed on a sample, min cosine %.6f)",
             seconds[1] / seconds[0], cosine)
    return None

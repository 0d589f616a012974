"""Embedding a build's texts on a Ray cluster (Ray Data `map_batches` over a stateful embedder per worker).

`RayEmbedder` is an `Embedder` for the build: questions and the name/dim/fingerprint come from the local model
(the index records the same model whichever machine embedded it), document texts go to `workers` actors that
each load the model once through `factory` (a picklable callable, e.g. `functools.partial(load_embedder, model)`)
and encode `batch_size` texts a call. Rows carry their position, so the vectors come back in input order whatever
order the workers finish in.

Every worker must be able to import this package and load the model from its own disk (the same venv and
model cache on each node): nothing is downloaded at run time. Ray moves the factory and the texts with its own
serializer (cloudpickle); nothing it sends is written to or read back from disk by us.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from index.backend import BackendError

log = logging.getLogger("assistant")


class RayUnavailableError(BackendError):
    """No Ray cluster at the given address, or Ray is not installed."""


class _Encode:
    """One Ray Data worker: the model loaded once, then a batch of texts a call."""

    def __init__(self, factory: Callable[[], object]):
        self.embedder = factory()

    def __call__(self, batch: dict) -> dict:
        vectors = self.embedder.encode_documents([str(t) for t in batch["text"]])
        return {"i": batch["i"], "vec": np.asarray(vectors, dtype=np.float32)}


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ("auto": the one this machine's `ray start` runs)."""
    try:
        import ray
    except ImportError as e:
        raise RayUnavailableError(f"--ray needs the 'scale' extra (pip install -e '.[scale]'): {e}") from None
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, configure_logging=False)
    except Exception as e:
        why = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise RayUnavailableError(f"cannot join the Ray cluster at {address!r} ({why}); start one with "
                                  "`ray start --head` or pass its address") from None


class RayEmbedder:
    """The local embedder for questions and identity, a Ray cluster for the documents of a build."""

    def __init__(self, local, factory: Callable[[], object], address: str = "auto", *, workers: int = 2,
                 batch_size: int = 256, cpus_per_worker: float = 1.0):
        if workers < 1 or batch_size < 1:
            raise ValueError(f"workers and batch_size must be at least 1, got {workers} and {batch_size}")
        self.local = local
        self.factory = factory
        self.address = address
        self.workers = workers
        self.worker_batch = batch_size
        self.cpus_per_worker = cpus_per_worker
        # index.build hands an embedder this many texts per call: one Ray Data job per this many texts, so
        # the per-job start-up (actors, model loads) is paid once per pass, not once per 32 texts.
        self.documents_per_call = 1 << 30
        self.name = getattr(local, "name", "")
        self.dim = local.dim
        self.fingerprint = local.fingerprint

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.encode_queries(texts)

    def encode_documents(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import ray

        connect(self.address)
        ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)],
                                 override_num_blocks=max(1, min(len(texts) // self.worker_batch + 1,
                                                                4 * self.workers)))
        out = ds.map_batches(_Encode, fn_constructor_args=(self.factory,), batch_size=self.worker_batch,
                             concurrency=self.workers, num_cpus=self.cpus_per_worker, batch_format="numpy")
        order, vectors = [], []
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            order.append(np.asarray(batch["i"], dtype=np.int64))
            vectors.append(np.asarray(batch["vec"], dtype=np.float32).reshape(len(batch["i"]), -1))
        idx = np.concatenate(order)
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        result[idx] = np.concatenate(vectors)
        if len(np.unique(idx)) != len(texts):
            raise RuntimeError(f"Ray returned {len(np.unique(idx))} of {len(texts)} vectors")
        return result

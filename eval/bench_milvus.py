"""Milvus beside FAISS, and Ray beside one process: the scale-out measurements of docs/milvus.md.

    python -m eval.bench_milvus [--sizes 10000,100000,1000000] [--skip-quality] [--skip-ray] [--keep]

Writes eval/results/bench_milvus.md and .json. Three parts:
  scale    synthetic chunks (vectors shaped like the model's, fitted on the seeds' real chunk vectors; Zipf BM25
           tokens as eval/scale.py) in FAISS exact search (the local default up to 200k chunks) and in a Milvus
           collection (HNSW + BM25) on a milvus-lite server this script starts: build time, p50/p95 latency of one
           search for the 60 candidates a question needs, recall@10 against exact search, memory.
  quality  the seeds with the real model in both backends: MRR@10 on eval/questions.jsonl, top-1 agreement,
           top-5 overlap, ask latency.
  ray      embedding throughput of a build's texts: one process vs a local 2-worker Ray cluster.
milvus-lite is the embedded test server (one Python process); Milvus Distributed's figures differ, and the design
note says which of these carry over.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.scale import ScaleConfig, fit_gaussian, gaussian_factor, synthetic_queries, synthetic_tokens, unit_vectors

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "eval" / "results"
BIN = Path(sys.executable).parent


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_port(host: str, port: int, proc, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {host}:{port} after {seconds} s")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class MilvusServer:
    def __init__(self, data_dir: Path):
        self.port = _free_port()
        self.proc = subprocess.Popen([str(BIN / "milvus-lite"), "server", "--data-dir", str(data_dir), "--host",
                                      "127.0.0.1", "--port", str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_port("127.0.0.1", self.port, self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# milvus-lite RSS added (11 KB a chunk at 1M) + this process' vectors, queries and exact-search truth (~3 KB)
SCALE_BYTES_PER_CHUNK = 14_000


def _available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def _pct(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def _recall(got: list[np.ndarray], truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(g[:k].tolist()) & set(t[:k].tolist())) / k for g, t in zip(got, truth)]))


# ---------------------------------------------------------------- scale

def scale_point(n: int, shape, server: MilvusServer, cfg: ScaleConfig, n_queries: int = 100) -> dict:
    import faiss
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from index.milvus_store import MilvusConfig, bm25_field

    rng = np.random.default_rng(cfg.seed)
    vectors = unit_vectors(n, cfg.dim, rng, shape)
    picks = rng.choice(n, n_queries, replace=False)
    queries = vectors[picks] + 0.1 / np.sqrt(cfg.dim) * rng.standard_normal((n_queries, cfg.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    out: dict = {"n": n}

    t = time.perf_counter()
    flat = faiss.IndexFlatIP(cfg.dim)
    flat.add(vectors)
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    lat = []
    for q in queries:
        t = time.perf_counter()
        flat.search(q.reshape(1, -1), cfg.k)
        lat.append(time.perf_counter() - t)
    out["faiss"] = {"build_s": round(build, 2), **_pct(lat), "recall@10": 1.0,
                    "memory_mb": round(vectors.nbytes / 2**20, 1)}
    del flat

    mcfg = MilvusConfig()
    client = MilvusClient(uri=f"http://127.0.0.1:{server.port}", timeout=600)
    name = f"bench_{n}"
    if client.has_collection(name):
        client.drop_collection(name)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("row", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=cfg.dim)
    s.add_field("bm25_text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True,
                analyzer_params={"tokenizer": "standard"})
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["bm25_text"],
                            output_field_names=["sparse"]))
    ip = MilvusClient.prepare_index_params()
    ip.add_index("vec", index_type="HNSW", metric_type="IP", params={"M": mcfg.m, "efConstruction": mcfg.ef_construction})
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                 params={"bm25_k1": mcfg.bm25_k1, "bm25_b": mcfg.bm25_b})
    client.create_collection(name, schema=s, index_params=ip)
    tokens = synthetic_tokens(n, cfg, rng)
    rss0 = _rss_mb(server.proc.pid)
    t = time.perf_counter()
    for start in range(0, n, mcfg.batch):
        client.insert(name, [{"row": i, "vec": vectors[i].tolist(), "bm25_text": bm25_field(tokens[i])}
                             for i in range(start, min(n, start + mcfg.batch))])
    client.flush(name)
    client.load_collection(name)
    build = time.perf_counter() - t
    lat, got = [], []
    for q in queries:
        t = time.perf_counter()
        hits = client.search(name, data=[q.tolist()], anns_field="vec", limit=cfg.k, output_fields=["row"],
                             search_params={"metric_type": "IP", "params": {"ef": max(mcfg.ef_search, cfg.k)}})[0]
        lat.append(time.perf_counter() - t)
        got.append(np.asarray([h["entity"]["row"] for h in hits]))
    blat = []
    for qt in synthetic_queries(cfg, rng)[:n_queries]:
        t = time.perf_counter()
        client.search(name, data=[bm25_field(qt)], anns_field="sparse", limit=cfg.k,
                      search_params={"metric_type": "BM25"})
        blat.append(time.perf_counter() - t)
    out["milvus"] = {"build_s": round(build, 2), **_pct(lat), "recall@10": round(_recall(got, truth), 4),
                     "bm25": _pct(blat), "server_rss_mb": round(_rss_mb(server.proc.pid), 1),
                     "server_rss_added_mb": round(_rss_mb(server.proc.pid) - rss0, 1),
                     "insert_rows_per_s": round(n / build, 1)}
    client.drop_collection(name)
    client.close()
    _log(f"  n={n}: {json.dumps(out)}")
    return out


# ---------------------------------------------------------------- quality

def quality(server: MilvusServer, embedder, tmp: Path) -> dict:
    from assistant.api import Assistant
    from eval.metrics import first_hit_rank, mrr_at_k

    questions = [json.loads(ln) for ln in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
                 if ln.strip()]
    res: dict = {}
    opened = {}
    for name, backend in (("local", None), ("milvus", f"milvus://127.0.0.1:{server.port}")):
        t = time.perf_counter()
        opened[name] = Assistant.open(ROOT / "seeds", index=tmp / name, embedder=embedder, progress=False,
                                      backend=backend)
        res[name] = {"open_and_build_s": round(time.perf_counter() - t, 1)}
    top1 = overlap = 0.0
    ranks = {"local": [], "milvus": []}
    lat = {"local": [], "milvus": []}
    for q in questions:
        ids = {}
        for name, a in opened.items():
            t = time.perf_counter()
            ans = a.ask(q["question"], top_k=10)
            lat[name].append(time.perf_counter() - t)
            ids[name] = [p.chunk_id for p in ans.passages]
            if q.get("anchors"):
                ranks[name].append(mrr_at_k(first_hit_rank([p.text for p in ans.passages], q["anchors"]), 10))
        top1 += ids["local"][:1] == ids["milvus"][:1]
        overlap += len(set(ids["local"][:5]) & set(ids["milvus"][:5])) / max(1, len(ids["local"][:5]))
    for name in opened:
        res[name].update({"mrr@10": round(float(np.mean(ranks[name])), 4), **_pct(lat[name])})
    res["agreement"] = {"questions": len(questions), "top1_identical": round(top1 / len(questions), 4),
                        "top5_overlap": round(overlap / len(questions), 4)}
    _log(f"  quality: {json.dumps(res)}")
    return res


# ---------------------------------------------------------------- ray

def ray_throughput(texts: list[str], model: str | None) -> dict:
    import functools

    import ray

    from index.embed import load_embedder
    from index.ray_embed import RayEmbedder, connect

    host = "127.0.0.2"
    port = _free_port(host)
    temp = Path(f"/tmp/ray-bench-{port}")
    proc = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", f"--node-ip-address={host}", "--disable-usage-stats",
                             f"--temp-dir={temp}", f"--ray-client-server-port={_free_port(host)}",
                             f"--dashboard-agent-listen-port={_free_port(host)}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_port(host, port, proc)
        local = load_embedder(model)
        t = time.perf_counter()
        v1 = np.concatenate([local.encode_documents(texts[i:i + 32]) for i in range(0, len(texts), 32)])
        t_local = time.perf_counter() - t
        connect(f"{host}:{port}")
        remote = RayEmbedder(local, functools.partial(load_embedder, model), f"{host}:{port}", workers=2,
                             batch_size=64)
        t = time.perf_counter()
        v2 = remote.encode_documents(texts)
        t_ray = time.perf_counter() - t
        cos = float(np.min(np.sum(v1 * v2, axis=1)))
        out = {"texts": len(texts), "local_s": round(t_local, 2), "local_texts_per_s": round(len(texts) / t_local, 1),
               "ray_2_workers_s": round(t_ray, 2), "ray_texts_per_s": round(len(texts) / t_ray, 1),
               "min_cosine_local_vs_ray": round(cos, 6)}
        ray.shutdown()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        subprocess.run(["rm", "-rf", str(temp)], check=False)
    _log(f"  ray: {json.dumps(out)}")
    return out


# ---------------------------------------------------------------- report

def render(result: dict) -> str:
    lines = ["# Milvus and Ray (python -m eval.bench_milvus)", "",
             f"Run {result['date']} at revision {result['revision']}, load average {result['loadavg']}; "
             "milvus-lite (the embedded test server, one Python process) on this 2-core machine.", ""]
    if result.get("scale"):
        lines += ["## Scale: FAISS exact (local default) vs Milvus HNSW", "",
                  "| chunks | FAISS build s | FAISS p50/p95 ms | Milvus build s (insert+index+load) | Milvus p50/p95 ms "
                  "| Milvus recall@10 | Milvus BM25 p50/p95 ms | FAISS vectors MB | Milvus server RSS MB (+added) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in result["scale"]:
            f, m = p["faiss"], p["milvus"]
            lines.append(f"| {p['n']:,} | {f['build_s']} | {f['p50_ms']} / {f['p95_ms']} | {m['build_s']} | "
                         f"{m['p50_ms']} / {m['p95_ms']} | {m['recall@10']} | {m['bm25']['p50_ms']} / "
                         f"{m['bm25']['p95_ms']} | {f['memory_mb']} | {m['server_rss_mb']} (+{m['server_rss_added_mb']}) |")
        lines.append("")
    if result.get("quality"):
        q = result["quality"]
        lines += ["## Quality: seeds, real model, both backends", "",
                  "| backend | MRR@10 (answerable questions) | ask p50 / p95 ms | open + build s |", "|---|---:|---:|---:|"]
        for name in ("local", "milvus"):
            r = q[name]
            lines.append(f"| {name} | {r['mrr@10']} | {r['p50_ms']} / {r['p95_ms']} | {r['open_and_build_s']} |")
        a = q["agreement"]
        lines += ["", f"Agreement over {a['questions']} questions: top-1 identical {a['top1_identical']}, "
                      f"top-5 overlap {a['top5_overlap']}.", ""]
    if result.get("ray"):
        r = result["ray"]
        lines += ["## Ray: embedding a build's texts", "",
                  "| texts | one process s (texts/s) | Ray, 2 workers s (texts/s) | min cosine local vs Ray |",
                  "|---:|---:|---:|---:|",
                  f"| {r['texts']} | {r['local_s']} ({r['local_texts_per_s']}) | {r['ray_2_workers_s']} "
                  f"({r['ray_texts_per_s']}) | {r['min_cosine_local_vs_ray']} |", ""]
    if result.get("kept_from"):
        lines += [f"Parts kept from earlier runs: {result['kept_from']}.", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000,1000000",
                   help="comma-separated chunk counts for the scale curve (1M: ~20 min and ~14 GB on a quiet 2-core machine)")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--skip-ray", action="store_true")
    p.add_argument("--ray-texts", type=int, default=512)
    p.add_argument("--model", default=None)
    p.add_argument("--keep", action="store_true", help="keep parts skipped in this run from the previous results")
    args = p.parse_args(argv)
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "revision": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                               text=True).stdout.strip(),
                    "loadavg": [round(x, 2) for x in os.getloadavg()]}
    from index.embed import load_embedder

    embedder = load_embedder(args.model)
    with tempfile.TemporaryDirectory(prefix="bench-milvus-") as tmp:
        tmp = Path(tmp)
        server = MilvusServer(tmp / "milvus")
        try:
            if not args.skip_quality:
                _log("quality: seeds in both backends ...")
                result["quality"] = quality(server, embedder, tmp)
            from index import store

            shape = None
            try:
                stored = store.load(tmp / "local")
                shape = gaussian_factor(fit_gaussian(stored.sentence_vectors))
            except Exception:
                pass
            if shape is None and args.sizes:
                # the model's own vectors of 400 seed paragraphs give the synthetic vectors their shape
                lines = [ln.strip() for f in sorted((ROOT / "seeds").glob("*.txt")) + sorted((ROOT / "seeds").glob("*.md"))
                         for ln in f.read_text(encoding="utf-8").splitlines() if len(ln.strip()) > 20][:400]
                shape = gaussian_factor(fit_gaussian(np.concatenate(
                    [embedder.encode_documents(lines[i:i + 32]) for i in range(0, len(lines), 32)])))
            for n in [int(x) for x in args.sizes.split(",") if x]:
                need = n * SCALE_BYTES_PER_CHUNK / 2**30
                if _available_gib() < need:
                    _log(f"scale: {n:,} chunks skipped: needs ~{need:.0f} GiB of free memory, "
                         f"{_available_gib():.1f} GiB available")
                    continue
                _log(f"scale: {n:,} chunks ...")
                result.setdefault("scale", []).append(scale_point(n, shape, server, ScaleConfig()))
        finally:
            server.stop()
        if not args.skip_ray:
            _log("ray: embedding throughput ...")
            from index import store as _store
            texts = []
            try:
                st = _store.load(tmp / "local")
                texts = [st.chunks[r].text[s:e] for r, s, e in st.sentences.tolist()][: args.ray_texts]
            except Exception:
                pass
            texts = texts or [f"国有企业党建工作与生产经营深度融合的第{i}种做法。" for i in range(args.ray_texts)]
            result["ray"] = ray_throughput(texts, args.model)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.keep and (RESULTS / "bench_milvus.json").exists():
        # parts not measured in this run are kept from the previous one (their own date is in "parts")
        old = json.loads((RESULTS / "bench_milvus.json").read_text(encoding="utf-8"))
        for part in ("quality", "scale", "ray"):
            if part not in result and part in old:
                result[part] = old[part]
                result.setdefault("kept_from", {})[part] = old.get("date")
            elif part == "scale" and part in old:     # sizes not measured now are kept
                have = {p["n"] for p in result["scale"]}
                kept = [p for p in old["scale"] if p["n"] not in have]
                if kept:
                    result["scale"] = sorted(result["scale"] + kept, key=lambda p: p["n"])
                    result.setdefault("kept_from", {})["scale " + ",".join(str(p["n"]) for p in kept)] = old.get("date")
    (RESULTS / "bench_milvus.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    (RESULTS / "bench_milvus.md").write_text(render(result), encoding="utf-8")
    print(render(result))


if __name__ == "__main__":
    main()

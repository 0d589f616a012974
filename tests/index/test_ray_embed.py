"""Embedding a build on a local 2-worker Ray cluster the test starts (127.0.0.2, free ports) and stops.

Oracle: the same build in one process. Uses the deterministic FakeEmbedder, shipped to the workers by value.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
ray = pytest.importorskip("ray", reason="the Ray tests need the 'scale' extra (pip install -e '.[scale]')")
RAY = Path(sys.executable).parent / "ray"
HOST = "127.0.0.2"    # with 127.0.0.1 Ray silently takes the interface address


def _free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not RAY.exists():
        pytest.skip("the ray command is not installed (the 'scale' extra)")
    try:
        _free_port()
    except OSError:
        pytest.skip(f"cannot bind {HOST} on this machine")
    port = _free_port()
    temp = Path(f"/tmp/ray-test-{port}")     # Ray's socket paths must stay short
    proc = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
         f"--node-ip-address={HOST}", "--disable-usage-stats", f"--temp-dir={temp}",
         f"--ray-client-server-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    address = f"{HOST}:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"ray start exited with {proc.returncode}")
            time.sleep(0.5)
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest

    from index.ray_embed import connect

    connect(address)
    # The fake lives in tests/, which the workers cannot import: ship its module by value.
    ray.cloudpickle.register_pickle_by_value(conftest)
    yield address, conftest.FakeEmbedder
    ray.shutdown()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    subprocess.run(["rm", "-rf", str(temp)], check=False)


@pytest.mark.slow
def test_ray_build_gives_the_same_vectors_as_a_local_build(cluster, tmp_path):
    from index import store
    from index.build import ensure_index
    from index.ray_embed import RayEmbedder

    address, Fake = cluster
    local = ensure_index(SEEDS, tmp_path / "local", Fake, "fake", progress=False)
    remote_embedder = RayEmbedder(Fake(), Fake, address, workers=2, batch_size=64)
    remote = ensure_index(SEEDS, tmp_path / "ray", lambda: remote_embedder, "fake", progress=False)
    assert remote.embedded == local.embedded > 100
    a, b = store.load(tmp_path / "local"), store.load(tmp_path / "ray")
    assert a.keys == b.keys
    assert np.array_equal(a.vectors, b.vectors) and np.array_equal(a.sentence_vectors, b.sentence_vectors)


@pytest.mark.slow
def test_ray_keeps_input_order_across_workers(cluster):
    from index.ray_embed import RayEmbedder

    address, Fake = cluster
    texts = [f"第{i}段：国有企业党建工作与生产经营深度融合" * (1 + i % 5) for i in range(300)]
    got = RayEmbedder(Fake(), Fake, address, workers=2, batch_size=16).encode_documents(texts)
    assert np.array_equal(got, Fake().encode_documents(texts))

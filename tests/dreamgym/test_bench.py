"""`dreamgym bench` produces its figures (timings are reported, never asserted)."""

import json
import subprocess
import sys
import tempfile

import pytest

# subprocesses run outside the source tree, whose dreamgym/ folder would shadow the installed package
OUTSIDE = tempfile.gettempdir()


def test_bench_json_has_the_promised_keys():
    pytest.importorskip("torch")
    out = subprocess.run(
        cwd=OUTSIDE,
        args=[
            sys.executable,
            "-m",
            "dreamgym",
            "bench",
            "Dream-HalfCheetah-v0",
            "--num-envs",
            "1,16",
            "--seconds",
            "0.05",
            "--rounds",
            "1",
            "--json",
            "--no-memory",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert [r["num_envs"] for r in res["rows"]] == [1, 16]
    assert all(r["steps_per_s"] > 0 and r["gflops"] > 0 and 0 <= r["outside_ort_share"] <= 1 for r in res["rows"])
    assert res["roofline_gflops"] > 0 and res["single_env_steps_per_s"] > 0
    assert res["real"]["single_steps_per_s"] > 0 and res["real"]["best_vector_steps_per_s"] > 0
    assert [t["num_envs"] for t in res["torch"]] == [1, 16]
    assert res["flops_per_step"] > 100_000


def test_torch_model_rebuilt_from_bundle_matches_onnx():
    pytest.importorskip("torch")
    import numpy as np
    import onnxruntime as ort

    import dreamgym
    from dreamgym.bench import example_feeds
    from dreamgym.export.families import torch_step

    for id in dreamgym.shipped_bundles(multi_agent=False):
        b = dreamgym.Bundle.load(dreamgym.resolve(id))
        step = torch_step(b)
        feeds = example_feeds(b, 4, np.random.default_rng(0))  # token states get small valid ids
        sess = ort.InferenceSession(str(b.graph_file("step")), providers=["CPUExecutionProvider"])
        got = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
        for t, o in zip(step(feeds), got):
            tol = 1 if o.dtype == np.uint8 else 1e-4  # frames: within one grey level
            np.testing.assert_allclose(t.numpy().astype(np.float64), o.astype(np.float64), atol=tol, rtol=1e-4)


def test_skipped_figures_say_why(monkeypatch):
    """Without torch's entry point (or when told not to) a figure is left out with a note, not an error."""
    from dreamgym import bench

    monkeypatch.setattr("importlib.metadata.entry_points", lambda group=None: [])
    step, why = bench.torch_step_for(dreamgym_bundle())
    assert step is None and 'pip install "dreamgym[export]"' in why
    res = bench.bench("Dream-HalfCheetah-v0", sizes=(1,), seconds=0.01, rounds=1, real=False, torch=False, memory=False)
    assert res["real"] is None and res["torch"] is None
    assert res["notes"] == {"real": "not asked for", "torch": "not asked for"}


def dreamgym_bundle():
    import dreamgym

    return dreamgym.Bundle.load(dreamgym.resolve("Dream-HalfCheetah-v0"))

"""The shipped bundles still dream what they dreamt when recorded (first before their manifests were rewritten,
format 1 -> 2; Dream-HalfCheetah-v0 re-recorded when it was retrained with its uncertainty ensemble).

golden.npz was recorded by golden.py from the format-1 bundles. On the machine and onnxruntime it was
recorded with, every observation, reward, flag and frame must be identical bit for bit; elsewhere float
kernels may round differently, so observations and rewards are compared to 1e-4 (the TSSM's 40-step
rollouts differed by up to 5e-5 on an AMD EPYC from the Intel machine they were recorded on) and frame
digests are not compared.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

import dreamgym
from dreamgym.manifest import MANIFEST, Manifest

_spec = importlib.util.spec_from_file_location("golden", Path(__file__).with_name("golden.py"))
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)
DATA, machine, record = golden.DATA, golden.machine, golden.record

GOLDEN = np.load(DATA, allow_pickle=False)
SAME_MACHINE = json.loads(str(GOLDEN["machine"])) == machine()


def same_machine(bundle_id: str) -> bool:
    """Whether this machine is the one the bundle was recorded on (a bundle added later keeps its own)."""
    key = f"{bundle_id}/machine"
    return json.loads(str(GOLDEN[key])) == machine() if key in GOLDEN.files else SAME_MACHINE


def test_golden_covers_every_shipped_bundle():
    recorded = {k.split("/")[0] for k in GOLDEN.files if "/" in k}
    assert recorded == set(dreamgym.shipped_bundles(multi_agent=False)), (
        "re-record with `python tests/dreamgym/golden.py`"
    )


def test_same_seed_same_dream_as_recorded(bundle_id):
    got = record(bundle_id)
    exact = same_machine(bundle_id)
    for key, value in got.items():
        want = GOLDEN[f"{bundle_id}/{key}"]
        assert value.shape == want.shape, key
        if exact:
            np.testing.assert_array_equal(value, want, err_msg=f"{bundle_id} {key} changed")
        elif "frames" in key or (key == "vec_obs" and value.dtype == np.uint8):
            continue  # digests of frames: exact only where the float kernels are the same
        else:
            np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-4, err_msg=f"{bundle_id} {key} changed")


def test_format_1_still_loads_and_dreams_the_same(tmp_path):
    """A format-1 manifest (no summary) loads: the summary is derived from its metrics, and the dream is
    the one the format-2 manifest gives."""
    src = dreamgym.shipped_bundles()["Dream-HalfCheetah-TSSM-v0"]  # a format-2 manifest (no outputs)
    dst = tmp_path / "v1"
    shutil.copytree(src, dst)
    d = json.loads((dst / MANIFEST).read_text())
    summary = d.pop("summary")
    d["format_version"] = 1
    (dst / MANIFEST).write_text(json.dumps(d))
    m = Manifest.read(dst / MANIFEST)
    assert m.format_version == 1
    assert m.summary.metric == summary["metric"]
    assert m.summary.horizons == summary["horizons"]
    a = dreamgym.make_vec(src, num_envs=2, device="cpu")
    b = dreamgym.make_vec(dst, num_envs=2, device="cpu")
    oa, _ = a.reset(seed=3)
    ob, _ = b.reset(seed=3)
    np.testing.assert_array_equal(oa, ob)
    act = np.full((2, 6), 0.3, np.float32)
    for _ in range(5):
        ra, rb = a.step(act), b.step(act)
        for x, y in zip(ra[:4], rb[:4]):
            np.testing.assert_array_equal(x, y)


def test_shipped_manifests_are_what_the_writer_writes(bundle_id):
    """Every shipped manifest is in the oldest format that holds it (3 for a bundle with an uncertainty,
    2 for the others) and is exactly `Manifest.to_json` of itself."""
    path = dreamgym.shipped_bundles()[bundle_id] / MANIFEST
    raw = json.loads(path.read_text())
    m = Manifest.read(path)
    assert m.format_version == m.needs_version == (3 if m.outputs else 2)
    assert m.to_json() == raw

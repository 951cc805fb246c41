"""The bundle contract: loading checks versions, hashes, paths, graphs and contexts."""

import json

import numpy as np
import pytest
from gymnasium import spaces

import dreamgym
from dreamgym import Bundle, BundleError
from dreamgym.spaces import space_from_json, space_to_json
from dreamgym.testing import check_bundle


def _edit(path, fn):
    m = json.loads((path / "dreamgym.json").read_text())
    fn(m)
    (path / "dreamgym.json").write_text(json.dumps(m))


def test_shipped_bundles_pass_check_bundle(bundle_id):
    report = check_bundle(dreamgym.resolve(bundle_id))
    assert report["id"] == bundle_id
    assert report["steps"] > 0


def test_loads_and_exposes_manifest(default_bundle):
    b = Bundle.load(default_bundle)
    assert b.id == "Dream-HalfCheetah-v0" and b.family == "step-ensemble"
    assert b.observation_space == spaces.Box(-np.inf, np.inf, (17,), np.float64)
    assert b.action_space == spaces.Box(-1, 1, (6,), np.float32)
    assert len(b.contexts["obs"]) >= 256
    assert b.contexts["obs"].shape[1] == b.context_length == 1
    rssm = Bundle.load(dreamgym.resolve("Dream-HalfCheetah-RSSM-v0"))
    assert rssm.family == "rssm" and rssm.context_length == 10


def test_missing_folder_and_manifest(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        Bundle.load(tmp_path / "nope")
    with pytest.raises(BundleError, match="no dreamgym.json"):
        Bundle.load(tmp_path)


def test_newer_format_version_is_refused(bundle_copy):
    _edit(bundle_copy, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format_version 99.*upgrade"):
        Bundle.load(bundle_copy)


def test_non_integer_version_is_refused(bundle_copy):
    _edit(bundle_copy, lambda m: m.update(format_version="1"))
    with pytest.raises(BundleError, match="must be an integer"):
        Bundle.load(bundle_copy)


def test_damaged_graph_is_refused_by_hash(bundle_copy):
    with open(bundle_copy / "step.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="step.onnx does not match its sha256"):
        Bundle.load(bundle_copy)


def test_missing_file(bundle_copy):
    (bundle_copy / "render.onnx").unlink()
    with pytest.raises(BundleError, match="'render.onnx' named in the manifest is missing"):
        Bundle.load(bundle_copy)


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "sub/../../x.onnx"])
def test_file_names_must_stay_inside(bundle_copy, name):
    _edit(bundle_copy, lambda m: m["graphs"]["step"].update(file=name))
    with pytest.raises(BundleError, match="inside the bundle|outside the bundle"):
        Bundle.load(bundle_copy)


def test_declared_io_must_match_contract(bundle_copy):
    _edit(bundle_copy, lambda m: m["graphs"]["step"]["outputs"].remove("reward"))
    with pytest.raises(BundleError, match="graphs.step declares"):
        Bundle.load(bundle_copy)


def test_graph_io_must_match_manifest(bundle_copy):
    # rename a state tensor in the manifest and in the declared io: the graph file no longer agrees
    def fn(m):
        s = m["state"][0]["name"]
        m["state"][0]["name"] = "hidden"
        for g in m["graphs"].values():
            g["inputs"] = ["hidden" if x == s else x for x in g["inputs"]]
            g["outputs"] = [{s: "hidden", f"next_{s}": "next_hidden"}.get(x, x) for x in g["outputs"]]

    _edit(bundle_copy, fn)
    with pytest.raises(BundleError, match="has inputs .* but the manifest says"):
        dreamgym.DreamVectorEnv(bundle_copy, 2)


def test_state_shape_must_match_graph(bundle_copy):
    _edit(bundle_copy, lambda m: m["state"][0].update(shape=[7]))
    with pytest.raises(BundleError, match="in the graph but float32"):
        dreamgym.DreamVectorEnv(bundle_copy, 2)


def _replace_contexts(path, **arrays):
    """Write other contexts and give the manifest their hash, so only the content is wrong."""
    from dreamgym.bundle import sha256_file

    np.savez(path / "contexts.npz", **arrays)
    _edit(path, lambda m: m["contexts"].update(sha256=sha256_file(path / "contexts.npz")))


def test_pickled_contexts_are_refused(bundle_copy):
    obj = np.empty((4, 10, 17), dtype=object)
    _replace_contexts(bundle_copy, obs=obj, actions=obj)
    with pytest.raises(BundleError, match="pickles"):
        Bundle.load(bundle_copy)


def test_context_shapes_are_checked(bundle_copy):
    _replace_contexts(bundle_copy, obs=np.zeros((4, 3, 17), np.float32), actions=np.zeros((4, 3, 6), np.float32))
    with pytest.raises(BundleError, match="do not match"):
        Bundle.load(bundle_copy)


def test_invalid_json(bundle_copy):
    (bundle_copy / "dreamgym.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        Bundle.load(bundle_copy)


def test_unknown_noise_distribution(bundle_copy):
    _edit(bundle_copy, lambda m: m["noise"][0].update(distribution="cauchy"))
    with pytest.raises(BundleError, match="cauchy"):
        Bundle.load(bundle_copy)


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-1, 1, (6,), np.float32),
        spaces.Box(-np.inf, np.inf, (17,), np.float64),
        spaces.Box(np.array([0.0, -1.0]), np.array([1.0, 2.0]), dtype=np.float32),
        spaces.Discrete(6),
        spaces.Discrete(3, start=-1),
        spaces.MultiDiscrete([3, 4]),
        spaces.MultiBinary(5),
    ],
)
def test_space_json_round_trip(space):
    d = space_to_json(space)
    assert json.loads(json.dumps(d)) == d  # plain JSON, no Infinity literals
    assert space_from_json(d) == space


def test_bad_space_json():
    with pytest.raises(BundleError, match="unknown space type"):
        space_from_json({"type": "Tuple"})
    with pytest.raises(BundleError, match="'inf' or '-inf'"):
        space_from_json({"type": "Box", "low": "lots", "high": 1, "shape": [1]})

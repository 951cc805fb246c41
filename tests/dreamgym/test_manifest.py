"""The typed manifest: the only reader and writer of dreamgym.json."""

from __future__ import annotations

import json

import pytest

import dreamgym
from dreamgym import BundleError
from dreamgym.manifest import FORMAT_VERSION, MANIFEST, Manifest, Signature, TensorSpec, io_names


def _raw(bundle_id="Dream-HalfCheetah-v0") -> dict:
    return json.loads((dreamgym.shipped_bundles()[bundle_id] / MANIFEST).read_text())


def test_round_trip_of_every_shipped_manifest(bundle_id):
    m = Manifest.from_json(_raw(bundle_id))
    assert Manifest.from_json(m.to_json()) == m
    assert m.to_json() == _raw(bundle_id)


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d.update(colour="blue"), "unknown key 'colour'"),
        (lambda d: d.pop("state"), "lacks the required key 'state'"),
        (lambda d: d.update(context_length="10"), "context_length must be an integer"),
        (lambda d: d.update(context_length=True), "context_length must be an integer"),
        (lambda d: d["state"][0].update(shape=[-3]), "none negative"),
        (lambda d: d["state"][0].update(shape=[1 << 20, 1 << 20]), "more than 2\\*\\*28"),
        (lambda d: d["state"][0].update(dtype="complex64"), "dtype must be one of"),
        (lambda d: d["noise"][0].update(distribution="cauchy"), "distribution must be one of"),
        (lambda d: d["noise"][0].update(graph="render"), "graph must be 'reset' or 'step'"),
        (lambda d: d["graphs"]["step"].update(clips_action="yes"), "clips_action must be true or false"),
        (lambda d: d["graphs"].pop("render"), "graphs.render is missing"),
        (lambda d: d["graphs"].update(value={"file": "v.onnx", "sha256": "0"}), "unknown graphs"),
        (lambda d: d["model"].update(step_macs=1.5), "step_macs must be an integer or null"),
        (lambda d: d.update(obs_modes=["state", "smell"]), "obs_modes"),
        (lambda d: d["state"].append(dict(d["state"][0])), "names must be unique"),
        (lambda d: d["state"][0].update(name="obs"), "belong to the contract"),
        (lambda d: d.update(frame_shape=[64, 64]), "frame_shape"),
        (lambda d: d.update(format_version=99), f"reads up to {FORMAT_VERSION}"),
        (lambda d: d.update(format_version=0), "not a known version"),
        (lambda d: d.update(format_version="2"), "format_version' must be an integer"),
        (lambda d: d.update(source={"env_id": 3}), "source.env_id must be a string or null"),
    ],
)
def test_damaged_manifest_names_the_key(edit, words):
    d = _raw()
    edit(d)
    with pytest.raises(BundleError, match=words):
        Manifest.from_json(d)


def test_io_names_come_from_the_manifest_alone():
    m = Manifest.from_json(_raw("Dream-HalfCheetah-RSSM-v0"))  # a latent state, noise and a declared output
    assert io_names(m, "step") == (
        ["h", "z", "action", "noise_z"],
        ["next_h", "next_z", "obs", "reward", "terminated", "latent", "uncertainty"],  # a declared output last
    )
    assert io_names(m, "reset")[0] == ["context_obs", "context_actions", "noise_context"]
    assert io_names(m, "render") == (["h", "z"], ["frame"])
    sig = Signature((TensorSpec("s", (4,)),), latent=False)
    assert io_names(sig, "step") == (["s", "action"], ["next_s", "obs", "reward", "terminated"])
    with pytest.raises(BundleError, match="unknown graph"):
        io_names(m, "value")


def test_write_is_atomic_and_readable(tmp_path):
    m = Manifest.from_json(_raw())
    path = tmp_path / MANIFEST
    m.write(path)
    assert Manifest.read(path) == m
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST]  # no temporary file left behind

"""Fuzzing with Hypothesis: damaged bundles and manifests, and hostile actions and contexts.

Every damaged bundle ends in `BundleError` or `ValueError` with a message, or loads and then steps (a
harmless change, such as an extra key in `metrics`); never another exception, a hang or a crash. Every hostile
action or context batch ends in `ActionError` or `ValueError`, or is a valid batch that steps, and the env
keeps stepping exactly as a twin that never saw the bad input.

Examples per test: 500 each (`DREAMGYM_FUZZ=500`, the default), at least 100 where CI sets a smaller number
(`.ci/run` runs the default).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dreamgym
from dreamgym import ActionError, BundleError
from dreamgym.bundle import sha256_file
from dreamgym.manifest import MANIFEST

EXAMPLES = max(100, int(os.environ.get("DREAMGYM_FUZZ", "500")))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny single-agent RSSM bundle (tens of kB), exported by the family checker."""
    from dreamgym.export.families import get_family
    from dreamgym.export.families.rssm import RSSMConfig
    from dreamgym.export.testing import check_family

    root = tmp_path_factory.mktemp("fuzz")
    cfg = RSSMConfig(obs_dim=5, act_dim=2, deter=16, stoch=4, hidden=16, frame_channels=4, frame_size=16)
    check_family(get_family("rssm"), cfg, out=root, fit_steps=3)
    return root / "bundle"


# -- damaged bundles ------------------------------------------------------------------------------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
SPECIAL = st.sampled_from(
    [-1, 0, 2**40, [2**31, 2**31], [-3], ["x"], "float128", "cauchy", "render", [], {}, None, "../escape.onnx", "1e9"]
)


def _paths(d, prefix=()):
    """Every place in a JSON tree (a dict key or a list index), as key paths."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


@st.composite
def damaged_manifests(draw, base: dict):
    d = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(d))
        path = draw(st.sampled_from(paths))
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["delete", "replace", "special", "extra"]))
        key = path[-1]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(JSON)
        elif op == "special":
            parent[key] = draw(SPECIAL)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
    return d


def _load_and_step(path: Path) -> None:
    """Load a (possibly damaged) bundle and, if it loads, reset and step it."""
    try:
        b = dreamgym.Bundle.load(path)
        env = dreamgym.DreamVectorEnv(b, 2, render_mode="rgb_array")
        env.reset(seed=0)
        env.step(env.action_space.sample())
        env.render()
        env.close()
    except (BundleError, ValueError) as e:
        assert str(e), "an error without a message"


def _fresh(tiny: Path, tmp: Path) -> Path:
    dst = tmp / "b"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(tiny, dst)
    return dst


@FUZZ
@given(data=st.data())
def test_damaged_manifests_are_refused_with_a_reason(tiny, tmp_path, data):
    base = json.loads((tiny / MANIFEST).read_text())
    dst = _fresh(tiny, tmp_path)
    (dst / MANIFEST).write_text(json.dumps(data.draw(damaged_manifests(base))))
    _load_and_step(dst)


@FUZZ
@given(
    graph=st.sampled_from(["reset", "step", "render", "contexts"]),
    how=st.sampled_from(["truncate", "swap", "garbage", "empty"]),
    cut=st.floats(0, 1),
    rehash=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_damaged_files_are_refused_with_a_reason(tiny, tmp_path, graph, how, cut, rehash, seed):
    """Truncated, swapped, replaced or emptied graph and context files, with the manifest's hash updated (so
    the deeper checks are reached) or not."""
    dst = _fresh(tiny, tmp_path)
    m = json.loads((dst / MANIFEST).read_text())
    name = m["contexts"]["file"] if graph == "contexts" else m["graphs"][graph]["file"]
    f = dst / name
    raw = f.read_bytes()
    if how == "truncate":
        f.write_bytes(raw[: int(cut * len(raw))])
    elif how == "swap":
        other = dst / m["graphs"]["step" if graph != "step" else "reset"]["file"]
        f.write_bytes(other.read_bytes())
    elif how == "garbage":
        f.write_bytes(np.random.default_rng(seed).bytes(max(1, int(cut * 4096))))
    else:
        f.write_bytes(b"")
    if rehash:
        digest = sha256_file(f)
        if graph == "contexts":
            m["contexts"]["sha256"] = digest
        else:
            m["graphs"][graph]["sha256"] = digest
        (dst / MANIFEST).write_text(json.dumps(m))
    _load_and_step(dst)


# -- hostile inputs -------------------------------------------------------------------------------
DTYPES = st.sampled_from(
    [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_, np.complex64, "U3", object]
)
VALUES = st.sampled_from([0.0, -1.0, 1.0, 0.5, 1e30, -1e30, np.nan, np.inf, -np.inf, 7, -(2**40)])


def _array(draw, shapes):
    dtype = draw(DTYPES)
    shape = draw(shapes)
    if dtype == "U3":
        return np.full(shape, "abc")
    if dtype is object:
        return np.full(shape, None, dtype=object)
    vals = np.array([draw(VALUES) for _ in range(int(np.prod(shape)) if shape else 1)], np.float64)
    with np.errstate(all="ignore"):
        return vals.reshape(shape).astype(dtype) if shape else vals[0].astype(dtype)


@st.composite
def hostile_actions(draw, n: int, act_shape: tuple):
    good = (n, *act_shape)
    shapes = st.sampled_from([good, good, (n,), (n + 1, *act_shape), (n, *act_shape, 1), (), (0, *act_shape), (1,)])
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.sampled_from([None, "left", [[1, 2]], {"a": 1}, [1.0] * n]))
    return _array(draw, shapes)


@pytest.mark.parametrize("dream", ["Dream-HalfCheetah-v0", "Dream-Pong-v0"])
def test_hostile_actions_are_refused_and_change_nothing(dream):
    n = 3
    env = dreamgym.make_vec(dream, n, noise_scale=0.0)
    twin = dreamgym.make_vec(dream, n, noise_scale=0.0)
    env.reset(seed=0), twin.reset(seed=0)
    shape = env.single_action_space.shape
    good = np.stack([env.single_action_space.sample() for _ in range(n)])
    refused = [0]

    @FUZZ
    @given(a=hostile_actions(n, shape))
    def check(a):
        try:
            obs, *_ = env.step(a)
        except (ActionError, ValueError) as e:
            assert str(e)
            refused[0] += 1
        else:  # a valid batch: the twin takes the same actions (as the env read them)
            twin.step(a)
        o1, *_ = env.step(good)
        o2, *_ = twin.step(good)
        np.testing.assert_array_equal(o1, o2)

    check()
    assert refused[0] > EXAMPLES // 4  # most of what was drawn was hostile
    env.close(), twin.close()


@st.composite
def hostile_contexts(draw, n: int, C: int, obs_shape: tuple, act_shape: tuple):
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from([None, 3, "ctx", {"obs": 1}, {"actions": []}, {"obs": None, "actions": None}]))
    o_shapes = st.sampled_from([(n, C, *obs_shape), (n, C + 1, *obs_shape), (n, *obs_shape), (1, C, *obs_shape)])
    a_shapes = st.sampled_from([(n, C, *act_shape), (n, C - 1, *act_shape), (n,), (n, C, 7)])
    return {"obs": _array(draw, o_shapes), "actions": _array(draw, a_shapes)}


def test_hostile_contexts_are_refused_and_change_nothing():
    n = 3
    env = dreamgym.make_vec("Dream-HalfCheetah-v0", n, noise_scale=0.0)
    env.reset(seed=0)
    b = env.bundle
    C, os_, as_ = b.context_length, b.observation_space.shape, b.action_space.shape
    good = np.zeros((n, *as_), np.float32)

    @FUZZ
    @given(ctx=hostile_contexts(n, C, os_, as_))
    def check(ctx):
        before = env.get_state()
        try:
            env.reset(options={"context": ctx})
        except ValueError as e:
            assert str(e)
            after = env.get_state()
            for k in before:
                np.testing.assert_array_equal(before[k], after[k])
        env.step(good)

    check()
    env.close()

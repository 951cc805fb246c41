"""The engine on its own: the CPU schedule, bit-identical results across schedules, IO binding, state and
frames; the CUDA engine where a GPU works; and `device="auto"` on a machine whose onnxruntime lists CUDA
but cannot load it (simulated: real CPU sessions, onnxruntime's CUDA session creation made to fail)."""

import os
import warnings

import gymnasium as gym
import numpy as np
import onnxruntime as ort
import pytest

import dreamgym
from dreamgym import Bundle, DreamVectorEnv, engine_base, engine_cpu
from dreamgym import engine as E
from dreamgym.engine import Engine, cpu_schedule

HALFCHEETAH_FLOPS, HALFCHEETAH_STATE = 331e3, 608  # per env-step and per env (bytes), roughly the shipped RSSM's
TSSM_FLOPS, TSSM_STATE = 1.22e6, 66_304


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return Bundle.load(dreamgym.shipped_bundles()["Dream-HalfCheetah-v0"])


def _reset(eng, seed: int = 0) -> dict:
    """Reset every row of `eng` from the bundle's contexts with seeded noise; reset.onnx's outputs."""
    b, rng = eng.bundle, np.random.default_rng(seed)
    idx = rng.integers(len(b.contexts["obs"]), size=eng.n)
    feeds = {
        "context_obs": b.contexts["obs"][idx].astype(np.float32),
        "context_actions": b.contexts["actions"][idx].astype(eng.action_dtype),
    }
    for nz in b.noise_for("reset"):
        feeds[nz.name] = rng.standard_normal((eng.n, *nz.shape)).astype(nz.np_dtype)
    return eng.reset_rows(None, feeds)


def _fill(eng, rng: np.random.Generator) -> None:
    """Write a step's action and noise into the engine's input buffers, in place."""
    space = eng.bundle.action_space
    a = eng.inputs["action"]
    a[...] = (
        rng.integers(space.n, size=a.shape) if isinstance(space, gym.spaces.Discrete) else rng.uniform(-1, 1, a.shape)
    )
    for nz in eng.bundle.noise_for("step"):
        eng.inputs[nz.name][...] = rng.standard_normal(eng.inputs[nz.name].shape)


def _rollout(eng, steps: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        _fill(eng, rng)
        eng.step()
        out.append({k: v.copy() for k, v in eng.outputs.items()})
    return out


# -- the CPU schedule ------------------------------------------------------------------------------
def test_schedule_from_the_work_per_call():
    two = {"state_bytes": HALFCHEETAH_STATE, "cores": 2}
    assert cpu_schedule(1, HALFCHEETAH_FLOPS, **two) == (1, 1, E.TILE_ROWS)  # little work: one thread
    assert cpu_schedule(64, HALFCHEETAH_FLOPS, **two) == (1, 1, E.TILE_ROWS)
    assert cpu_schedule(4096, HALFCHEETAH_FLOPS, **two) == (2, 1, E.TILE_ROWS)  # much: a block of rows per core
    # a big state per call is bound by memory traffic: onnxruntime's threads; tiles keep a call small enough
    assert cpu_schedule(4096, TSSM_FLOPS, TSSM_STATE, 2, tile_rows=None) == (1, 2, 4096)
    assert cpu_schedule(4096, TSSM_FLOPS, TSSM_STATE, 2) == (2, 1, E.TILE_ROWS)
    assert cpu_schedule(1, 176e6, 33_280, 2) == (1, 2, E.TILE_ROWS)  # one env of much work cannot be cut
    assert cpu_schedule(4096, HALFCHEETAH_FLOPS, HALFCHEETAH_STATE, 1) == (1, 1, E.TILE_ROWS)  # one core
    # without a FLOP count: one thread up to SINGLE_THREAD_MAX_BATCH envs
    assert cpu_schedule(E.SINGLE_THREAD_MAX_BATCH, None, **two) == (1, 1, E.TILE_ROWS)
    assert cpu_schedule(E.SINGLE_THREAD_MAX_BATCH + 1, None, **two) == (2, 1, E.TILE_ROWS)


def test_forced_threads_and_shards():
    two = {"state_bytes": HALFCHEETAH_STATE, "cores": 2}
    assert cpu_schedule(4096, HALFCHEETAH_FLOPS, threads=2, **two) == (1, 2, E.TILE_ROWS)  # threads: no shards
    assert cpu_schedule(16, HALFCHEETAH_FLOPS, shards=2, **two) == (2, 1, E.TILE_ROWS)
    assert cpu_schedule(3, HALFCHEETAH_FLOPS, shards=8, **two) == (3, 1, E.TILE_ROWS)  # never more shards than rows
    assert cpu_schedule(1000, HALFCHEETAH_FLOPS, shards=1, tile_rows=None, **two) == (1, 2, 1000)


def test_engine_takes_the_schedule(bundle, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    small, big = Engine(bundle, 16, device="cpu"), Engine(bundle, 1024, device="cpu")
    assert (small.shards, small.threads, small._pool) == (1, 1, None)
    assert small._one is not None  # one call per step: the fast path
    assert (big.shards, big.threads) == (2, 1) and len(big._bindings[0]) == 2
    assert [len(t) for t in big._tiles] == [1, 1]  # 512 rows per shard: one tile each
    monkeypatch.setattr(engine_cpu, "SHARD_MAX_STATE_BYTES", 1000)  # as if the state were large
    big_state = Engine(bundle, 1024, device="cpu")
    assert (big_state.shards, big_state.threads) == (1, 2)
    assert [len(t) for t in big_state._tiles] == [2]  # 1024 rows in two calls of 512
    for e in (small, big, big_state):
        assert e.session("step").get_session_options().intra_op_num_threads == e.threads
        e.close()


@pytest.mark.parametrize(
    "kw",
    [
        {"threads": 2, "tile_rows": None},
        {"shards": 2, "tile_rows": None},
        {"shards": 2, "tile_rows": 5},
        {"shards": 1, "tile_rows": 8},
        {"shards": 3, "tile_rows": 7},
        {"threads": 2},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_every_schedule_gives_the_same_numbers(bundle_id, kw):
    """Rows are independent and each is computed by the same kernels whichever call it falls in."""
    b, n = Bundle.load(dreamgym.shipped_bundles()[bundle_id]), 37
    results = []
    for options in ({"threads": 1, "tile_rows": None}, kw):
        eng = Engine(b, n, device="cpu", **options)
        _reset(eng)
        out = _rollout(eng, 3)
        results.append((out, eng.get_state()))
        eng.close()
    (want, want_state), (got, state) = results
    for w, g in zip(want, got):
        for k in w:
            np.testing.assert_array_equal(g[k], w[k], err_msg=k)
    for k in want_state:
        np.testing.assert_array_equal(state[k], want_state[k], err_msg=k)


# -- IO binding, state, frames ------------------------------------------------------------------------
def test_io_binding_reads_inputs_and_writes_outputs_in_place(bundle):
    eng = Engine(bundle, 4, device="cpu", shards=2, tile_rows=1)  # two shards of two one-row tiles
    assert len(eng._bindings) == 2  # bindings A -> B and B -> A, made once
    _reset(eng)
    start = eng.get_state()
    inputs, outputs = dict(eng.inputs), dict(eng.outputs)
    _fill(eng, np.random.default_rng(0))
    eng.step()
    first = {k: v.copy() for k, v in eng.outputs.items()}
    assert all(eng.inputs[k] is v for k, v in inputs.items()) and all(eng.outputs[k] is v for k, v in outputs.items())
    # the same state with another action in row 2 only: only row 2's outputs move
    eng.set_state(start)
    eng.inputs["action"][2] = -eng.inputs["action"][2]
    eng.step()
    changed = np.abs(eng.outputs["obs"] - first["obs"]).max(axis=1) > 0
    assert changed.tolist() == [False, False, True, False]
    # the step reads the noise buffers too: zero noise, other outputs
    eng.set_state(start)
    for nz in bundle.noise_for("step"):
        eng.inputs[nz.name][...] = 0
    eng.step()
    assert not np.array_equal(eng.outputs["obs"], first["obs"])
    eng.close()


def test_state_of_all_rows_and_of_some(bundle):
    n = 6
    eng = Engine(bundle, n, device="cpu")
    _reset(eng)
    _rollout(eng, 1)  # the current state now sits in the second buffer set
    rng = np.random.default_rng(3)
    new = {s.name: rng.standard_normal((n, *s.shape)).astype(s.np_dtype) for s in bundle.state}
    eng.set_state(new)
    got = eng.get_state()
    for k, v in new.items():
        np.testing.assert_array_equal(got[k], v)
    got[bundle.state[0].name][...] = 7  # a copy: the engine's state is not touched
    assert not (eng.get_state()[bundle.state[0].name] == 7).any()
    rows = np.array([1, 4])
    some = {s.name: np.full((2, *s.shape), 0.5, s.np_dtype) for s in bundle.state}
    eng.set_state(some, rows)
    after = eng.get_state()
    others = np.setdiff1d(np.arange(n), rows)
    for k in new:
        np.testing.assert_array_equal(after[k][rows], some[k])
        np.testing.assert_array_equal(after[k][others], new[k][others])
        np.testing.assert_array_equal(eng.get_state(rows)[k], some[k])
    # a state set into either buffer set steps the same
    other = Engine(bundle, n, device="cpu")
    other.set_state(after)
    assert (eng.cur, other.cur) == (1, 0)
    a, b = _rollout(eng, 2), _rollout(other, 2)
    np.testing.assert_array_equal(a[-1]["obs"], b[-1]["obs"])
    eng.close()
    other.close()


def test_reset_rows_writes_only_those_rows(bundle):
    eng = Engine(bundle, 5, device="cpu")
    _reset(eng, seed=0)
    before = eng.get_state()
    b, rng, rows = bundle, np.random.default_rng(9), np.array([0, 3])
    feeds = {
        "context_obs": b.contexts["obs"][:2].astype(np.float32),
        "context_actions": b.contexts["actions"][:2].astype(eng.action_dtype),
    }
    for nz in b.noise_for("reset"):
        feeds[nz.name] = rng.standard_normal((2, *nz.shape)).astype(nz.np_dtype)
    out = eng.reset_rows(rows, feeds)
    after = eng.get_state()
    for s in b.state:
        np.testing.assert_array_equal(after[s.name][rows], out[s.name])
        np.testing.assert_array_equal(after[s.name][[1, 2, 4]], before[s.name][[1, 2, 4]])


def test_render_frames(bundle):
    eng = Engine(bundle, 3, device="cpu")
    _reset(eng)
    frames = eng.render()
    assert frames.shape == (3, *bundle.frame_shape) and frames.dtype == np.uint8
    first = frames.copy()
    _rollout(eng, 2)
    assert eng.render() is frames  # one buffer, rewritten
    assert not np.array_equal(frames, first)  # of the current state, whichever buffer set holds it
    eng.close()


def test_device_choice_on_this_onnxruntime(bundle):
    """On the CPU build (no CUDA provider listed) 'auto' is the CPU without a word, and 'cuda' names what is
    missing and the pip command that fixes it."""
    if E.CUDA in E.available_providers():
        pytest.skip("this onnxruntime lists CUDA")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert E.choose_device("auto") == "cpu"
    with pytest.raises(ValueError, match=r'CUDAExecutionProvider.*pip install "dreamgym\[gpu\]"'):
        DreamVectorEnv(dreamgym.resolve("Dream-HalfCheetah-v0"), 2, device="cuda")
    with pytest.raises(ValueError, match="device must be"):
        Engine(bundle, 1, device="tpu")


# -- CUDA that is listed but cannot load (simulated) ---------------------------------------------------
@pytest.fixture
def fresh_probe(monkeypatch):
    """A process that has not probed CUDA yet, and one that forgets the simulated result afterwards."""
    E.cuda_problem.cache_clear()
    monkeypatch.setattr(engine_base, "_warned_cpu_fallback", False)
    yield
    E.cuda_problem.cache_clear()


MISSING = "libcublasLt.so.13: cannot open shared object file: No such file or directory"


@pytest.fixture(params=["raises", "falls-back"])
def broken_cuda(request, monkeypatch, fresh_probe):
    """onnxruntime-gpu on a machine without CUDA 13 / cuDNN 9: the provider is listed, preload_dlls prints
    what failed, and a CUDA session either raises (as onnxruntime does without its fallback) or quietly
    opens on the CPU provider (as it does with it)."""
    real_session, calls = ort.InferenceSession, []

    def session(path, sess_options=None, providers=None, **kw):
        names = [p[0] if isinstance(p, tuple) else p for p in providers or []]
        if E.CUDA in names:
            if request.param == "raises":
                raise RuntimeError(
                    "/onnxruntime_src/onnxruntime/python/onnxruntime_pybind_state.cc:1240 "
                    "CUDA Provider not available, can't get interface for it"
                )
            providers = ["CPUExecutionProvider"]
        return real_session(path, sess_options=sess_options, providers=providers)

    def preload_dlls(*args, **kwargs):
        calls.append("preload")
        print(f"Failed to load libcublasLt.so.13: {MISSING}")

    monkeypatch.setattr(ort, "get_available_providers", lambda: [E.CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(ort, "preload_dlls", preload_dlls, raising=False)
    return request.param, calls


def test_auto_falls_back_to_the_cpu_and_warns_once(bundle, broken_cuda):
    kind, calls = broken_cuda
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engines = [Engine(bundle, 2), Engine(bundle, 3, device="auto")]
        env = DreamVectorEnv(dreamgym.resolve("Dream-HalfCheetah-v0"), 2)
    assert [e.device for e in engines] == ["cpu", "cpu"] and env.device == "cpu"
    ours = [w for w in caught if "dreamgym" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    msg = str(ours[0].message)
    assert "device='auto' runs on the CPU" in msg and MISSING in msg and 'pip install "dreamgym[gpu]"' in msg
    assert ("can't get interface" in msg) if kind == "raises" else ("CPUExecutionProvider'] only" in msg)
    assert calls == ["preload"]  # probed once per process
    env.reset(seed=0)  # and the fallback engine works
    env.step(np.zeros((2, 6), np.float32))
    env.close()


def test_cuda_asked_for_but_broken_raises(bundle, broken_cuda):
    with pytest.raises(ValueError, match="device='cuda' was asked for") as err:
        Engine(bundle, 2, device="cuda")
    assert MISSING in str(err.value) and 'pip install "dreamgym[gpu]"' in str(err.value)


# -- a working GPU -------------------------------------------------------------------------------------
def _need_cuda():
    problem = E.cuda_problem()
    if problem:
        pytest.skip(f"no usable CUDA: {problem}")


def test_cuda_engine_matches_the_cpu(bundle_id):
    _need_cuda()
    b = Bundle.load(dreamgym.shipped_bundles()[bundle_id])
    cpu, gpu = Engine(b, 8, device="cpu"), Engine(b, 8, device="cuda")
    assert gpu.device == "cuda" and E.CUDA in gpu.session("step").get_providers()
    for eng in (cpu, gpu):
        _reset(eng)
    for c, g in zip(_rollout(cpu, 5), _rollout(gpu, 5)):
        for k in c:
            np.testing.assert_allclose(g[k].astype(np.float64), c[k].astype(np.float64), atol=1e-3, err_msg=k)
    cpu.close()
    gpu.close()


def test_cuda_engine_state_and_frames(bundle):
    _need_cuda()
    eng = Engine(bundle, 4, device="cuda")
    _reset(eng)
    _rollout(eng, 1)
    state = eng.get_state()
    some = {s.name: np.zeros((1, *s.shape), s.np_dtype) for s in bundle.state}
    eng.set_state(some, np.array([2]))
    after = eng.get_state()
    for k in state:
        np.testing.assert_array_equal(after[k][[0, 1, 3]], state[k][[0, 1, 3]])
        assert not after[k][2].any()
    frames = eng.render()
    assert frames.shape == (4, *bundle.frame_shape) and frames.dtype == np.uint8

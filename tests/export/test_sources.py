"""The real envs behind the dreams, through dreamgym.source's one interface: every shipped bundle's source,
a plain Gymnasium env, and the errors for a kind nobody provides."""

import dataclasses

import numpy as np
import pytest

import dreamgym
from dreamgym.errors import DependencyNotInstalled
from dreamgym.manifest import Source
from dreamgym.source import SourceEnv, open_source_env, source_kinds

SIMULATOR = {"mujoco": "mujoco", "ale": "ale_py", "gym": "pygame"}  # what each kind needs here to run


def manifest(id):
    return dreamgym.Bundle.load(dreamgym.resolve(id)).manifest


def with_source(m, **source):
    return dataclasses.replace(m, source=Source(**source))


def test_the_export_extra_provides_three_kinds():
    assert {"mujoco", "ale", "gym"} <= set(source_kinds())


@pytest.mark.parametrize("id", sorted(dreamgym.shipped_bundles(multi_agent=False)))
def test_shipped_sources_step_render_and_rewind(id):
    m = manifest(id)
    pytest.importorskip(SIMULATOR[m.source.render.get("kind", "gym")])
    b = dreamgym.Bundle.load(dreamgym.resolve(id))
    real = open_source_env(m, seed=3)
    try:
        assert isinstance(real, SourceEnv)
        obs = real.reset()
        assert obs.shape == b.observation_space.shape
        np.testing.assert_array_equal(obs, real.reset(seed=3))  # the constructor's seed is the first reset's
        f = real.frame()
        assert f.dtype == np.uint8 and f.shape == tuple(m.frame_shape)
        # a latent-action dream's actions are codes, not the game's: the real env takes its own
        space = real.env.action_space if "latent" in m.keymap else b.action_space
        space.seed(0)
        actions = [space.sample() for _ in range(6)]
        for a in actions[:2]:
            real.step(a)
        snap, frame = real.snapshot(), real.frame()
        first = [real.step(a) for a in actions[2:]]
        real.restore(snap)
        np.testing.assert_array_equal(real.frame(), frame)
        again = [real.step(a) for a in actions[2:]]
        for (o1, r1, *_), (o2, r2, *_) in zip(first, again):
            np.testing.assert_array_equal(o1, o2)
            assert r1 == r2
        plain = real.make_env()  # what `dreamgym bench` steps: the same spaces, no frames
        assert plain.observation_space.shape == real.env.observation_space.shape and plain.render_mode is None
        plain.close()
    finally:
        real.close()


def test_a_plain_gymnasium_env_is_resized_to_the_frame_shape():
    pytest.importorskip("pygame")  # classic control renders with pygame
    m = dataclasses.replace(
        with_source(manifest("Dream-HalfCheetah-v0"), env_id="CartPole-v1", render={"kind": "gym"}),
        frame_shape=(32, 48, 3),
    )
    real = open_source_env(m)
    try:
        real.reset(seed=0)
        obs, r, _, trunc = real.step(np.int64(1))
        assert obs.shape == (4,) and r == 1.0 and not trunc
        assert real.frame().shape == (32, 48, 3)
        assert real.snapshot() is None  # a plain env cannot go back
    finally:
        real.close()


def test_a_kind_nobody_provides_names_the_pip_command():
    m = with_source(manifest("Dream-HalfCheetah-v0"), env_id="Nowhere-v0", render={"kind": "warp-drive"})
    with pytest.raises(DependencyNotInstalled, match=r'warp-drive.*pip install "dreamgym\[export\]"'):
        open_source_env(m)


def test_a_missing_env_names_the_pip_command():
    m = with_source(manifest("Dream-HalfCheetah-v0"), env_id="NoSuchEnv-v9", render={"kind": "gym"})
    with pytest.raises(DependencyNotInstalled, match=r'NoSuchEnv-v9.*pip install "dreamgym\[export\]"'):
        open_source_env(m)


def test_no_source_env_is_a_value_error():
    with pytest.raises(ValueError, match="names no source env"):
        open_source_env(with_source(manifest("Dream-HalfCheetah-v0")))


def test_the_sources_module_needs_no_torch():
    import subprocess
    import sys
    import tempfile

    code = "import sys, dreamgym.export.data.sources; assert 'torch' not in sys.modules; print('ok')"
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_bench_vectorises_the_source_env():
    pytest.importorskip("mujoco")
    from dreamgym.bench import measure_real

    res, why = measure_real(manifest("Dream-HalfCheetah-v0"), seconds=0.02, sizes=(1, 2))
    assert why == "" and res["env_id"] == "HalfCheetah-v5" and set(res["vector_steps_per_s"]) == {1, 2}

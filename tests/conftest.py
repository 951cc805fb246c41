import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import dreamgym  # noqa: E402

SHIPPED = dreamgym.shipped_bundles(multi_agent=False)  # the single-agent dreams (Gymnasium)
PARALLEL = dreamgym.shipped_bundles(multi_agent=True)  # the multi-agent dreams (PettingZoo)
DEFAULT_ID = "Dream-HalfCheetah-v0"


def pytest_generate_tests(metafunc):
    # every shipped bundle is tested by adding it: tests that take `bundle_id` run once per single-agent
    # bundle, tests that take `parallel_id` once per multi-agent one
    if "bundle_id" in metafunc.fixturenames:
        metafunc.parametrize("bundle_id", sorted(SHIPPED), ids=sorted(SHIPPED))
    if "parallel_id" in metafunc.fixturenames:
        metafunc.parametrize("parallel_id", sorted(PARALLEL), ids=sorted(PARALLEL))


@pytest.fixture
def default_bundle() -> Path:
    assert DEFAULT_ID in SHIPPED, f"{DEFAULT_ID} must be shipped in assets/"
    return SHIPPED[DEFAULT_ID]


@pytest.fixture
def bundle_copy(tmp_path, default_bundle) -> Path:
    """A private copy of the default bundle that a test may damage."""
    dst = tmp_path / "bundle"
    shutil.copytree(default_bundle, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_tag(tmp_path_factory) -> Path:
    """A tiny multi-agent bundle (three agents of mpe2 simple_tag), built by the recipe's tiny preset: real
    games, the joint step (joint-mlp) trained a few steps, exported with its scripted policies. About 10 s."""
    import dataclasses

    from dreamgym.export.train.recipes import simple_tag

    root = tmp_path_factory.mktemp("tiny-tag")
    r = dataclasses.replace(simple_tag.TINY, run=str(root / "run"), data=str(root / "data"), out=str(root / "bundle"))
    simple_tag.build(r, progress=False)
    return root / "bundle"


def write_clips(folder: Path, n: int = 3, frames: int = 40, seed: int = 0) -> Path:
    """Short videos a test can learn from: a bright block that a hidden action moves left, right or not at all
    over a still background, written as mp4 and gif files of a size that is not the dream's."""
    import imageio.v2 as imageio
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        bg = np.zeros((64, 96, 3), np.uint8)
        bg[:, :, 2] = 60
        bg[48:, :, 1] = 90
        x, clip = 40, []
        for _ in range(frames):
            x = int(np.clip(x + 6 * rng.integers(-1, 2), 0, 84))
            f = bg.copy()
            f[36:48, x : x + 12] = (250, 220, 40)
            clip.append(f)
        if i % 2 == 0:
            imageio.mimwrite(folder / f"clip{i}.mp4", clip, fps=15, macro_block_size=16)
        else:
            imageio.mimwrite(folder / f"clip{i}.gif", clip, duration=1 / 15)
    return folder


@pytest.fixture(scope="session")
def tiny_genie(tmp_path_factory) -> Path:
    """A tiny latent-action bundle learned by `dreamgym train genie --preset tiny --videos DIR` from clips this
    fixture writes (no actions anywhere). About 10 s."""
    from dreamgym.export.train.recipes import main

    root = tmp_path_factory.mktemp("tiny-genie")
    videos = write_clips(root / "videos")
    args = ["--preset", "tiny", "--videos", str(videos), "--run", str(root / "run"), "--out", str(root / "bundle")]
    main("genie", [*args, "--id", "Dream-VideoTiny-v0"])
    return root / "bundle"


@pytest.fixture
def clips_writer():
    """`write_clips(folder, n, frames, seed)`, for tests that need videos of their own."""
    return write_clips

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
    games, a joint RSSM trained a few steps, exported with its scripted policies. About 10 s."""
    import dataclasses

    from dreamgym.export.recipes import simple_tag

    root = tmp_path_factory.mktemp("tiny-tag")
    r = dataclasses.replace(simple_tag.TINY, run=str(root / "run"), data=str(root / "data"), out=str(root / "bundle"))
    simple_tag.build(r, progress=False)
    return root / "bundle"

"""The command lines stay where pyproject.toml's entry points name them (the import contracts and the size of
every module are checked for the whole repository in tests/test_layers.py)."""

import importlib

import pytest


@pytest.mark.parametrize("entry", ["dreamgym.play.app:cli", "dreamgym.play.replay:cli"])
def test_the_entry_points_resolve(entry):
    module, name = entry.split(":")
    assert callable(getattr(importlib.import_module(module), name))

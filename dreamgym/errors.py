"""Errors raised by dreamgym. Each names the bad value, what was expected, and how to fix it."""

from __future__ import annotations

from gymnasium.error import DependencyNotInstalled, Error


class BundleError(Error):
    """A bundle folder is missing, malformed, or does not match its manifest."""


class ActionError(Error, ValueError):
    """An action batch has the wrong shape or dtype, or holds values that cannot be used."""


__all__ = ["ActionError", "BundleError", "DependencyNotInstalled", "Error"]


def missing_onnxruntime() -> DependencyNotInstalled:
    return DependencyNotInstalled(
        "dreamgym needs an ONNX runtime and neither onnxruntime nor onnxruntime-gpu is installed. "
        'Run `pip install "dreamgym[cpu]"` (any machine) or `pip install "dreamgym[gpu]"` (NVIDIA CUDA); '
        "never both, they overwrite each other."
    )

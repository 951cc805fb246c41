"""Declarative JSON for Gymnasium spaces, so a manifest can describe them without pickles.

    {"type": "Box", "low": -1.0, "high": 1.0, "shape": [6], "dtype": "float32"}
    {"type": "Discrete", "n": 6}
    {"type": "MultiDiscrete", "nvec": [3, 3]}
    {"type": "MultiBinary", "n": 4}

`low` and `high` are a number or a nested list; "inf" and "-inf" stand for unbounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from .errors import BundleError


def _bound(value: Any) -> Any:
    if isinstance(value, str):
        if value in ("inf", "+inf", "-inf"):
            return float(value)
        raise BundleError(f"space bound {value!r} is not a number; use a number, 'inf' or '-inf'")
    if isinstance(value, list):
        return [_bound(v) for v in value]
    return value


def _json_bound(arr: np.ndarray) -> Any:
    if np.all(arr == arr.flat[0]):
        arr = arr.flat[0]
    if np.ndim(arr) == 0:
        v = float(arr)
        return str(v) if np.isinf(v) else v
    return [_json_bound(a) for a in arr]


MAX_SIZE = 1 << 28
"""the most values a space may hold (a larger one is a damaged manifest, not a dream)"""


def _check_shape(shape: Any, d: dict) -> None:
    if not isinstance(shape, list | tuple) or len(shape) > 8:
        raise ValueError(f"shape must be a list of at most 8 sizes, got {shape!r}")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ValueError(f"shape must hold non-negative integers, got {shape!r}")
    if int(np.prod(shape, dtype=np.float64)) > MAX_SIZE:
        raise ValueError(f"shape {list(shape)} holds more than {MAX_SIZE} values")


def space_from_json(d: dict) -> spaces.Space:
    """Build a space from its JSON description; raise `BundleError` with the reason otherwise."""
    if not isinstance(d, dict) or "type" not in d:
        raise BundleError(f"a space must be an object with a 'type' key, got {d!r}")
    kind = d["type"]
    try:
        if kind == "Box":
            _check_shape(d["shape"], d)
            low, high = (np.asarray(_bound(d[k]), dtype=np.float64) for k in ("low", "high"))
            if low.size > MAX_SIZE or high.size > MAX_SIZE:
                raise ValueError(f"bounds of more than {MAX_SIZE} values")
            return spaces.Box(
                low=float(low) if low.ndim == 0 else low,
                high=float(high) if high.ndim == 0 else high,
                shape=tuple(d["shape"]),
                dtype=np.dtype(d.get("dtype", "float32")),
            )
        if kind == "Discrete":
            return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
        if kind == "MultiDiscrete":
            nvec = np.asarray(d["nvec"], dtype=np.int64)
            _check_shape(list(nvec.shape), d)
            return spaces.MultiDiscrete(nvec)
        if kind == "MultiBinary":
            _check_shape([d["n"]] if isinstance(d["n"], int) else d["n"], d)
            return spaces.MultiBinary(d["n"])
    except (KeyError, TypeError, ValueError, AssertionError, OverflowError) as e:  # gymnasium asserts its checks
        raise BundleError(f"cannot build a {kind} space from {d!r}: {e}") from e
    raise BundleError(f"unknown space type {kind!r}; expected Box, Discrete, MultiDiscrete or MultiBinary")


def space_to_json(space: spaces.Space) -> dict:
    """The inverse of `space_from_json`."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": _json_bound(space.low),
            "high": _json_bound(space.high),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.Discrete):
        out = {"type": "Discrete", "n": int(space.n)}
        if int(space.start) != 0:
            out["start"] = int(space.start)
        return out
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": space.n if isinstance(space.n, int) else list(space.n)}
    raise TypeError(f"no JSON form for {type(space).__name__}")

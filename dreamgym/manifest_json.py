"""A small typed JSON reader and writer for the manifest's declarations (`dreamgym.manifest` and
`dreamgym.manifest_specs`): `_parse` checks a JSON value against a type annotation (dataclasses, optional
values, tuples, mappings, spaces, plain scalars) and builds it, a `BundleError` naming the key and the
expected form otherwise; `_dump` writes one back. It knows no field of the manifest.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

import numpy as np
from gymnasium import spaces

from .errors import BundleError
from .spaces import space_from_json, space_to_json


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        return f"a list of {_type_name(args[0])}"
    if origin in (dict, Mapping):
        return "an object"
    if tp is spaces.Space:
        return "a space object ({'type': 'Box', ...})"
    if dataclasses.is_dataclass(tp):
        req = [f.name for f in dataclasses.fields(tp) if _required(f)]
        return f"an object with {', '.join(map(repr, req)) or 'optional keys'}"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _parse(tp: Any, v: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = BundleError(
        f"{where} must be {_type_name(tp)}, got {json.dumps(v)[:80] if _jsonable(v) else type(v).__name__}"
    )
    if origin in (Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        try:
            return _parse(next(a for a in args if a is not type(None)), v, where)
        except BundleError as e:
            if str(e).startswith(f"{where} must be "):  # this value's own type is wrong: name the whole union
                raise bad from None
            raise
    if tp is spaces.Space:
        return space_from_json(v)
    if dataclasses.is_dataclass(tp):
        if not isinstance(v, dict):
            raise bad
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = sorted(set(v) - set(fields))
        if unknown:
            raise BundleError(f"{where} has the unknown key {unknown[0]!r}; expected keys: {', '.join(fields)}")
        kw = {}
        for name, f in fields.items():
            if name in v:
                kw[name] = _parse(hints[name], v[name], f"{where}.{name}")
            elif _required(f):
                raise BundleError(f"{where} lacks the required key {name!r} ({_type_name(hints[name])})")
        return tp(**kw)
    if origin is tuple:
        if not isinstance(v, list):
            raise bad
        return tuple(_parse(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
    if origin in (dict, Mapping):
        if not isinstance(v, dict):
            raise bad
        if args and args[1] is not Any:
            return {k: _parse(args[1], x, f"{where}.{k}") for k, x in v.items()}
        return v
    if tp is bool:
        if type(v) is not bool:
            raise bad
        return v
    if tp is int:
        if type(v) is not int:
            raise bad
        return v
    if tp is float:
        if type(v) not in (int, float):
            raise bad
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise bad
        return v
    raise TypeError(f"no JSON reader for {tp!r}")  # a declaration above that this reader does not know


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def _dump(v: Any) -> Any:
    if isinstance(v, spaces.Space):
        return space_to_json(v)
    if dataclasses.is_dataclass(v):
        out = {}
        for f in dataclasses.fields(v):
            x = getattr(v, f.name)
            if x is None and f.default is None:
                continue  # optional and absent
            out[f.name] = _dump(x)
        return out
    if isinstance(v, (tuple, list)):
        return [_dump(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _dump(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    return v

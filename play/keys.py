"""Keyboard -> action, from the manifest's keymap (or a user's JSON file of the same form).

    {"continuous": [{"dim": 0, "name": "back thigh", "keys": ["q", "a"]}, ...],   # (negative, positive)
     "rate": 0.15, "relax": 0.25}                                                # per frame
    {"discrete": {"default": 0, "bindings": [{"keys": ["up"], "action": 2},
                                            {"keys": ["up", "space"], "action": 4}]}}
    {"latent": {"n": 8, "default": 2, "bindings": [{"keys": ["a"], "action": 3}]}}  # number keys 1..n, more keys
    {"push": {"a": [1], "d": [2], "s": [3], "w": [4]}}                           # key -> dims at their high

Push (a multi-agent dream's players, one keymap each): a held key sets its dimensions to their upper
bound, every other dimension stays at its lower bound (MPE's five pushes: W and A together go up-left).

Continuous: a held key pushes its dimension toward -1 or +1 at `rate` per frame; with neither held the
value relaxes toward 0 at `relax` per frame; [-1, 1] maps linearly onto the action bounds. Discrete:
the binding with the most keys, all held, wins; otherwise the default (a no-op). Latent: number key k
holds latent action k-1, a bound key its action (a Genie recipe binds the keys of the real action a code was
named after), else the default (the code named "no-op", or 0). Latent keymaps can be changed while playing
(`bind`) and written back in this form (`to_json`) for `--keys`. Key names are pygame's (``pygame.key.name``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from gymnasium import spaces

# keys the front end keeps for itself; a keymap may not use them
CONTROL_KEYS = {
    "escape": "quit",
    "space": "pause / resume",
    "return": "reset to a fresh real context",
    "right": "single step (paused)",
    "left": "rewind one step (hold to keep rewinding)",
    "tab": "person <-> bundled policy",
    "f1": "help",
    "f5": "start / stop recording mp4",
    "f6": "multiverse view",
    "f7": "real env side by side",
    "f8": "rebind a key to a latent action (latent-action dreams)",
}


class KeymapError(ValueError):
    pass


class KeyMap:
    def __init__(self, keymap: dict, action_space: spaces.Space, key_code, reserved: dict | None = None):
        """`key_code` turns a key name into a code (pygame.key.key_code); injected to keep this testable.
        `reserved`: the front end's own keys, which the keymap may not use (default: `CONTROL_KEYS`)."""
        reserved = CONTROL_KEYS if reserved is None else reserved
        self.space = action_space
        self.kind = next((k for k in ("continuous", "discrete", "latent", "push") if k in keymap), None)
        if self.kind is None:
            if isinstance(action_space, spaces.Discrete):
                self.kind, keymap = "latent", {"latent": {"n": int(action_space.n)}}
            else:
                raise KeymapError("the keymap must have a 'continuous', 'discrete' or 'latent' section")
        self.keymap = keymap

        def code(name: str) -> int:
            if name.lower() in reserved:
                raise KeymapError(
                    f"key {name!r} is one of the front end's control keys {sorted(reserved)}; choose another"
                )
            try:
                return key_code(name)
            except ValueError as e:
                raise KeymapError(
                    f"unknown key name {name!r} in the keymap (use pygame key names like 'a', 'up', 'left shift')"
                ) from e

        if self.kind == "continuous":
            if not isinstance(action_space, spaces.Box):
                raise KeymapError("a 'continuous' keymap needs a Box action space")
            self.pairs = []
            for entry in keymap["continuous"]:
                neg, pos = entry["keys"]
                self.pairs.append((int(entry["dim"]), code(neg), code(pos), entry.get("name", f"dim {entry['dim']}")))
            self.rate = float(keymap.get("rate", 0.15))
            self.relax = float(keymap.get("relax", 0.25))
            self.value = np.zeros(action_space.shape, np.float32)
            low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
            self.mid, self.half = (low + high) / 2, (high - low) / 2
        elif self.kind == "discrete":
            d = keymap["discrete"]
            self.default = int(d.get("default", 0))
            self.bindings = sorted(([code(k) for k in b["keys"]], int(b["action"])) for b in d["bindings"])
            self.bindings.sort(key=lambda b: -len(b[0]))
            self.names = {int(b["action"]): "+".join(b["keys"]) for b in d["bindings"]}
        elif self.kind == "push":
            if not isinstance(action_space, spaces.Box):
                raise KeymapError("a 'push' keymap needs a Box action space")
            self.low = action_space.low.astype(np.float32)
            self.high = action_space.high.astype(np.float32)
            self.pushes = []
            for name, dims in keymap["push"].items():
                if not all(0 <= int(d) < self.low.size for d in dims):
                    raise KeymapError(f"key {name!r} pushes dimensions {dims}, outside 0..{self.low.size - 1}")
                self.pushes.append((code(name), [int(d) for d in dims], name))
            self.default = self.low.copy()
        else:
            lat = keymap["latent"]
            n = int(lat["n"])
            digits = "1234567890"[: min(n, 10)]
            self.latent_keys = [(code(c), i) for i, c in enumerate(digits)]
            self.default = int(lat.get("default", 0))
            for b in lat.get("bindings", []):
                keys, a = b["keys"], int(b["action"])
                if len(keys) != 1 or not 0 <= a < n:
                    raise KeymapError(f"a latent binding takes one key and an action in 0..{n - 1}, got {b}")
                self.latent_keys.append((code(keys[0]), a))
            self.n = n
            self._code = code

    @classmethod
    def load(cls, path: str | Path, action_space, key_code) -> KeyMap:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError as e:
            raise KeymapError(f"key binding file {str(path)!r} does not exist") from e
        except json.JSONDecodeError as e:
            raise KeymapError(f"key binding file {str(path)!r} is not valid JSON: {e}") from e
        return cls(data, action_space, key_code)

    def update(self, held: set[int]) -> np.ndarray | int:
        """Advance one frame with the set of held key codes; returns the person's action."""
        if self.kind == "continuous":
            pushed = np.zeros_like(self.value, bool)
            for dim, neg, pos, _ in self.pairs:
                d = (pos in held) - (neg in held)
                if d:
                    self.value[dim] = np.clip(self.value[dim] + d * self.rate, -1, 1)
                    pushed[dim] = True
            rest = ~pushed
            self.value[rest] = np.sign(self.value[rest]) * np.maximum(np.abs(self.value[rest]) - self.relax, 0)
            self.pushed = pushed
            return self.mid + self.value * self.half
        if self.kind == "discrete":
            for keys, action in self.bindings:
                if keys and all(k in held for k in keys):
                    return action
            return self.default
        if self.kind == "push":
            a = self.low.copy()
            for k, dims, _ in self.pushes:
                if k in held:
                    a[dims] = self.high[dims]
            return a
        for k, i in self.latent_keys:
            if k in held:
                return i
        return self.default

    def bind(self, key_name: str, action: int) -> None:
        """Latent keymaps: `key_name` now chooses latent action `action` (replacing what it chose before)."""
        if self.kind != "latent":
            raise KeymapError("only latent-action keymaps are rebound while playing")
        if not 0 <= int(action) < self.n:
            raise KeymapError(f"latent action {action} is outside 0..{self.n - 1}")
        k = self._code(key_name)
        self.latent_keys = [(c, i) for c, i in self.latent_keys if c != k] + [(k, int(action))]

    def to_json(self, key_name) -> dict:
        """A latent keymap in the manifest's form (number keys implied), for `--keys`."""
        digits = {self._code(c) for c in "1234567890"[: min(self.n, 10)]}
        extra = [{"keys": [key_name(k)], "action": i} for k, i in self.latent_keys if k not in digits]
        return {"latent": {"n": self.n, "default": self.default, "bindings": extra}}

    def override(self, policy_action: np.ndarray, held: set[int]) -> np.ndarray:
        """Policy in control: dimensions whose keys are held take the person's value."""
        person = self.update(held)
        if self.kind == "push":
            return person if any(k in held for k, _, _ in self.pushes) else policy_action
        if self.kind != "continuous":
            return person if person != self.default else policy_action
        out = np.array(policy_action, np.float32, copy=True)
        out[self.pushed] = person[self.pushed]
        return out

    def reset(self) -> None:
        if self.kind == "continuous":
            self.value[...] = 0

    def help_lines(self, key_name) -> list[str]:
        if self.kind == "continuous":
            return [f"{key_name(n)}/{key_name(p)}  {name} -/+" for _, n, p, name in self.pairs]
        if self.kind == "push":
            return [f"{name}  pushes {dims}" for _, dims, name in self.pushes]
        if self.kind == "discrete":
            return [f"{'+'.join(key_name(k) for k in keys)}  action {a}" for keys, a in self.bindings] + [
                f"(nothing)  action {self.default}"
            ]
        return [f"{key_name(k)}  latent action {i}" for k, i in self.latent_keys] + [
            f"(nothing)  latent action {self.default}"
        ]

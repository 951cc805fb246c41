"""Trajectories of the shipped bundles, recorded once and compared bit for bit by test_golden.py.

    python tests/dreamgym/golden.py            # rewrite tests/dreamgym/data/golden.npz from the bundles as they are
    python tests/dreamgym/golden.py --add ID   # record a new bundle into it, the others untouched

They were first recorded from the bundles as shipped before the typed manifest (format_version 1), so
the test proves that re-writing the manifests changed no observation, reward, termination or frame.
Rewrite them only when a bundle's graphs change on purpose (a retrained model), and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "golden.npz"
STEPS, NUM_ENVS, SEED = 40, 3, 7
FRAME_STEPS = (0, 13, 40)


def machine() -> dict:
    """What decides whether onnxruntime's float results can be compared bit for bit across runs."""
    import onnxruntime as ort

    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    simd = sorted(f for f in ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile") if f" {f}" in flags)
    return {"machine": platform.machine(), "onnxruntime": ort.__version__, "numpy": np.__version__, "simd": simd}


def _digest(frames: np.ndarray) -> np.ndarray:
    """One sha256 per frame (uint8 [32] rows), so frames are compared exactly without storing them."""
    return np.stack(
        [np.frombuffer(hashlib.sha256(np.ascontiguousarray(f).tobytes()).digest(), np.uint8) for f in frames]
    )


def record(bundle_id: str) -> dict[str, np.ndarray]:
    """A seeded vector-env rollout (state obs, NEXT_STEP autoreset, frames at a few steps) and a seeded
    single-env rollout in pixel mode, under actions drawn from a seeded action space."""
    import gymnasium as gym

    import dreamgym

    out: dict[str, np.ndarray] = {}
    env = dreamgym.make_vec(bundle_id, num_envs=NUM_ENVS, render_mode="rgb_array", device="cpu")
    env.action_space.seed(SEED)
    obs, _ = env.reset(seed=SEED)
    obs_l, rew, term, trunc, acts, frames = [obs], [], [], [], [], {}
    frames[0] = _digest(np.stack(env.render()))
    for t in range(1, STEPS + 1):
        a = env.action_space.sample()
        obs, r, te, tr, _ = env.step(a)
        obs_l.append(obs), rew.append(r), term.append(te), trunc.append(tr), acts.append(a)
        if t in FRAME_STEPS:
            frames[t] = _digest(np.stack(env.render()))
    env.close()
    obs_arr = np.stack(obs_l)
    if obs_arr.dtype == np.uint8:  # frames as observations: their digests
        obs_arr = _digest(obs_arr.reshape(-1, *obs_arr.shape[2:])).reshape(*obs_arr.shape[:2], 32)
    out["vec_obs"], out["vec_reward"] = obs_arr, np.stack(rew)
    out["vec_terminated"], out["vec_truncated"] = np.stack(term), np.stack(trunc)
    out["vec_actions"] = np.stack(acts)
    out["vec_frames"] = np.stack([frames[t] for t in FRAME_STEPS])

    single = gym.make(bundle_id, obs_mode="pixels", device="cpu")
    single.action_space.seed(SEED + 1)
    o, _ = single.reset(seed=SEED + 1)
    pix, rs = [o], []
    for _ in range(STEPS // 2):
        o, r, te, tr, _ = single.step(single.action_space.sample())
        pix.append(o), rs.append(r)
        if te or tr:
            o, _ = single.reset()
            pix.append(o)
    single.close()
    out["single_frames"] = _digest(np.stack(pix))
    out["single_reward"] = np.asarray(rs, np.float64)
    return out


def main(argv: list[str] | None = None) -> None:
    """Record every shipped bundle; `--add ID ...` records only those ids into the existing file, each with
    the machine it was recorded on (`ID/machine`), and leaves every other recording as it was."""
    import dreamgym

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--add"]:
        with np.load(DATA, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k.split("/")[0] not in argv[1:]}
        ids = argv[1:]
    else:
        arrays, ids = {}, sorted(dreamgym.shipped_bundles(multi_agent=False))
        arrays["machine"] = np.array(json.dumps(machine()))
    for bid in ids:
        for k, v in record(bid).items():
            arrays[f"{bid}/{k}"] = v
        if argv[:1] == ["--add"]:
            arrays[f"{bid}/machine"] = np.array(json.dumps(machine()))
        print(f"recorded {bid}")
    DATA.parent.mkdir(exist_ok=True)
    np.savez_compressed(DATA, **arrays)
    print(f"wrote {DATA} ({DATA.stat().st_size / 1e3:.0f} kB) on {machine()}", file=sys.stderr)


if __name__ == "__main__":
    main()

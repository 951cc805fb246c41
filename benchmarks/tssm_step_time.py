"""TSSM step time early and late in an episode: with a fixed-size KV cache they match.

    python benchmarks/tssm_step_time.py [--id Dream-HalfCheetah-TSSM-v0] [--num-envs 1,1024]

Steps one batch of dreams through a whole 1000-step episode and times the steps around step 10 and
around step 900 (median of 50 steps each).
"""

import argparse
import time

import numpy as np

import dreamgym


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--id", default="Dream-HalfCheetah-TSSM-v0")
    ap.add_argument("--num-envs", default="1,1024")
    a = ap.parse_args()
    for n in (int(x) for x in a.num_envs.split(",")):
        env = dreamgym.make_vec(a.id, n)
        env.reset(seed=0)
        act = np.random.default_rng(0).uniform(-1, 1, (n, *env.single_action_space.shape)).astype(np.float32)
        times = []
        for _ in range(1000):
            t0 = time.perf_counter()
            env.step(act)
            times.append(time.perf_counter() - t0)
        early, late = np.median(times[10:60]) * 1e6, np.median(times[900:950]) * 1e6
        print(
            f"{a.id} num_envs={n}: step 10-60 {early:,.1f} us, step 900-950 {late:,.1f} us "
            f"(ratio {late / early:.2f}); window W={env.bundle.manifest.model.config['window']}"
        )


if __name__ == "__main__":
    main()

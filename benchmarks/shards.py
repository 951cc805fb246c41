"""The CPU step's parallel schedule, measured: onnxruntime's intra-op thread pool against one block of
rows per core (each a single-threaded run on its own thread), in one run.

    python benchmarks/shards.py [--id Dream-HalfCheetah-v0] [--seconds 2] [--json]

Rows: env-steps/s through the vector API for 1 thread, 2 intra-op threads, and 2 shards of rows.
"""

import argparse
import json
import os
import time

import dreamgym
from dreamgym import DreamVectorEnv
from dreamgym.bench import _timed


def rate(bundle, n, seconds, **kw) -> float:
    from dreamgym.engine import Engine

    env = DreamVectorEnv(bundle, n)
    env.engine.close()
    env.engine = Engine(env.bundle, n, **kw)  # the schedule under test
    env._step_noise = [(nz, env.engine.inputs[nz.name]) for nz in env.bundle.noise_for("step")]
    env.reset(seed=0)
    env.action_space.seed(0)
    a = env.action_space.sample()
    sec, _ = _timed(lambda: env.step(a), seconds)
    env.close()
    return n / sec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--id", default="Dream-HalfCheetah-v0")
    ap.add_argument("--sizes", default="16,32,64,128,256,1024,4096")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    b = dreamgym.Bundle.load(dreamgym.resolve(a.id))
    cores = os.cpu_count() or 1
    rows = []
    print(f"{a.id}, {cores} cores, {time.strftime('%Y-%m-%d')}")
    print(f"{'num_envs':>8} {'1 thread':>10} {f'{cores} threads':>10} {f'{cores} shards':>10} {'shards ÷ best other':>20}")
    for n in (int(x) for x in a.sizes.split(",")):
        r = {"num_envs": n, "one_thread": rate(b, n, a.seconds, threads=1),
             "intra_op_threads": rate(b, n, a.seconds, threads=cores),
             "shards": rate(b, n, a.seconds, shards=cores)}
        rows.append(r)
        best = max(r["one_thread"], r["intra_op_threads"])
        print(f"{n:>8} {r['one_thread']:>10,.0f} {r['intra_op_threads']:>10,.0f} {r['shards']:>10,.0f} {r['shards'] / best:>19.2f}×")
    if a.json:
        print(json.dumps({"id": a.id, "cores": cores, "rows": rows}))


if __name__ == "__main__":
    main()

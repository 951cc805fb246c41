"""The CPU step's parallel schedule, measured: onnxruntime's intra-op thread pool against one block of
rows per core (each a single-threaded run on its own thread), and rows stepped in cache-sized tiles, in
one run.

    python benchmarks/shards.py [--id Dream-HalfCheetah-RSSM-v0] [--seconds 2] [--json]

Rows: env-steps/s through the vector API for 1 thread, 2 intra-op threads, 2 shards of rows (each in
one call), 2 shards stepped in tiles of at most TILE_ROWS rows, and the engine's own choice.
"""

import argparse
import json
import os
import time

import dreamgym
from dreamgym import DreamVectorEnv
from dreamgym.bench import _timed
from dreamgym.engine import TILE_ROWS


def rate(bundle, n, seconds, **kw) -> tuple[float, str]:
    """env-steps/s of `n` envs on a schedule (Engine keyword arguments; none: the engine's own choice)."""
    threads = kw.pop("threads", None)
    env = DreamVectorEnv(bundle, n, threads=threads, engine_options=kw)  # the schedule under test
    env.reset(seed=0)
    env.action_space.seed(0)
    a = env.action_space.sample()
    sec = _timed(lambda: env.step(a), seconds)[0]
    e = env.engine
    sched = f"{e.shards}s x {e.threads}t, tiles {min(e.tile_rows, n)}"
    env.close()
    return n / sec, sched


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--id", default="Dream-HalfCheetah-RSSM-v0")
    ap.add_argument("--sizes", default="16,32,64,128,256,1024,4096")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    b = dreamgym.Bundle.load(dreamgym.resolve(a.id))
    cores = os.cpu_count() or 1
    rows = []
    print(f"{a.id}, {cores} cores, {time.strftime('%Y-%m-%d')}")
    tile = TILE_ROWS
    print(
        f"{'num_envs':>8} {'1 thread':>10} {f'{cores} threads':>10} {f'{cores} shards':>10} "
        f"{f'+ tiles {tile}':>12} {'default':>10}  default schedule (shards x threads, tile rows)"
    )
    for n in (int(x) for x in a.sizes.split(",")):
        r = {
            "num_envs": n,
            "one_thread": rate(b, n, a.seconds, threads=1, tile_rows=None)[0],
            "intra_op_threads": rate(b, n, a.seconds, threads=cores, tile_rows=None)[0],
            "shards": rate(b, n, a.seconds, shards=cores, tile_rows=None)[0],
            "shards_tiles": rate(b, n, a.seconds, shards=cores, tile_rows=tile)[0],
        }
        r["default"], r["default_schedule"] = rate(b, n, a.seconds)
        rows.append(r)
        print(
            f"{n:>8} {r['one_thread']:>10,.0f} {r['intra_op_threads']:>10,.0f} {r['shards']:>10,.0f} "
            f"{r['shards_tiles']:>12,.0f} {r['default']:>10,.0f}  {r['default_schedule']}"
        )
    if a.json:
        print(json.dumps({"id": a.id, "cores": cores, "rows": rows}))


if __name__ == "__main__":
    main()

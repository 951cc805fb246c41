"""`dreamgym bench`: throughput of a dream, as ratios measured in one run on the same machine.

For each batch size: env-steps/s through the Gymnasium vector API, microseconds per step, the share of
the step spent outside onnxruntime (the Python shell), and GFLOP/s from the step graph's FLOPs per
env-step, next to a float32 matrix-product roofline measured by onnxruntime in the same run on the same
threads. Also: the single env through `gym.make`, the real environment (single and best sync-vectorised,
when a package provides its kind: `dreamgym.source`) and the same model in torch eager (when a package
declares a torch step in the entry-point group ``dreamgym.torch_step``: the export extra does).
Timings are measurements of this machine at this moment; nothing here is asserted by tests.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import resources
from pathlib import Path

import gymnasium as gym
import numpy as np

from .bundle import Bundle
from .engine import choose_device, make_session
from .source import INSTALL
from .vector_env import DreamVectorEnv, draw_noise

DEFAULT_SIZES = (1, 16, 64, 256, 1024, 4096)


def _timed(fn, min_seconds: float, min_reps: int = 3, windows: int = 5) -> tuple[float, int, float]:
    """Run fn for at least min_seconds, in `windows` equal windows; returns (seconds per call in the
    fastest window, calls, seconds in all). The fastest window, because a shared machine's noise only
    ever slows a window down; every figure of a run (dream, real env, torch, roofline) is timed so."""
    t_start = time.perf_counter()
    fn()  # warm-up
    best, reps = float("inf"), 0
    for _ in range(windows):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_seconds / windows and n >= min_reps:
                break
        best, reps = min(best, dt / n), reps + n
    return best, reps, time.perf_counter() - t_start


def step_flops(bundle: Bundle) -> tuple[int | None, str]:
    """FLOPs per env-step, as the exporter counted them from step.onnx (twice the multiply-adds for a
    manifest without that count)."""
    model = bundle.manifest.model
    if model.step_flops:
        return int(model.step_flops), "counted from step.onnx"
    if model.step_macs:
        return 2 * int(model.step_macs), "2 x the manifest's multiply-adds"
    return None, "not in the manifest"


def roofline_gflops(device: str, threads: int | None, n: int = 1024, seconds: float = 1.0, shards: int = 1) -> float:
    """GFLOP/s of n x n x n float32 matrix products in onnxruntime on the step's schedule: `shards`
    products side by side (each on its own thread, as the step's blocks of rows run), each with
    `threads` intra-op threads."""
    from concurrent.futures import ThreadPoolExecutor

    import onnxruntime as ort

    path = Path(str(resources.files("dreamgym"))) / "_matmul.onnx"
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    runs = []
    for _ in range(max(1, shards)):
        sess = make_session(path, device, threads)
        bind = sess.io_binding()
        bind.bind_cpu_input("A", a)
        bind.bind_cpu_input("B", b)
        bind.bind_ortvalue_output("C", ort.OrtValue.ortvalue_from_numpy(np.empty((n, n), np.float32)))
        runs.append((sess, bind))
    if len(runs) == 1:
        sec = _timed(lambda: runs[0][0].run_with_iobinding(runs[0][1]), seconds)[0]
        return 2 * n**3 / sec / 1e9
    with ThreadPoolExecutor(len(runs) - 1) as pool:

        def together():  # onnxruntime releases the GIL while it runs
            futures = [pool.submit(s.run_with_iobinding, bd) for s, bd in runs[1:]]
            runs[0][0].run_with_iobinding(runs[0][1])
            for f in futures:
                f.result()

        sec = _timed(together, seconds)[0]
    return len(runs) * 2 * n**3 / sec / 1e9


def measure_vector(bundle: Bundle, n: int, device: str, threads, seconds: float, flops: int | None) -> dict:
    env = DreamVectorEnv(bundle, n, device=device, threads=threads)
    env.reset(seed=0)
    actions = (
        np.random.default_rng(0).uniform(-1, 1, (n, *bundle.action_space.shape)).astype(np.float32)
        if isinstance(bundle.action_space, gym.spaces.Box)
        else np.zeros(n, np.int64)
    )
    eng = env.engine
    eng.ort_seconds = 0.0
    sec, _, total = _timed(lambda: env.step(actions), seconds)
    ort_share = eng.ort_seconds / total  # over every call, the warm-up included
    row = {
        "num_envs": n,
        "steps_per_s": n / sec,
        "us_per_step": sec * 1e6,
        "outside_ort_share": max(0.0, 1.0 - ort_share),
        "threads": eng.threads,
        "shards": eng.shards,
        "tile_rows": eng.tile_rows,
        "gflops": (flops * n / sec / 1e9) if flops else None,
    }
    env.close()
    return row


def measure_single(bundle: Bundle, seconds: float) -> float:
    from .registration import register_bundle

    spec_id = register_bundle(bundle.path, bundle.id) if bundle.id not in gym.registry else bundle.id
    env = gym.make(spec_id)
    env.reset(seed=0)
    a = env.action_space.sample()
    sec = _timed(lambda: env.step(a), seconds)[0]
    return 1.0 / sec


def measure_real(manifest, seconds: float, sizes=(1, 2, 4, 8, 16)) -> tuple[dict | None, str]:
    """Steps/s of the bundle's source env, alone and in sync vector envs of `sizes`, made as its source
    implementation makes it (`SourceEnv.make_env`: no frames rendered); (None, why) when it cannot be made."""
    from .source import open_source_env

    try:
        src = open_source_env(manifest)
        env = src.make_env()
    except Exception as e:  # a missing simulator, or an env that cannot be made here
        return None, f"{manifest.source.env_id}: {e}"
    env.reset(seed=0)
    a = env.action_space.sample()

    def one():
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()

    single = 1.0 / _timed(one, seconds)[0]
    env.close()
    vec = {}
    for n in sizes:
        v = gym.vector.SyncVectorEnv([src.make_env] * n)  # what gym.make_vec(id, n, vectorization_mode="sync") builds
        v.reset(seed=0)
        acts = v.action_space.sample()
        vec[n] = n / _timed(lambda v=v, acts=acts: v.step(acts), seconds)[0]
        v.close()
    src.close()
    best = max(vec, key=vec.get)
    return {
        "env_id": manifest.source.env_id,
        "single_steps_per_s": single,
        "vector_steps_per_s": vec,
        "best_vector_steps_per_s": vec[best],
        "best_vector_num_envs": best,
        "vectorization": "sync",
    }, ""


def example_feeds(bundle: Bundle, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random step-graph feeds for `n` envs in the manifest's dtypes: float states standard normal, integer
    states small ids valid both as tokens and, with discrete actions, as actions (a state may hold past actions,
    as a REM dream's `slot_history` does), actions sampled from the action space, noise as the manifest says."""
    feeds = {}
    space = bundle.action_space
    ids = min(8, int(space.n)) if isinstance(space, gym.spaces.Discrete) else 8
    for s in bundle.state:
        x = rng.integers(0, ids, (n, *s.shape)) if s.np_dtype.kind in "iu" else rng.standard_normal((n, *s.shape))
        feeds[s.name] = x.astype(s.np_dtype)
    if isinstance(space, gym.spaces.Discrete):
        feeds["action"] = rng.integers(space.start, space.start + space.n, n).astype(np.int64)
    else:
        feeds["action"] = rng.uniform(space.low, space.high, (n, *space.shape)).astype(np.float32)
    for nz in bundle.noise_for("step"):
        feeds[nz.name] = draw_noise(rng, nz.distribution, np.empty((n, *nz.shape), nz.np_dtype))
    return feeds


TORCH_GROUP = "dreamgym.torch_step"


def torch_step_for(bundle: Bundle):
    """The bundle's model in torch eager, from the first entry of the ``dreamgym.torch_step`` group that
    builds it (an entry is a function: bundle -> step(feeds) returning the step graph's outputs as torch
    tensors). Returns (step, "") or (None, why there is none)."""
    from importlib.metadata import entry_points

    eps = list(entry_points(group=TORCH_GROUP))
    if not eps:
        return None, f"no installed package declares a torch step (run `{INSTALL}`)"
    why = []
    for ep in eps:
        try:
            return ep.load()(bundle), ""
        except (KeyError, ImportError) as e:  # no torch, or a family this package does not know
            why.append(f"{ep.value}: {e}")
    return None, "; ".join(why)


def measure_torch(bundle: Bundle, sizes, seconds: float, threads: int | None) -> tuple[list[dict] | None, str]:
    """torch eager steps/s per batch size on `threads` threads, or (None, why not)."""
    step, why = torch_step_for(bundle)
    if step is None:
        return None, why
    torch = sys.modules.get("torch")  # imported by the entry point's package, never by the runtime
    if threads and torch is not None:
        torch.set_num_threads(threads)
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        feeds = example_feeds(bundle, n, rng)
        # the same work the dream env does per step: the model, plus reading the outputs back as numpy
        sec = _timed(lambda feeds=feeds: [t.numpy() for t in step(feeds)], seconds)[0]
        rows.append({"num_envs": n, "steps_per_s": n / sec})
    return rows, ""


def state_bytes(bundle: Bundle, n: int = 65536, device: str = "cpu", budget: int = 4 << 30) -> dict:
    """Bytes of model state per env, and the process's peak memory with `n` envs after a few steps
    (not run when the two state buffers and the step's noise buffer alone would exceed `budget`)."""
    per_env = sum(int(np.prod(s.shape)) * s.np_dtype.itemsize for s in bundle.state)
    noise = sum(int(np.prod(z.shape)) * z.np_dtype.itemsize for z in bundle.noise_for("step"))
    out = {
        "num_envs": n,
        "state_bytes_per_env": per_env,
        "noise_bytes_per_env": noise,
        "state_buffers_bytes": 2 * per_env * n,
        "process_peak_bytes": None,
    }
    if (2 * per_env + noise) * n > budget:
        what = "the state buffers alone exceed" if 2 * per_env * n > budget else "the state and noise buffers exceed"
        return {**out, "note": f"not run: {what} {budget / 2**30:.0f} GiB"}
    env = DreamVectorEnv(bundle, n, device=device)
    env.reset(seed=0)
    a = np.zeros((n, *bundle.action_space.shape), np.float32)
    for _ in range(3):
        env.step(a)
    peak = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except OSError:
        pass
    env.close()
    return {**out, "process_peak_bytes": peak}


def _best(a, b, key: str):
    return a if (b is None or (a is not None and a[key] >= b[key])) else b


def _merge_real(a: dict | None, b: dict | None) -> dict | None:
    if a is None or b is None:
        return a or b
    vec = {n: max(a["vector_steps_per_s"][n], b["vector_steps_per_s"][n]) for n in a["vector_steps_per_s"]}
    best = max(vec, key=vec.get)
    return {
        **a,
        "single_steps_per_s": max(a["single_steps_per_s"], b["single_steps_per_s"]),
        "vector_steps_per_s": vec,
        "best_vector_steps_per_s": vec[best],
        "best_vector_num_envs": best,
    }


def bench(
    id_or_path,
    sizes=DEFAULT_SIZES,
    device: str = "auto",
    threads=None,
    seconds: float = 1.0,
    real: bool = True,
    torch: bool = True,
    memory: bool = True,
    rounds: int = 3,
) -> dict:
    """Every figure, measured `rounds` times in turn (dream, roofline, single env, real env, torch, then
    again), each reported at its best round: a shared machine's slow spells then hit no figure more
    than another."""
    from .registration import resolve

    b = Bundle.load(resolve(id_or_path))
    flops, flops_src = step_flops(b)
    env_id = b.manifest.source.env_id
    dev = choose_device(device)
    rows, roof, single, real_res, torch_rows = [None] * len(sizes), 0.0, 0.0, None, None
    real_note = "" if real and env_id else "not asked for" if env_id else "the bundle names no source env"
    torch_note = "" if torch else "not asked for"
    round_shares = []  # per round: the largest batch's share of the roofline measured right after it
    for _ in range(max(1, int(rounds))):
        this = [measure_vector(b, n, device, threads, seconds, flops) for n in sizes]
        rows = [_best(r, x, "steps_per_s") for r, x in zip(rows, this)]
        # the largest batch's schedule: the roofline runs on it (blocks of rows side by side, each with
        # its intra-op threads); torch gets as many threads as that uses in all
        big = rows[-1]
        eng_threads = (big["threads"] or os.cpu_count() or 1) * big.get("shards", 1)
        r_roof = roofline_gflops(dev, big["threads"], seconds=seconds, shards=big.get("shards", 1))
        roof = max(roof, r_roof)
        if this[-1]["gflops"]:
            round_shares.append(this[-1]["gflops"] / r_roof)
        single = max(single, measure_single(b, seconds))
        if real and env_id:
            r_real, real_note = measure_real(b.manifest, seconds)
            real_res = _merge_real(real_res, r_real)
        if torch:
            t, torch_note = measure_torch(b, sizes, seconds, eng_threads)
            torch_rows = (
                t if torch_rows is None or t is None else [_best(x, y, "steps_per_s") for x, y in zip(torch_rows, t)]
            )
    res = {
        "id": b.id,
        "device": dev,
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus".strip(),
        "date": time.strftime("%Y-%m-%d"),
        "flops_per_step": flops,
        "flops_source": flops_src,
        "rounds": max(1, int(rounds)),
        "rows": rows,
        "roofline_gflops": roof,
        "roofline_schedule": {"threads": rows[-1]["threads"], "shards": rows[-1].get("shards", 1)},
        "roofline_share_by_round": round_shares,
        "single_env_steps_per_s": single,
        "real": real_res,
        "torch": torch_rows,
        "notes": {
            k: v for k, v in (("real", "" if real_res else real_note), ("torch", "" if torch_rows else torch_note)) if v
        },
    }
    if memory:
        res["memory"] = state_bytes(b, device=device)
    res["ratios"] = ratios(res)
    return res


def ratios(res: dict) -> dict:
    out = {}
    by_n = {r["num_envs"]: r for r in res["rows"]}
    real = res.get("real")
    if real:
        for n, r in by_n.items():
            out[f"dream_{n}_vs_real_best_vector"] = r["steps_per_s"] / real["best_vector_steps_per_s"]
        out["single_vs_real_single"] = res["single_env_steps_per_s"] / real["single_steps_per_s"]
    for n, r in by_n.items():
        if r["gflops"]:
            out[f"roofline_share_{n}"] = r["gflops"] / res["roofline_gflops"]
    for t in res.get("torch") or []:
        if t["num_envs"] in by_n:
            out[f"onnx_vs_torch_{t['num_envs']}"] = by_n[t["num_envs"]]["steps_per_s"] / t["steps_per_s"]
    return out


def _schedule_text(s: dict) -> str:
    t = s["threads"] or "default"
    return f"{s['shards']} single-threaded products side by side" if s["shards"] > 1 else f"{t} thread(s)"


def print_table(res: dict) -> None:
    print(
        f"{res['id']} on {res['device']} ({res['machine']}), {res['date']}; each figure the best of "
        f"{res.get('rounds', 1)} round(s), each round the fastest of 5 windows"
    )
    print(
        f"step graph: {res['flops_per_step']:,} FLOPs per env-step ({res['flops_source']}); "
        f"roofline (1024^3 float32 matmul, on the {res['rows'][-1]['num_envs']}-env step's threads: "
        f"{_schedule_text(res['roofline_schedule'])}): {res['roofline_gflops']:.1f} GFLOP/s"
    )
    torch_by_n = {t["num_envs"]: t["steps_per_s"] for t in res.get("torch") or []}
    print(
        f"{'num_envs':>8} {'steps/s':>12} {'us/step':>10} {'outside ORT':>11} {'GFLOP/s':>8} {'roofline':>8} "
        f"{'torch steps/s':>13} {'ONNX/torch':>10}"
    )
    for r in res["rows"]:
        t = torch_by_n.get(r["num_envs"])
        g = r["gflops"] or 0.0
        t_txt = f"{t:,.0f}" if t else "-"
        ratio_txt = f"{r['steps_per_s'] / t:.2f}x" if t else "-"
        print(
            f"{r['num_envs']:>8} {r['steps_per_s']:>12,.0f} {r['us_per_step']:>10,.1f} {r['outside_ort_share']:>10.0%} "
            f"{g:>8.1f} {g / res['roofline_gflops']:>8.0%} {t_txt:>13} {ratio_txt:>10}"
        )
    if res.get("roofline_share_by_round"):
        shares = ", ".join(f"{x:.0%}" for x in res["roofline_share_by_round"])
        print(
            f"{res['rows'][-1]['num_envs']} envs against the roofline measured right after them, round by round: {shares}"
        )
    print(f"single env via gym.make: {res['single_env_steps_per_s']:,.0f} steps/s")
    if res.get("real"):
        rl = res["real"]
        vec = ", ".join(f"{n}: {v:,.0f}" for n, v in rl["vector_steps_per_s"].items())
        print(
            f"real {rl['env_id']}: single {rl['single_steps_per_s']:,.0f} steps/s; sync vector {vec} "
            f"(best {rl['best_vector_steps_per_s']:,.0f} at {rl['best_vector_num_envs']})"
        )
    if res.get("memory"):
        m = res["memory"]
        peak = f"{m['process_peak_bytes'] / 2**30:.2f} GiB" if m["process_peak_bytes"] else m.get("note", "unknown")
        print(
            f"memory: {m['state_bytes_per_env']} bytes of state per env; {m['num_envs']:,} envs: state buffers "
            f"{m['state_buffers_bytes'] / 2**20:.0f} MiB, process peak {peak}"
        )
    for what, why in res.get("notes", {}).items():
        print(f"{'real env' if what == 'real' else 'torch eager'}: skipped ({why})")
    for k, v in res["ratios"].items():
        print(f"  {k}: {v:.2f}")

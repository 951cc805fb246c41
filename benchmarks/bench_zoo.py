"""Run `dreamgym bench` on every shipped bundle and print markdown tables for benchmarks/README.md.

    python benchmarks/bench_zoo.py [--seconds 2] [--rounds 3] [--ids ID ...]

Each bundle's figures come from one run, so its ratios (dream vs real env, ONNX vs torch, GFLOP/s vs
the roofline) are measured on the same machine at the same moment. Results also go to
benchmarks/results/<id>.json.
"""

import argparse
import json
from pathlib import Path

import dreamgym
from dreamgym.bench import DEFAULT_SIZES, bench


def _schedule(s: dict) -> str:
    if s["shards"] > 1:
        return f"{s['shards']} single-threaded products side by side"
    return f"{s['threads'] or 'default'} intra-op thread(s)"


def table(res: dict) -> str:
    torch = {t["num_envs"]: t["steps_per_s"] for t in res.get("torch") or []}
    real = res.get("real") or {}
    best = real.get("best_vector_steps_per_s")
    lines = [
        f"### {res['id']} — {res['date']}, {res['machine']}, device {res['device']}",
        "",
        f"{res['flops_per_step']:,} FLOPs per env-step ({res['flops_source']}); matrix-product roofline "
        f"{res['roofline_gflops']:.1f} GFLOP/s (1024³ float32 in onnxruntime on the {res['rows'][-1]['num_envs']}-env "
        f"step's schedule: {_schedule(res['roofline_schedule'])}). Each figure is the best of "
        f"{res.get('rounds', 1)} rounds, each round the fastest of 5 windows.",
        "",
        "| num_envs | env-steps/s | µs/step | outside ORT | GFLOP/s | of roofline | × real best vector | torch eager steps/s | ONNX ÷ torch |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        t = torch.get(r["num_envs"])
        lines.append(
            f"| {r['num_envs']} | {r['steps_per_s']:,.0f} | {r['us_per_step']:,.1f} | {r['outside_ort_share']:.0%} | "
            f"{r['gflops']:.1f} | {r['gflops'] / res['roofline_gflops']:.0%} | "
            f"{(r['steps_per_s'] / best) if best else float('nan'):.1f}× | {t or float('nan'):,.0f} | "
            f"{(r['steps_per_s'] / t) if t else float('nan'):.2f}× |"
        )
    lines.append("")
    if res.get("roofline_share_by_round"):
        lines.append(
            f"{res['rows'][-1]['num_envs']} envs against the roofline measured right after them, round by round: "
            + ", ".join(f"{x:.0%}" for x in res["roofline_share_by_round"])
            + "."
        )
    lines.append(
        f"Single env through `gym.make`: {res['single_env_steps_per_s']:,.0f} steps/s"
        + (
            f" ({res['single_env_steps_per_s'] / real['single_steps_per_s']:.2f}× the real single env)."
            if real
            else "."
        )
    )
    if real:
        vec = ", ".join(f"{n}: {v:,.0f}" for n, v in real["vector_steps_per_s"].items())
        lines.append(
            f"Real `{real['env_id']}`: single {real['single_steps_per_s']:,.0f} steps/s; sync vector {vec} "
            f"(best {best:,.0f} at {real['best_vector_num_envs']} envs)."
        )
    if res.get("memory"):
        m = res["memory"]
        peak = f"{m['process_peak_bytes'] / 2**30:.2f} GiB" if m["process_peak_bytes"] else m.get("note", "unknown")
        noise = f" and {m['noise_bytes_per_env']:,} bytes of step noise" if m.get("noise_bytes_per_env") else ""
        lines.append(
            f"Memory: {m['state_bytes_per_env']:,} bytes of model state per env{noise}; {m['num_envs']:,} envs: "
            f"state buffers {m['state_buffers_bytes'] / 2**20:,.0f} MiB, whole process peak {peak}."
        )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ids", nargs="*", default=None)
    a = ap.parse_args()
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    for id in a.ids or sorted(dreamgym.shipped_bundles(multi_agent=False)):
        b = dreamgym.Bundle.load(dreamgym.resolve(id))
        # a pixel-token dream does ~100x the work of a vector one per env-step: stop at 256 envs so
        # that one bundle's run stays within minutes (4096 Pong envs also need 0.5 GB of noise per step)
        big = (b.manifest.model.step_macs or 0) > 10_000_000
        res = bench(id, sizes=(1, 16, 64, 256) if big else DEFAULT_SIZES, seconds=a.seconds, rounds=a.rounds)
        (out / f"{id}.json").write_text(json.dumps(res, indent=2))
        print(table(res), flush=True)


if __name__ == "__main__":
    main()

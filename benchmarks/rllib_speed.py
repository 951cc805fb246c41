"""RLlib (new API stack) PPO on the dream and on the real env, 1 and 2 env runners, in one run.

    python benchmarks/rllib_speed.py [--bundle Dream-HalfCheetah-RSSM-v0] [--envs-per-runner 64] [--iterations 4]
                                     [--json runs/rllib_speed.json]

For each of {dream, real} × {1, 2} runners: PPO with the same configuration (`dreamgym.export.rllib.ppo_config`:
M envs per runner, 1 onnxruntime thread per runner, a 32-step rollout per env, 4 epochs of minibatch 512 on
the driver's learner) runs one warm-up iteration and then `--iterations` measured ones. Reported, from
RLlib's own counters and timers:

- sampled env-steps/s: env-steps sampled per second of the sampling phase (all runners together);
- learner samples/s: samples trained per second of the learner update (one pass over the batch × epochs);
- end-to-end env-steps/s: env-steps per second of whole iterations.

Also, without RLlib, the env alone: the dream's `DreamVectorEnv` of M and the real env's sync vector env of M
stepped with random actions on one thread, so the table shows what RLlib's per-step work costs on top.
Prints a markdown table (benchmarks/README.md "RLlib") and a paper estimate for bigger nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

EPOCHS = 4  # ppo_config's default: each batch is trained over 4 times


def env_alone(bundle_id: str, m: int, real: bool, seconds: float = 5.0) -> float:
    """Env-steps/s of the env alone at M envs, random actions, one thread."""
    import gymnasium as gym

    import dreamgym

    b = dreamgym.Bundle.load(dreamgym.resolve(bundle_id))
    if real:
        env = gym.make_vec(b.manifest.source.env_id, num_envs=m, vectorization_mode="sync")
    else:
        env = dreamgym.DreamVectorEnv(b, m, threads=1)
    env.reset(seed=0)
    env.action_space.seed(0)
    acts = [env.action_space.sample() for _ in range(16)]
    for a in acts[:4]:
        env.step(a)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        env.step(acts[n % 16])
        n += 1
    dt = time.perf_counter() - t0
    env.close()
    return n * m / dt


def rllib_run(bundle_id: str, runners: int, m: int, real: bool, iterations: int) -> dict:
    from dreamgym.export.rllib import ppo_config, summarize

    algo = ppo_config(bundle_id, runners=runners, envs_per_runner=m, threads_per_runner=1, real=real).build_algo()
    try:
        algo.train()  # warm-up: actors started, torch and onnxruntime initialised
        rows = []
        for _ in range(iterations):
            t = time.perf_counter()
            r = summarize(algo.train())
            r["wall_s"] = time.perf_counter() - t
            rows.append(r)
    finally:
        algo.stop()
    steps = sum(r["env_steps_sampled"] for r in rows)
    samples = sum(r["learner_samples"] for r in rows)
    return {
        "target": "real" if real else "dream",
        "runners": runners,
        "envs_per_runner": m,
        "iterations": iterations,
        "env_steps": steps,
        "sampled_steps_per_s": steps / sum(r["sample_time_s"] for r in rows),
        "learner_samples_per_s": samples / sum(r["learn_time_s"] for r in rows) if samples else None,
        "end_to_end_steps_per_s": steps / sum(r["wall_s"] for r in rows),
        "finite_losses": all(np.isfinite(v) for r in rows for v in r["losses"].values()),
    }


def paper_estimate(bundle_id: str, rows: list[dict], alone: dict) -> list[str]:
    """How many runners bigger nodes would feed, from the bundle's FLOPs and bytes per env-step and the
    per-runner rates measured here. Stated assumptions, not measurements."""
    import dreamgym

    b = dreamgym.Bundle.load(dreamgym.resolve(bundle_id))
    flops = b.manifest.model.step_flops
    floats = sum(int(np.prod(s.shape)) for s in b.manifest.state) * 2  # state read and written
    floats += int(np.prod(b.action_space.shape)) + int(np.prod(b.observation_space.shape)) + 2
    floats += sum(int(np.prod(n.shape)) for n in b.manifest.noise if n.graph == "step")
    bytes_ = 4 * floats
    one = next(r for r in rows if r["target"] == "dream" and r["runners"] == 1)
    per_runner = one["sampled_steps_per_s"]
    learner = one["learner_samples_per_s"] or float("nan")
    h100_flops = 67e12 * 0.3  # FP32 (not tensor-core) peak × an assumed 30 % of it on these small matmuls
    h100_steps = h100_flops / flops
    hbm = 3.35e12 / bytes_
    return [
        f"- Per env-step the dream's step graph does {flops:,} FLOPs and moves about {bytes_:,} bytes of state, "
        f"action, noise and outputs ({b.id}).",
        f"- Here one runner samples {per_runner:,.0f} env-steps/s through RLlib against {alone['dream']:,.0f}/s "
        f"for the batched dream alone: RLlib's per-env-step work (episode bookkeeping, connectors, the policy's "
        f"forward pass) is {1 - per_runner / alone['dream']:.0%} of a runner's time.",
        f"- A 16-core CPU node: 15 runners of one core each (one core for the driver) would sample about "
        f"{15 * per_runner:,.0f} env-steps/s if runners scale linearly, as they do across nodes; the learner "
        f"measured here trains {learner:,.0f} samples/s on 2 contended cores, {EPOCHS} epochs over each batch, so "
        f"it takes in about {learner / EPOCHS:,.0f} fresh env-steps/s: a CPU learner, not the runners, would be "
        "the bottleneck of such a node; put the learner on a GPU.",
        f"- An H100 node: the dream's step on the GPU would be bounded by compute at about "
        f"{h100_steps / 1e6:,.0f} M env-steps/s (67 TFLOP/s FP32 × 30 %) and by memory at about "
        f"{hbm / 1e9:,.1f} G env-steps/s (3.35 TB/s), so stepping the dream is never the bound: one GPU could "
        f"serve the dream steps of about {h100_steps / per_runner:,.0f} runners at this machine's per-runner "
        "rate, and the number of runners is set by the node's CPU cores for RLlib's per-step work (about one "
        "runner per core).",
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default="Dream-HalfCheetah-RSSM-v0")
    p.add_argument("--envs-per-runner", type=int, default=64)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--runners", type=int, nargs="*", default=[1, 2])
    p.add_argument("--json", default=None)
    a = p.parse_args()

    import ray

    os.environ.setdefault("MUJOCO_GL", "egl")
    alone = {
        "dream": env_alone(a.bundle, a.envs_per_runner, real=False),
        "real": env_alone(a.bundle, a.envs_per_runner, real=True),
    }
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    rows = []
    try:
        for real in (False, True):
            for n in a.runners:
                rows.append(rllib_run(a.bundle, n, a.envs_per_runner, real, a.iterations))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        ray.shutdown()
    print(
        f"\ncores: {os.cpu_count()}; env alone at {a.envs_per_runner} envs, one thread: "
        f"dream {alone['dream']:,.0f} env-steps/s, real {alone['real']:,.0f} env-steps/s\n"
    )
    print("| env | runners | envs per runner | sampled env-steps/s | learner samples/s | end-to-end env-steps/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['target']} | {r['runners']} | {r['envs_per_runner']} | {r['sampled_steps_per_s']:,.0f} | "
            f"{r['learner_samples_per_s']:,.0f} | {r['end_to_end_steps_per_s']:,.0f} |"
        )
    for real in ("dream", "real"):
        one = next(r for r in rows if r["target"] == real and r["runners"] == 1)
        two = next((r for r in rows if r["target"] == real and r["runners"] == 2), None)
        if two:
            print(f"\n{real}: 2 runners / 1 runner = {two['sampled_steps_per_s'] / one['sampled_steps_per_s']:.2f}×")
    d1 = next(r for r in rows if r["target"] == "dream" and r["runners"] == 1)
    r1 = next(r for r in rows if r["target"] == "real" and r["runners"] == 1)
    print(f"dream / real, 1 runner, sampled: {d1['sampled_steps_per_s'] / r1['sampled_steps_per_s']:.2f}×\n")
    for line in paper_estimate(a.bundle, rows, alone):
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"alone": alone, "rows": rows, "cores": os.cpu_count()}, f, indent=2)


if __name__ == "__main__":
    main()

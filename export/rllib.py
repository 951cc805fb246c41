"""Dreams on Ray RLlib (new API stack): `dreamgym rllib ID` trains PPO with N env runners.

    dreamgym rllib Dream-HalfCheetah-v0 --runners 2 --envs-per-runner 64 --iterations 10
    dreamgym rllib Dream-SimpleTag-v0 --runners 2            # multi-agent: one policy per agent group
    dreamgym rllib Dream-HalfCheetah-v0 --address auto       # on a running cluster (`ray start --head`)

Each env runner steps the bundle's own *batched* env: `gym.make_vec("dreamgym:ID", num_envs=M,
vectorization_mode="vector_entry_point")` is one `DreamVectorEnv`, so a runner makes one onnxruntime call per
step for all of its M envs (not M copies of a single env). The `dreamgym:` prefix makes a worker process
import dreamgym, which registers the shipped dreams, before it looks the id up.

Threads: each runner's onnxruntime session gets `--threads-per-runner` intra-op threads (env_config
`threads`), and Ray reserves one CPU per runner (`num_cpus_per_env_runner`), so N runners on a node use about
N × threads cores for stepping and do not fight over them; the learner's torch threads are separate.

Seeding: `--seed S` goes to RLlib's `config.debugging(seed=S)`, which gives runner i the seed S + i for its
first reset; a dream draws its start states from that seed, so runner i's episodes are distinct from runner
j's and the same on every run with the same S.

A multi-agent dream is wrapped by RLlib's `ParallelPettingZooEnv` around `dreamgym.make_parallel(ID)`; agents
are grouped by name (`adversary_0`, `adversary_1` → `adversary`) and each group trains one policy.

Needs Ray RLlib: `pip install "dreamgym[rllib]"` (ray[rllib] pins gymnasium 1.2.2, which dreamgym accepts).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import tyro


def _need_ray():
    try:
        import ray  # noqa: F401
        from ray.rllib.algorithms.ppo import PPOConfig  # noqa: F401
    except ImportError as e:
        raise SystemExit(
            f"Ray RLlib is not installed ({e}): pip install 'dreamgym[rllib]' (ray[rllib] and a capped torch)"
        ) from e


def agent_group(agent: str) -> str:
    """The policy an agent trains: its name without a trailing index (`adversary_2` → `adversary`)."""
    return re.sub(r"_\d+$", "", agent)


def _multi_agent_creator(env_config: dict):
    """RLlib env creator for a multi-agent dream (module level, so that Ray can ship it to workers)."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    import dreamgym

    cfg = dict(env_config)
    bundle = cfg.pop("bundle")
    return ParallelPettingZooEnv(dreamgym.make_parallel(bundle, **cfg))


def ppo_config(
    bundle: str,
    *,
    runners: int = 2,
    envs_per_runner: int = 64,
    threads_per_runner: int = 1,
    seed: int | None = 0,
    real: bool = False,
    train_batch: int | None = None,
    minibatch: int = 512,
    epochs: int = 4,
    env_config: dict | None = None,
) -> Any:
    """A `PPOConfig` (RLlib's new API stack) that trains on the dream `bundle` (id or folder), or with
    `real=True` on the real env it was learned from, in the same configuration (Gymnasium's sync vector env
    of M copies: a simulator has no batched entry point).

    `train_batch` defaults to one rollout of every env of every runner (runners × envs × 32 steps)."""
    _need_ray()
    from ray.rllib.algorithms.ppo import PPOConfig

    import dreamgym

    path = dreamgym.resolve(bundle)
    b = dreamgym.Bundle.load(path)
    fragment = 32
    cfg = (
        PPOConfig()
        .framework("torch")
        .learners(num_learners=0)
        .debugging(seed=seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=20)
    )
    env_cfg: dict = {}
    if b.is_multi_agent:
        if real:
            raise ValueError(f"{b.id}: --real is for single-agent dreams (the real env of {b.id} is a scene script)")
        from ray.tune.registry import register_env

        name = f"dreamgym-{b.id}"
        register_env(name, _multi_agent_creator)
        groups = sorted({agent_group(a) for a in b.agents})
        env_cfg = {"bundle": str(path), **(env_config or {})}
        if threads_per_runner:
            env_cfg.setdefault("threads", threads_per_runner)
        cfg = cfg.environment(name, env_config=env_cfg).multi_agent(
            policies=set(groups),
            policy_mapping_fn=lambda agent_id, episode, **kw: agent_group(agent_id),
        )
        cfg = cfg.env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=1,  # RLlib steps one multi-agent env per runner
            num_cpus_per_env_runner=1,
            rollout_fragment_length=fragment,
        )
        batch = train_batch or max(runners, 1) * fragment * len(b.agents)
    else:
        if real:
            env = b.manifest.source.env_id
            mode = "sync"
        else:
            shipped = b.id in dreamgym.shipped_bundles()
            env = f"dreamgym:{b.id}" if shipped else _register_folder()
            mode = "vector_entry_point"
            env_cfg = dict(env_config or {})
            if not shipped:
                env_cfg.setdefault("bundle", str(path))
            if threads_per_runner:
                env_cfg.setdefault("threads", threads_per_runner)
        cfg = cfg.environment(env, env_config=env_cfg).env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=envs_per_runner,
            num_cpus_per_env_runner=1,
            gym_env_vectorize_mode=mode,
            rollout_fragment_length=fragment,
        )
        batch = train_batch or max(runners, 1) * envs_per_runner * fragment
    return cfg.training(
        train_batch_size_per_learner=batch,
        minibatch_size=min(minibatch, batch),
        num_epochs=epochs,
    )


FOLDER_ID = "dreamgym-folder-v0"


def _register_folder() -> str:
    """A bundle folder that is not shipped has no gym id a worker knows: it runs as FOLDER_ID, whose
    env_config carries `bundle` (the folder), registered by importing this module (the `module:` prefix)."""
    import gymnasium as gym

    if FOLDER_ID not in gym.registry:
        gym.register(
            FOLDER_ID,
            entry_point="dreamgym.registration:make_single",
            vector_entry_point="dreamgym.registration:make_vector",
        )
    return f"dreamgym.export.rllib:{FOLDER_ID}"


_register_folder()


def losses(result: dict) -> dict[str, float]:
    """The learner's losses of one `algo.train()` result, per policy."""
    out = {}
    for pid, d in (result.get("learners") or {}).items():
        if isinstance(d, dict) and "total_loss" in d:
            out[pid] = float(d["total_loss"])
    return out


def _samples_trained(learners: dict) -> int:
    """Samples the learner trained in one iteration (every epoch's minibatches). RLlib logs them per module
    and again, summed, under `__all_modules__`: take the sum once."""
    total = (learners.get("__all_modules__") or {}).get("num_module_steps_trained")
    if total is not None:
        return int(total)
    return int(
        sum(
            d.get("num_module_steps_trained", 0)
            for k, d in learners.items()
            if isinstance(d, dict) and k != "__all_modules__"
        )
    )


def summarize(result: dict) -> dict:
    """The figures of one training iteration RLlib reports (names of the new API stack)."""
    er = result.get("env_runners") or {}
    lr = result.get("learners") or {}
    ret = er.get("episode_return_mean")
    return {
        "iteration": int(result.get("training_iteration", 0)),
        "env_steps_sampled": int(er.get("num_env_steps_sampled", 0)),
        "env_steps_sampled_lifetime": int(er.get("num_env_steps_sampled_lifetime", 0)),
        "episode_return_mean": None if ret is None else float(ret),
        "sample_time_s": float((result.get("timers") or {}).get("env_runner_sampling_timer", float("nan"))),
        "learn_time_s": float((result.get("timers") or {}).get("learner_update_timer", float("nan"))),
        "losses": losses(result),
        "learner_samples": _samples_trained(lr),
    }


@dataclass(frozen=True)
class RllibArgs:
    """train PPO on a dream with Ray RLlib's env runners (extra: rllib)"""

    bundle: Annotated[str, tyro.conf.Positional]
    """a registered id or a bundle folder"""
    runners: int = 2
    """RLlib env runners (Ray actors), each stepping one batched dream"""
    envs_per_runner: int = 64
    """dreams per runner, stepped in one onnxruntime call"""
    threads_per_runner: int = 1
    """onnxruntime intra-op threads per runner (runners × threads ≤ the node's cores)"""
    iterations: int = 10
    """PPO training iterations"""
    seed: int = 0
    """RLlib's seed: runner i resets its dreams with seed + i"""
    real: bool = False
    """train on the real env behind the dream instead, in the same configuration"""
    address: str | None = None
    """a running Ray cluster ('auto', or 'ray://host:10001'); None starts a local Ray"""
    out: str | None = None
    """write every iteration's figures to this JSON file"""


def run(a: RllibArgs, progress: bool = True) -> list[dict]:
    _need_ray()
    import ray

    cfg = ppo_config(
        a.bundle,
        runners=a.runners,
        envs_per_runner=a.envs_per_runner,
        threads_per_runner=a.threads_per_runner,
        seed=a.seed,
        real=a.real,
    )
    started = not ray.is_initialized()
    if started:
        ray.init(address=a.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    rows = []
    try:
        algo = cfg.build_algo()
        try:
            for _ in range(a.iterations):
                t = time.perf_counter()
                row = summarize(algo.train())
                row["wall_s"] = time.perf_counter() - t
                rows.append(row)
                if progress:
                    ret = row["episode_return_mean"]
                    print(
                        f"iter {row['iteration']:3d}  env-steps {row['env_steps_sampled']:7d}  "
                        f"return {'—' if ret is None else f'{ret:9.1f}'}  "
                        f"losses {', '.join(f'{k} {v:.3g}' for k, v in row['losses'].items())}  "
                        f"{row['wall_s']:.1f} s",
                        flush=True,
                    )
        finally:
            algo.stop()
    finally:
        if started:
            ray.shutdown()
    return rows


def cli(argv: list[str]) -> int:
    """train PPO on a dream with Ray RLlib's env runners (extra: rllib)"""
    a = tyro.cli(RllibArgs, args=list(argv), prog="dreamgym rllib", description=__doc__.splitlines()[0])
    rows = run(a)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"args": asdict(a), "iterations": rows}, indent=2))
    return 0

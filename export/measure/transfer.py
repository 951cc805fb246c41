"""`dreamgym transfer ID`: does a policy trained only in the dream work in reality?

    dreamgym transfer Dream-HalfCheetah-v0 --algo sac --steps 100000 --seeds 3 [--write]

For each seed: Stable-Baselines3's `--algo` with its library defaults trains only in the dream; at
`--evals` points along the way its deterministic policy is run

- in the real env (`--episodes` episodes from seeded starts): the *real return*;
- in the dream as the learner sees it (starts drawn from the bundle's bank): the *dream return*;
- in the dream from the same real starts (the first C real steps under the policy are the dream's
  context; both sides then run the rest of the episode): the *calibration* pair, whose gap says how far
  the dream's estimate of this policy is from the truth.

The same algorithm with the same budget also trains in the real env (unless `--no-real`), evaluated at the
same points, and a random policy is measured once in the real env: gains are returns minus its return.
The curves go to `OUT/transfer-ALGO.json` and a plot; `--write` puts them into the bundle's manifest
(`metrics.transfer.ALGO`) and its model card.

Each finished seed is kept in `OUT/transfer-ALGO-seedK.json`; a later run with the same settings and the
same bundle reuses it instead of training again, so a benchmark longer than one sitting runs a seed at a
time (`--first-seed K --seeds 1`, then the whole range to gather them).

Needs the real env and Stable-Baselines3: `pip install "dreamgym[export,transfer]"`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro


@dataclass(frozen=True)
class TransferArgs:
    """train an off-the-shelf learner only in the dream and measure it in reality (extras: export, transfer)"""

    bundle: Annotated[str, tyro.conf.Positional]
    """a registered id or a bundle folder"""
    algo: Literal["sac", "ppo"] = "sac"
    """Stable-Baselines3 algorithm, with its library defaults"""
    steps: int = 100_000
    """training steps, in the dream and (for reference) in the real env"""
    seeds: int = 1
    """independent runs (seeds first_seed .. first_seed+seeds-1)"""
    first_seed: int = 0
    """the first seed"""
    evals: int = 5
    """evaluation points, evenly spaced over the training steps"""
    episodes: int = 10
    """episodes per evaluation, in the real env and in the dream"""
    episode_steps: int | None = None
    """steps per evaluation episode (None: the bundle's max_episode_steps)"""
    n_envs: int = 8
    """parallel envs for PPO (SAC uses one)"""
    real: bool = True
    """also train the same algorithm in the real env with the same budget (the reference)"""
    uncertainty_penalty: str = "bundle"
    """the dream's λ ('bundle': the bundle's default; 0: the raw model reward)"""
    uncertainty_limit: str = "bundle"
    """the dream's τ ('bundle': the bundle's default; 'none': never truncate for uncertainty)"""
    out: str = "runs/transfer"
    """folder for the JSON, the plot and the learners' checkpoints"""
    write: bool = False
    """write the results into the bundle's manifest (metrics.transfer) and model card"""


def _algo(name: str):
    try:
        import stable_baselines3 as sb3
    except ImportError as e:
        from dreamgym.errors import DependencyNotInstalled

        raise DependencyNotInstalled(
            'dreamgym transfer needs Stable-Baselines3: pip install "dreamgym[transfer]"'
        ) from e
    return {"sac": sb3.SAC, "ppo": sb3.PPO}[name]


def _train_env(make, algo: str, n_envs: int, seed: int):
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(make, n_envs=n_envs if algo == "ppo" else 1, seed=seed)


def real_returns(source, act, episodes: int, steps: int, seed: int, context: int = 0) -> dict:
    """Run `act` in the real env (a `dreamgym.source.SourceEnv`) for `episodes` seeded episodes of at most
    `steps` steps. With `context`, also keep each episode's first `context` observations and the actions
    before them (the dream's context: zeros before the first) and the return earned after them."""
    rets, after, ctx_o, ctx_a, lengths = [], [], [], [], []
    for i in range(episodes):
        obs = source.reset(seed=seed + i)
        o_hist, a_hist = [obs], [None]
        ret = tail = 0.0
        t = 0
        for t in range(1, steps + 1):
            a = act(obs)
            obs, r, term, trunc = source.step(a)
            ret += r
            if t >= context:
                tail += r
            if t < context:
                o_hist.append(obs), a_hist.append(np.asarray(a, np.float32))
            if term or trunc:
                break
        rets.append(ret), after.append(tail), lengths.append(t)
        if context:
            a_hist[0] = np.zeros(np.shape(a), np.float32)  # no action before the first observation
            ctx_o.append(np.stack(o_hist[:context])), ctx_a.append(np.stack(a_hist[:context]))
    out = {"returns": rets, "returns_after_context": after, "lengths": lengths}
    if context:
        out["context"] = {"obs": np.stack(ctx_o), "actions": np.stack(ctx_a)}
    return out


def dream_returns(
    bundle,
    act,
    episodes: int,
    steps: int,
    seed: int,
    context: dict | None = None,
    env_options: dict | None = None,
    shape=None,
) -> list[float]:
    """The policy's return in `episodes` dreams of at most `steps` steps, stepped together; from the bank
    (context None) or from the given real contexts. An episode ends where the dream ends it (termination,
    or truncation for uncertainty). `shape(reward, info)`: the reward a wrapper would give instead (a trial's
    own penalty), so that the calibration pair measures the dream the learner trained in."""
    import dreamgym

    n = episodes if context is None else len(context["obs"])
    env = dreamgym.make_vec(
        bundle, n, autoreset_mode="Disabled", max_episode_steps=steps, device="cpu", **(env_options or {})
    )
    opts = None if context is None else {"context": context}
    obs, _ = env.reset(seed=seed, options=opts)
    ret, alive = np.zeros(n), np.ones(n, bool)
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(act(obs))
        if shape is not None:
            r = shape(r, info)
        ret += np.where(alive, r, 0.0)
        alive &= ~(term | trunc)
        if not alive.any():
            break
    env.close()
    return ret.tolist()


def measure_point(
    source, bundle, act, episodes: int, T: int, C: int, seed: int, env_options: dict | None = None, shape=None
) -> dict:
    """What the benchmark trials record of a policy at one point: its real return over `episodes` seeded episodes
    of at most T steps (the seeds `run` uses), and the calibration pair (the real return after the first C steps,
    and the dream's from those same C real steps, with `env_options` and the reward `shape`d as in training)."""
    real = real_returns(source, act, episodes, T, seed=20_000 + 100 * seed, context=C)
    same = dream_returns(
        bundle, act, 0, T - C + 1, seed=seed, context=real["context"], env_options=env_options, shape=shape
    )
    return {
        "real_return": float(np.mean(real["returns"])),
        "real_return_std": float(np.std(real["returns"])),
        "calibration": {"real": float(np.mean(real["returns_after_context"])), "dream": float(np.mean(same))},
    }


def sac_trial(make, seed: int, steps: int, evals: int, measure, out: Path, name: str, header: dict) -> list[dict]:
    """The benchmark trials' loop: SB3 SAC with its defaults on one `make()` env, measured at `evals` evenly
    spaced points. Each row is {"steps", **measure(act), "wall_s"} (act: the deterministic policy on a batch or
    one observation); every row is printed, the rows go to OUT/NAME-trial.json after `header`, and the learner
    to OUT/sac-NAME-seedK.zip."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    sac = SAC("MlpPolicy", make_vec_env(make, n_envs=1, seed=seed), seed=seed, verbose=0, device="cpu")
    rows, done, t0 = [], 0, time.time()
    for p in np.linspace(steps / evals, steps, evals).round().astype(int).tolist():
        sac.learn(total_timesteps=p - done, reset_num_timesteps=done == 0)
        done = p
        act = lambda o: sac.predict(np.asarray(o, np.float32), deterministic=True)[0]  # noqa: E731
        rows.append({"steps": p, **measure(act), "wall_s": round(time.time() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
        sac.save(out / f"sac-{name}-seed{seed}.zip")
        _write_json(out / f"{name}-trial.json", {**header, "points": rows})
    return rows


def _same_starts(path, real: dict, act, T: int, C: int, env_options: dict) -> dict:
    """A fixed policy's real return after its episodes' first C steps, and its dream return from those same C
    real steps (`real`: what `real_returns(..., context=C)` gave)."""
    dream = dream_returns(path, act, 0, T - C + 1, seed=0, context=real["context"], env_options=env_options)
    return {"real": float(np.mean(real["returns_after_context"])), "dream": float(np.mean(dream))}


def run(a: TransferArgs, progress: bool = True) -> dict:
    """Every seed of the benchmark; returns the results (also written to OUT/transfer-ALGO.json)."""
    import gymnasium as gym
    from tqdm.auto import tqdm

    import dreamgym
    from dreamgym.source import open_source_env
    from dreamgym.vector_env import uncertainty_options

    path = dreamgym.resolve(a.bundle)
    b = dreamgym.Bundle.load(path)
    env_options = uncertainty_options(a.uncertainty_penalty, a.uncertainty_limit)
    T = int(a.episode_steps or b.max_episode_steps or 1000)
    C = b.context_length
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if C > T:
        raise ValueError(f"--episode-steps {T} is shorter than the dream's context ({C} steps)")
    Algo = _algo(a.algo)
    source = open_source_env(b.manifest)
    real_id = b.manifest.source.env_id
    space = b.action_space
    space.seed(0)
    random_act = lambda o: space.sample()  # noqa: E731
    t0 = time.time()
    rand = real_returns(source, random_act, a.episodes, T, seed=10_000, context=C)
    random_return = float(np.mean(rand["returns"]))
    fixed = {
        "random policy": _same_starts(path, rand, lambda o: np.stack([space.sample() for _ in o]), T, C, env_options)
    }
    if b.has_graph("policy"):  # the bundle's own policy, a fixed point of reference too
        from dreamgym.record import make_policy

        pol = make_policy("bundle", b, np.random.default_rng(0))
        obs_dim = b.observation_space.shape[0]
        pol_act = lambda o: np.asarray(pol(np.asarray(o, np.float32).reshape(-1, obs_dim)))  # noqa: E731
        real_pol = real_returns(source, lambda o: pol_act(o)[0], a.episodes, T, seed=10_500, context=C)
        fixed["bundled policy"] = _same_starts(path, real_pol, pol_act, T, C, env_options)
    points = np.linspace(a.steps / a.evals, a.steps, a.evals).round().astype(int).tolist()
    runs = []
    bar = tqdm(
        total=a.seeds * a.steps * (2 if a.real else 1), desc=f"transfer {a.algo}", unit="step", disable=not progress
    )
    key = _seed_key(a, b)
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        kept = out / f"transfer-{a.algo}-seed{seed}.json"
        if kept.exists():
            old = json.loads(kept.read_text())
            if _same_key(old.get("key"), key):
                runs.append(old["run"])
                bar.update(a.steps * (2 if a.real else 1))
                continue
            bar.write(f"{kept}: made with other settings or another bundle; seed {seed} runs again")
        # the learner sees a plain DreamEnv (SB3 wraps it in its own vector env); the dream truncates itself
        dream_env = _train_env(lambda: dreamgym.make_env(path, device="cpu", **env_options), a.algo, a.n_envs, seed)
        learner = Algo("MlpPolicy", dream_env, seed=seed, verbose=0, device="cpu")
        t_seed = time.time()
        real_learner = None
        if a.real:
            real_learner = Algo(
                "MlpPolicy",
                _train_env(lambda: gym.make(real_id), a.algo, a.n_envs, seed),
                seed=seed,
                verbose=0,
                device="cpu",
            )
        rows, done = [], 0
        for p in points:
            learner.learn(total_timesteps=p - done, reset_num_timesteps=done == 0)
            if real_learner is not None:
                real_learner.learn(total_timesteps=p - done, reset_num_timesteps=done == 0)
            bar.update((p - done) * (2 if a.real else 1))
            done = p
            act = lambda o, m=learner: m.predict(np.asarray(o, np.float32), deterministic=True)[0]  # noqa: E731
            point = measure_point(source, path, act, a.episodes, T, C, seed, env_options=env_options)
            dream = dream_returns(path, act, a.episodes, T, seed=30_000 + seed, env_options=env_options)
            row = {"steps": p, **point, "dream_return": float(np.mean(dream))}
            if real_learner is not None:
                ref = real_returns(
                    source,
                    lambda o, m=real_learner: m.predict(np.asarray(o, np.float32), deterministic=True)[0],
                    a.episodes,
                    T,
                    seed=20_000 + 100 * seed,
                )
                row["real_trained_return"] = float(np.mean(ref["returns"]))
            rows.append(row)
            if progress:  # each point as it comes: a 100k-step seed runs for most of an hour
                bar.write(
                    f"seed {seed}, {p} steps: real {row['real_return']:.0f}, dream {row['dream_return']:.0f}, same "
                    f"starts real / dream {row['calibration']['real']:.0f} / {row['calibration']['dream']:.0f}"
                    + (f", real-trained {row['real_trained_return']:.0f}" if "real_trained_return" in row else "")
                )
            learner.save(out / f"{a.algo}-seed{seed}-dream.zip")
        runs.append({"seed": seed, "points": rows, "wall_s": round(time.time() - t_seed, 1)})
        _write_json(kept, {"key": key, "run": runs[-1]})
    bar.close()
    source.close()
    res = {
        "id": b.id,
        "algo": a.algo,
        "steps": a.steps,
        "seeds": a.seeds,
        "seed_list": [r["seed"] for r in runs],
        "episodes": a.episodes,
        "episode_steps": T,
        "args": asdict(a),
        "random_real_return": random_return,
        "fixed_policies": fixed,
        "wall_s": round(time.time() - t0, 1),
        "runs": runs,
    }
    res["summary"] = summarize(res)
    _write_json(out / f"transfer-{a.algo}.json", res)
    plot(res, out / f"transfer-{a.algo}.png")
    return res


def _seed_key(a: TransferArgs, b) -> dict:
    """What a kept seed must share with this run to be reused: every setting that changes its curve, and
    the model (the hashes of the bundle's graphs and context bank; not of its card, which --write changes, nor
    its id, a name that a bundle can change, as Dream-HalfCheetah-v0 passed from one model to another)."""
    d = asdict(a)
    for k in ("bundle", "seeds", "first_seed", "out", "write"):
        d.pop(k)
    m = b.manifest
    model = {name: g.sha256 for name, g in sorted(m.graphs.items())}
    return {
        "args": d,
        "model": {**model, "contexts": m.contexts.sha256},
        "env_defaults": asdict(m.env_defaults),
    }


def _same_key(kept: dict | None, key: dict) -> bool:
    """Whether a kept seed's key is this run's (keys written before ids left the key still hold one)."""
    return kept is not None and {k: v for k, v in kept.items() if k != "id"} == key


def _write_json(path: Path, obj: dict) -> None:
    """Whole or not at all: an interrupted run leaves the old file or none."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def summarize(res: dict) -> dict:
    """The figures the issue's bars read: final real return per seed, its gain against the real-trained
    learner's gain (gains over the random policy), and the calibration's largest miss."""
    rnd = res["random_real_return"]
    finals = [r["points"][-1] for r in res["runs"]]
    out = {
        "final_real_return": [f["real_return"] for f in finals],
        "final_dream_return": [f["dream_return"] for f in finals],
    }
    refs = [f.get("real_trained_return") for f in finals]
    if all(x is not None for x in refs):
        out["final_real_trained_return"] = refs
        out["gain_ratio"] = [(f["real_return"] - rnd) / (r - rnd) if r != rnd else None for f, r in zip(finals, refs)]
    misses = []
    for r in res["runs"]:
        for p in r["points"]:
            c = p["calibration"]
            tol = max(0.2 * abs(c["real"]), 300.0)  # the bar: within 20 %, or ±300 for small returns
            misses.append(
                {
                    "steps": p["steps"],
                    "seed": r["seed"],
                    "real": c["real"],
                    "dream": c["dream"],
                    "miss": abs(c["dream"] - c["real"]),
                    "within": abs(c["dream"] - c["real"]) <= tol,
                }
            )
    for name, c in res.get("fixed_policies", {}).items():
        tol = max(0.2 * abs(c["real"]), 300.0)
        miss = abs(c["dream"] - c["real"])
        misses.append({"policy": name, "real": c["real"], "dream": c["dream"], "miss": miss, "within": miss <= tol})
    out["largest_calibration_miss"] = max(misses, key=lambda m: m["miss"]) if misses else None
    out["calibrated_points"] = f"{sum(m['within'] for m in misses)} of {len(misses)}"
    return out


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for i, r in enumerate(res["runs"]):
        s = [p["steps"] for p in r["points"]]
        lab = i == 0  # one legend entry per curve kind, whichever seeds ran
        ax.plot(
            s,
            [p["real_return"] for p in r["points"]],
            "C0-o",
            ms=3,
            label="trained in dream, real return" if lab else None,
        )
        ax.plot(
            s, [p["dream_return"] for p in r["points"]], "C1--", label="trained in dream, dream return" if lab else None
        )
        if "real_trained_return" in r["points"][0]:
            ax.plot(
                s, [p["real_trained_return"] for p in r["points"]], "C2:", label="trained in real env" if lab else None
            )
    steps = [p["steps"] for p in res["runs"][0]["points"]]
    ax.plot([0, max(steps)], [res["random_real_return"]] * 2, color="grey", lw=0.8, label="random policy (real)")
    ax.set_xlabel(f"{res['algo'].upper()} training steps")
    ax.set_ylabel(f"return over {res['episode_steps']} steps")
    ax.set_title(f"{res['id']}: {res['algo'].upper()} with SB3 defaults, {res['seeds']} seed(s)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(bundle_path: Path, res: dict, plot_path: Path) -> None:
    """The results into the bundle: metrics.transfer.ALGO, transfer-ALGO.png, and the model card."""
    import shutil

    from dreamgym.export.card import model_card
    from dreamgym.export.exporter import finalize
    from dreamgym.manifest import MANIFEST, Manifest

    m = Manifest.read(bundle_path / MANIFEST)
    keep = {
        k: res[k]
        for k in (
            "algo",
            "steps",
            "seeds",
            "episodes",
            "episode_steps",
            "random_real_return",
            "fixed_policies",
            "wall_s",
            "runs",
            "summary",
        )
    }
    keep["command"] = (
        f"dreamgym transfer {m.id} --algo {res['algo']} --steps {res['steps']} --seeds {res['seeds']} --write"
    )
    transfer = {**m.metrics.get("transfer", {}), res["algo"]: keep}
    from dreamgym.export.exporter import staged

    with staged(bundle_path, copy=True) as folder:
        m.replace(metrics={**m.metrics, "transfer": transfer}).write(folder / MANIFEST)
        shutil.copyfile(plot_path, folder / f"transfer-{res['algo']}.png")
        finalize(folder, model_card)


def cli(argv: list[str]) -> int:
    """train an off-the-shelf learner only in the dream and measure it in reality (extras: export, transfer)"""
    import dreamgym

    a = tyro.cli(TransferArgs, args=list(argv), prog="dreamgym transfer", description=__doc__.splitlines()[0])
    res = run(a)
    print(json.dumps(res["summary"], indent=2))
    if a.write:
        write(Path(dreamgym.resolve(a.bundle)), res, Path(a.out) / f"transfer-{a.algo}.png")
    return 0

"""The stages of `dreamgym train --env` (`any_env`): search, collection, training, export and measurement,
and the transfer run. Each resumes from the run folder: the search from RUN/search.json, the collection
episode by episode (RUN/data/SPLIT), the training from its checkpoints, and the measurements are redone."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
from pathlib import Path

import gymnasium as gym
import numpy as np

# the wide data: what learners visit on their way from flailing to skill (HalfCheetah's study, in
# benchmarks/README.md). policy@F is the search's snapshot at fraction F of its iterations; kick+ and flip+
# need a MuJoCo body (flip+ a planar one) and are left out where the env cannot take them
FRAME_MIX = ("random", "policy:0.1", "mixed", "policy:0.3", "sine", "policy:0.0")
WIDE_MIX = (
    "random",
    "bang",
    "ou",
    "sine",
    "mixed",
    "policy@1/8:0.3",
    "policy@2/8:0.2",
    "policy@3/8:0.1",
    "policy@4/8:0.3",
    "policy@6/8:0.1",
    "policy:0.0",
    "policy:0.5",
    "policy:1.0",
    "kick+policy:0.1",
    "kick+random",
    "kick+policy@2/8:0.2",
    "kick+mixed",
    "flip+random",
    "flip+policy:0.2",
    "flip+bang",
)
PROBE_MIX = ("policy@probe:0.0", "policy@probe:0.2", "policy@probe:0.5", "policy@5/8:0.0", "policy@5/8:0.3")
KEY_PAIRS = [("q", "a"), ("w", "s"), ("e", "d"), ("r", "f"), ("t", "g"), ("y", "h"), ("u", "j"), ("i", "k"), ("o", "l")]


# -- the rules: the learner's defaults from the data, the same for every env -------------------------------
def penalty_rule(reward_std: float, heldout_edge_uncertainty: float, kappa: float) -> tuple[float, str]:
    """λ such that at the edge of the known states (the disagreement that a tenth of held-out real states
    exceed) the penalty is κ reward standard deviations: scale-free in both the reward and the uncertainty.
    The edge, not the median: on Hopper most held-out states are near-certain (median 0.012, 90 % 0.17), and
    a median rule gave a penalty that bites everywhere (λ = 8.6)."""
    lam = kappa * max(reward_std, 1e-6) / max(heldout_edge_uncertainty, 1e-6)
    text = (
        f"{kappa:g} × the training rewards' std ({reward_std:.3f}) / the 90 % quantile of the uncertainty on "
        f"held-out real data ({heldout_edge_uncertainty:.4f})"
    )
    return round(float(lam), 4), text


def horizon_rule(curve: list[float], error: float, most: int) -> tuple[int, str]:
    """The learner's dream length: the most imagined steps whose held-out standardised RMSE (the mean dream
    under the recorded actions, from real states) stays within `error`, between 2 (a one-step dream is no
    episode, and Gymnasium's checker refuses it) and `most`."""
    h = 0
    while h < min(most, len(curve)) and curve[h] <= error:
        h += 1
    h = max(h, 2)
    return h, f"the most imagined steps (2 to {most}) whose held-out error stays within {error:g} data stds"


def keymap_for(action_space, names: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    """A keymap from the action space: a key pair per Box dimension (the first nine, named by `names`), or a
    key per action; and the action meanings."""
    import gymnasium as gym

    if isinstance(action_space, gym.spaces.Discrete):
        n = int(action_space.n)
        keys = ["a", "d"] if n == 2 else [str(k + 1) for k in range(min(n, 9))]  # not the front end's arrows
        binds = [{"keys": [k], "action": i} for i, k in enumerate(keys)]
        return {"discrete": {"default": 0, "bindings": binds}}, [f"action {i}" for i in range(n)]
    dims = action_space.shape[0]
    names = tuple(names) if len(names) == dims else tuple(f"dim {d}" for d in range(dims))
    cont = [{"dim": d, "name": names[d], "keys": list(KEY_PAIRS[d])} for d in range(min(dims, len(KEY_PAIRS)))]
    return {"continuous": cont}, list(names)


def resolve_mix(mix: tuple[str, ...], snapshots: list[str], perturbations: set[str]) -> list[str]:
    """Behaviour names with `policy@F` (a fraction of the search) turned into the snapshot taken there, and
    the perturbations the env cannot take left out."""
    out = []
    for kind in mix:
        if "+" in kind and kind.split("+")[0] not in perturbations:
            continue

        def snap(m):
            num, den = map(int, m.group(1).split("/"))
            return "@" + snapshots[min(num * len(snapshots) // den, len(snapshots) - 1)]

        out.append(re.sub(r"@(\d+/\d+)", snap, kind))
    return out


def _t(x):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x))


# -- data ----------------------------------------------------------------------------------------------------
def env_data(r, run: Path, stages, act_space, max_steps: int, progress: bool) -> dict:
    """Search the real env for policies of rising skill, then collect the four splits."""
    from dreamgym.export.data.ars import LinearPolicy, train_ars
    from dreamgym.export.data.ars import evaluate as ars_evaluate
    from dreamgym.export.data.collect import CollectConfig, Perturb, collect
    from dreamgym.export.data.episodes import load_folder

    kw = json.loads(r.env_kwargs)
    cfg = dataclasses.replace(r.ars, env_id=r.env)
    search = run / "search.json"

    def do_search():
        snaps, stats, probe_stats = {}, {}, {}
        pol = train_ars(
            cfg, snapshots=snaps, every=max(1, cfg.iterations // 8), env_kwargs=kw, stats=stats, progress=progress
        )
        probe_cfg = dataclasses.replace(
            cfg, iterations=max(1, round(cfg.iterations * r.probe_iterations_share)), seed=7
        )
        probe = train_ars(probe_cfg, env_kwargs=kw, stats=probe_stats, progress=progress)
        res = {
            "policy": pol.to_dict(),
            "return": ars_evaluate(r.env, pol, episodes=3, env_kwargs=kw),
            "snapshots": snaps,
            "env_steps": stats.get("env_steps", 0),
            "probe": probe.to_dict(),
            "probe_return": ars_evaluate(r.env, probe, episodes=3, env_kwargs=kw),
            "probe_env_steps": probe_stats.get("env_steps", 0),
        }
        run.mkdir(parents=True, exist_ok=True)
        search.write_text(json.dumps(res))

    stages("search", do_search, done=search.exists())
    s = json.loads(search.read_text())
    policy = LinearPolicy.from_dict(s["policy"])
    policies = {f"s{k}": LinearPolicy.from_dict(v).act for k, v in s["snapshots"].items()}
    policies["probe"] = LinearPolicy.from_dict(s["probe"]).act
    snap_names = [f"s{k}" for k in sorted(map(int, s["snapshots"]))]
    probe_env = gym.make(r.env, **kw)
    allowed = {k for k in ("kick", "flip") if Perturb.allowed(k, probe_env)}
    probe_env.close()
    mixes = {
        "frames": resolve_mix(FRAME_MIX, snap_names, allowed),
        "wide": resolve_mix(WIDE_MIX, snap_names, allowed),
        "probe": resolve_mix(PROBE_MIX, snap_names, allowed),
    }
    splits = {  # folder -> (behaviours, steps, frames, seed)
        "train/frames": (mixes["frames"], r.frame_steps, r.frame_size, 1),
        "heldout": (mixes["frames"], r.heldout_steps, r.frame_size, 2),
        "train/wide": (mixes["wide"], r.wide_steps, 0, 3),
        "probe": (mixes["probe"], r.probe_steps, 0, 4),
    }
    for folder, (mix, steps, frames, seed) in splits.items():
        where, done = run / "data" / folder, run / "data" / folder / "complete"
        c = CollectConfig(
            env_id=r.env,
            behaviours=tuple(mix),
            episodes=0,
            steps=steps,
            max_steps=max_steps,
            frame_size=frames,
            seed=seed,
            share=r.share,
        )

        def do(c=c, where=where, done=done):
            collect(c, where, policy.act, progress, policies, env_kwargs=kw)
            done.write_text("")

        stages(f"collect_{folder.replace('/', '_')}", do, done=done.exists())
    loaded = {k: load_folder(run / "data" / k) for k in splits}  # each split once
    frame_eps = loaded["train/frames"]
    train = frame_eps + loaded["train/wide"]
    steps = {k: sum(len(e["obs"]) - 1 for e in eps) for k, eps in loaded.items()}
    steps["search"], steps["probe_search"] = s["env_steps"], s["probe_env_steps"]
    perturbed = (
        ""
        if allowed == {"kick", "flip"}
        else f" ({', '.join(sorted({'kick', 'flip'} - allowed)) or 'none'} left out: the env cannot take it)"
    )
    shared = "cycled episode by episode" if r.share == "episodes" else "an equal share of the steps each"
    text = (
        f"{sum(steps.values())} real steps of {r.env} in all. Search: ARS ({cfg.iterations} iterations, "
        f"{steps['search']} steps; its final linear policy scores {s['return']:.0f} per episode and ships as "
        f"policy.onnx) and a probe search with another seed ({steps['probe_search']} steps, {s['probe_return']:.0f}). "
        f"Training data: {len(train)} episodes ({steps['train/frames'] + steps['train/wide']} steps): "
        f"{steps['train/frames']} steps with frames, behaviours {mixes['frames']} ({shared}), and "
        f"{steps['train/wide']} for wide coverage, behaviours {mixes['wide']} ({shared}{perturbed}; policy@sN is the "
        "search's policy after N iterations, :x action noise of std x (for discrete actions: a random action with "
        "probability x), kick+ random pushes to every joint's velocity every 50-200 steps, flip+ a start pitched by a "
        f"random angle). Held out: {steps['heldout']} steps of the frame behaviours; probe: {steps['probe']} steps "
        f"of {mixes['probe']} (policies in no training data)."
    )
    return {
        "train": train,
        "frame_episodes": len(frame_eps),
        "heldout": loaded["heldout"],
        "probe": loaded["probe"],
        "probe_text": ", ".join(mixes["probe"]),
        "policy": policy,
        "steps": steps,
        "text": text,
        "packages": _packages(run / "data/heldout"),
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _packages(folder: Path) -> dict:
    first = next(iter(sorted(folder.rglob("episode_*.npz"))), None)
    if first is None:
        return {}
    with np.load(first, allow_pickle=False) as z:
        return json.loads(z["meta"].item()).get("packages", {})


def dataset_data(r, run: Path, stages) -> dict:
    """Logged episodes: every episode_*.npz under the folder (or a Minari dataset), a seeded share held out."""
    from dreamgym.export.data.collect import load_episodes
    from dreamgym.export.data.episodes import align, load_minari

    p = Path(r.dataset)
    if p.is_dir() and any(p.rglob("episode_*.npz")):
        folders = sorted({f.parent for f in p.rglob("episode_*.npz")})
        eps = [align(e) for f in folders for e in load_episodes(f)]
    elif p.exists() and not p.is_dir():
        raise ValueError(f"--dataset {r.dataset}: expected a folder of episode_*.npz or a Minari dataset")
    else:
        eps = load_minari(r.dataset)
    if len(eps) < 2:
        raise ValueError(f"--dataset {r.dataset}: {len(eps)} episode(s); need at least 2 (some are held out)")
    order = np.random.default_rng(0).permutation(len(eps))
    n_held = min(max(1, round(r.heldout_share * len(eps))), len(eps) - 1)
    held, train = [eps[i] for i in order[:n_held]], [eps[i] for i in order[n_held:]]
    n = lambda es: sum(len(e["obs"]) - 1 for e in es)  # noqa: E731
    frames = sum("frames" in e for e in train)
    return {
        "train": train,
        "frame_episodes": frames,
        "heldout": held,
        "probe": held,
        "probe_text": "held-out episodes of the dataset (it has no policies of its own)",
        "policy": None,
        "steps": {"train": n(train), "heldout": n(held)},
        "text": (
            f"Logged episodes only ({r.dataset}; no env was stepped during the build): {len(train)} training "
            f"episodes ({n(train)} steps, {frames} with frames) and {len(held)} held out ({n(held)} steps), split "
            "at random with seed 0."
        ),
        "packages": _packages(p) if p.is_dir() else {},
    }


# -- the model ----------------------------------------------------------------------------------------------
def train_model(r, run: Path, stages, data: dict, obs_space, act_space, progress: bool):
    """The step ensemble of the data: the frame decoder on (obs, frame) pairs (when there are frames), then
    the members and the termination head on transitions."""
    from dreamgym.export.data.episodes import SequenceSampler, TerminationSampler
    from dreamgym.export.families.ensemble import StepEnsemble
    from dreamgym.export.train.fit import fit, fit_frame_decoder

    discrete = isinstance(act_space, gym.spaces.Discrete)
    train, held = data["train"], data["heldout"]
    has_frames = any("frames" in e for e in train)
    cfg = dataclasses.replace(
        r.model,
        obs_dim=int(obs_space.shape[0]),
        act_dim=int(act_space.n) if discrete else int(act_space.shape[0]),
        discrete=discrete,
        termination=any(float(e["cont"].min()) < 1 for e in train),
        frame_size=r.frame_size or r.model.frame_size,
        frame_bars=not has_frames,
        clip_obs=bool(np.isfinite(obs_space.low).any() or np.isfinite(obs_space.high).any()),
    )
    model = StepEnsemble(cfg)
    model.set_stats(train)
    model.set_obs_bounds(obs_space.low, obs_space.high)
    if not discrete:
        model.set_action_bounds(act_space.low, act_space.high)
    meta = {"model_config": dataclasses.asdict(cfg)}
    res = {}
    if has_frames:
        res["frames"] = fit_frame_decoder(model, train, held, r.frames, run, meta=meta, progress=progress)
    seqs, hseq = SequenceSampler(train, 2, r.world.seed), SequenceSampler(held, 2, r.world.seed + 1)
    keys = ("obs", "prev_act", "reward", "cont", "mask")
    sample = lambda s, n: tuple(_t(s.sample(n)[k]) for k in keys)  # noqa: E731
    frame_params = {id(p) for p in model.frame_decoder.parameters()}
    head = {id(p) for p in model.term.parameters()} if cfg.termination else set()
    res["world"] = fit(
        model,
        lambda b: model.loss(*b, with_termination=False),
        lambda n: sample(seqs, n),
        r.world,
        run,
        name="world",
        params=[p for p in model.parameters() if id(p) not in frame_params | head],
        heldout=lambda: model.loss(*sample(hseq, 2048), with_termination=False)[1],
        meta=meta,
        progress=progress,
    )
    if cfg.termination:  # the head apart, with terminal rows drawn on top of each batch (they are rare)
        ts, th = (
            TerminationSampler(train, r.termination.seed),
            TerminationSampler(held, r.termination.seed + 1),
        )
        res["termination"] = fit(
            model.term,
            lambda b: model.termination_loss(*b),
            lambda n: tuple(map(_t, ts.sample(n))),
            r.termination,
            run,
            name="termination",
            heldout=lambda: model.termination_loss(*map(_t, th.sample(20000, extra=False)))[1],
            meta=meta,
            progress=progress,
        )
    stages.record("train", sum(v["wall_s"] for v in res.values()))
    return model.eval()


def bank(episodes: list[dict], n: int, rng: np.random.Generator, discrete: bool, start_share: float = 0.1) -> dict:
    """n single-step contexts: real non-terminal states of the training data, a share of them episode starts."""
    live = [np.flatnonzero(e["cont"] > 0) for e in episodes]
    obs, act = [], []
    for _ in range(n):
        i = int(rng.integers(len(episodes)))
        t = 0 if rng.random() < start_share else int(rng.choice(live[i]))
        obs.append(episodes[i]["obs"][t : t + 1]), act.append(episodes[i]["prev_act"][t : t + 1])
    a = np.stack(act)
    return {
        "obs": np.stack(obs).astype(np.float32),
        "actions": a.reshape(n, 1).astype(np.int64) if discrete else a.astype(np.float32),
    }


# -- export, measurement, the rules ---------------------------------------------------------------------
def export_and_measure(r, run, out, bundle_id, stages, model, data, info, max_steps: int) -> dict:
    """Export the bundle, measure it on held-out data, set the defaults the rules give, write the card."""
    from dreamgym.export import exporter
    from dreamgym.export.card import make_preview, model_card
    from dreamgym.export.data.sources import MUJOCO_RENDER
    from dreamgym.export.measure.fidelity import fidelity, open_loop
    from dreamgym.export.measure.report import write_metrics
    from dreamgym.export.measure.termination import episode_lengths, termination_report
    from dreamgym.export.measure.vector import evaluate, uncertainty_report
    from dreamgym.export.train.recipes.halfcheetah_rssm import set_env_defaults
    from dreamgym.manifest import EnvDefaults, Source

    obs_space, act_space = info.observation_space, info.action_space
    discrete = isinstance(act_space, gym.spaces.Discrete)
    kw = json.loads(r.env_kwargs)
    render = {**MUJOCO_RENDER, "size": r.frame_size} if info.mujoco else {"kind": "gym"}
    if kw:
        render["make_kwargs"] = kw
    keymap, meanings = keymap_for(act_space, info.names)
    ends = "ends when the predicted state is terminal, " if model.cfg.termination else ""
    manifest = exporter.make_manifest(
        model,
        id=bundle_id,
        description=(
            f"A learned {r.env or 'environment'}: an ensemble of memoryless one-step models (MBPO/MOPO) in the real "
            f"env's observation space, trained on {'its logged episodes' if r.dataset else 'generic coverage data'}; "
            f"{ends}short dreams from real states for learners, `dreamgym train {'--dataset ' + str(r.dataset) if r.dataset else '--env ' + r.env}`."
        ),
        source=Source(env_id=r.env or None, render=render if r.env else {}, packages=data["packages"]),
        observation_space=obs_space,
        action_space=act_space,
        context_length=1,
        max_episode_steps=max_steps,
        render_fps=info.fps,
        keymap=keymap,
        action_meanings=meanings,
    )
    ctx = bank(data["train"], r.context_windows, np.random.default_rng(0), discrete)
    pol = exporter.LinearPolicyGraph.of(data["policy"]) if data["policy"] is not None else None
    stages(
        "export",
        lambda: exporter.write_bundle(out, model=model, manifest=manifest, contexts=ctx, policy=pol, card=model_card),
    )
    par = exporter.parity(model, {g: out / f"{g}.onnx" for g in ("reset", "step", "render")}, 1)
    held, probe = data["heldout"], data["probe"]

    def measure():
        std = np.concatenate([e["obs"] for e in held]).std(0) + 1e-6
        m = evaluate(out, held, with_policy=data["policy"] is not None and bool(r.env))
        H = min(r.horizon_max, max(len(e["obs"]) for e in held) - 1)  # the longest held-out episode bounds it
        rule_curve = fidelity(open_loop(out, held, horizon=H, stride=10), std)["curve"]["model"]
        u = uncertainty_report(out, probe, held, stride=max(1, min(10, sum(len(e["obs"]) for e in probe) // 200)))
        t = termination_report(out, held) if model.cfg.termination else None
        if t is not None and r.env:  # whole episodes, real against dreamt, from the same real starts
            t["lengths"] = episode_lengths(out)
        return m, rule_curve, u, t

    m, curve, u, term = stages("evaluate", measure)
    reward_std = float(np.concatenate([e["reward"][1:] for e in data["train"]]).std())
    lam, lam_text = penalty_rule(reward_std, u["heldout_quantiles"]["0.9"], r.penalty_kappa)
    h, h_text = horizon_rule(curve, r.horizon_error, r.horizon_max)
    u.update(penalty=lam, penalty_rule=lam_text, limit=None, limit_rule="none", probe_behaviours=[data["probe_text"]])
    u.update(horizon=h, horizon_rule=h_text, horizon_curve=[round(float(c), 4) for c in curve])
    timings = stages.timings
    extra = {
        "parity": par,
        "data": {
            "train_steps": sum(len(e["obs"]) - 1 for e in data["train"]),
            "train_episodes": len(data["train"]),
            "frame_episodes": data["frame_episodes"],
            "heldout_episodes": len(held),
            "real_steps": data["steps"],
            "bank": "the training data (terminal states left out)",
            "text": data["text"],
        },
        "recipe": {
            "command": "dreamgym train " + (f"--dataset {r.dataset}" if r.dataset else f"--env {r.env}"),
            "stages": timings,
            "wall_s": sum(timings.values()),
            "wall_time_text": f"{sum(timings.values()) / 60:.1f} min",
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads {_threads()}",
            "train_config": {
                "frames": dataclasses.asdict(r.frames),
                "world": dataclasses.asdict(r.world),
                **({"termination": dataclasses.asdict(r.termination)} if model.cfg.termination else {}),
            },
        },
        "uncertainty": u,
    }
    if term is not None:
        extra["termination"] = term
    write_metrics(out, m, extra)
    set_env_defaults(out, EnvDefaults(lam, None, h))
    make_preview(out, policy="bundle" if pol is not None else "random")
    print(
        f"defaults: penalty {lam} ({lam_text}); horizon {h} ({h_text}); uncertainty Spearman "
        f"{u['spearman_obs_error']:.3f}" + (f"; termination {json.dumps(term)}" if term else "")
    )
    return {"fidelity": m, **extra, "defaults": {"uncertainty_penalty": lam, "max_episode_steps": h}}


def transfer(r, run: Path, out: Path, act_space, stages) -> dict:
    """`dreamgym transfer` on the new bundle (SAC for Box actions, PPO for Discrete ones), written into it."""
    from dreamgym.export.measure.transfer import TransferArgs, write
    from dreamgym.export.measure.transfer import run as transfer_run

    if not r.env:
        raise ValueError("--transfer needs the real env (--env) to measure the learner in")
    algo = "ppo" if isinstance(act_space, gym.spaces.Discrete) else "sac"
    a = TransferArgs(
        bundle=str(out), algo=algo, steps=r.transfer_steps, seeds=r.transfer_seeds, out=str(run / "transfer")
    )
    res = stages("transfer", lambda: transfer_run(a))
    write(out, res, run / "transfer" / f"transfer-{algo}.png")
    return res["summary"]

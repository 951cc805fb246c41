"""Rebuild the shipped Dream-HalfCheetah-RSSM-v0 from nothing on a 2-core CPU:

    dreamgym train halfcheetah_rssm [--preset tiny|full] [--run DIR] [--out DIR] [--world.steps N ...]

1. ARS finds a linear running policy in the real HalfCheetah-v5 (it ships as policy.onnx);
2. the collector records 60 training and 12 held-out episodes mixing random flailing, the policy with
   action noise, sinusoidal gaits and policy/random switches, with 64x64 frames;
3. the RSSM (Gaussian latents, deter 128, hidden 128, standardised observations; the lean architecture:
   no norm, ReLU, one shared head MLP, sigmoid std) trains: first the frame decoder, then the dynamics;
4. the exporter writes the bundle (graphs, 512 held-out context windows, manifest) and checks parity;
5. the evaluator measures fidelity on the held-out episodes and writes the model card.

The policy and the episodes live in --data (shared with the TSSM recipe), the model's checkpoints in
--run; each stage is skipped when its output is there already, so an interrupted rebuild resumes
(training resumes from its checkpoint). `--preset tiny` runs every stage at toy sizes in about a minute.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from dreamgym.export import exporter
from dreamgym.export.card import make_preview, model_card
from dreamgym.export.data.ars import ARSConfig, LinearPolicy, train_ars
from dreamgym.export.data.ars import evaluate as ars_evaluate
from dreamgym.export.data.collect import CollectConfig, collect
from dreamgym.export.data.episodes import load_folder
from dreamgym.export.data.sources import MUJOCO_RENDER
from dreamgym.export.families import family_of
from dreamgym.export.families.rssm import RSSMConfig
from dreamgym.export.measure.report import write_metrics
from dreamgym.export.measure.vector import evaluate, uncertainty_report
from dreamgym.export.train.fit import FitConfig
from dreamgym.export.train.recipes import Stages
from dreamgym.export.train.recipes import main as recipe_main
from dreamgym.manifest import MANIFEST, EnvDefaults, Manifest, Source

ENV_ID = "HalfCheetah-v5"
FAMILY_TEXT = {
    "rssm": "an RSSM (PlaNet/Dreamer) world model",
    "tssm": "a TSSM (TransDreamer) world model, a causal transformer with a KV-cache step,",
    "step-ensemble": "an ensemble of memoryless one-step models (MBPO/MOPO) in observation space",
}
RECIPE_OF = {"rssm": "halfcheetah_rssm", "tssm": "halfcheetah_tssm", "step-ensemble": "halfcheetah_ensemble"}
MIX = ("random", "policy:0.1", "mixed", "policy:0.3", "sine", "policy:0.0")
# the wide data: what learners visit on their way from flailing to running. Random and correlated noise,
# saturated actions, gaits, the ARS search's own policies of rising skill (s15 ... s90, the iterations
# they were taken at) and the final one with little to much noise, and bodies pushed out of the states
# policies reach (kicked joints, a flipped start)
WIDE = (
    "random",
    "bang",
    "ou",
    "sine",
    "mixed",
    "policy@s15:0.3",
    "policy@s30:0.2",
    "policy@s45:0.1",
    "policy@s60:0.3",
    "policy@s90:0.1",
    "policy:0.0",
    "policy:0.5",
    "policy:1.0",
    "kick+policy:0.1",
    "kick+random",
    "kick+policy@s30:0.2",
    "kick+mixed",
    "flip+random",
    "flip+policy:0.2",
    "flip+bang",
)
# policies that are in no training data: a second ARS search with another seed (another gait) and a
# snapshot of the first between the ones collected; on their states the uncertainty is measured
PROBE = ("policy@probe:0.0", "policy@probe:0.2", "policy@probe:0.5", "policy@s75:0.0", "policy@s75:0.3")
SKILL_EVERY = 15


@dataclass(frozen=True)
class Recipe:
    run: str = "runs/halfcheetah/run_lean"
    """folder of the model's checkpoints, training log and stage timings (stages resume from it)"""
    data: str = "runs/halfcheetah"
    """folder of the ARS policy and the episodes, shared by the HalfCheetah recipes"""
    out: str = "assets/halfcheetah-rssm"
    """the bundle folder written"""
    id: str = "Dream-HalfCheetah-RSSM-v0"
    """the bundle's id"""
    ars: ARSConfig = ARSConfig()
    """the ARS search for the running policy"""
    train_data: CollectConfig = CollectConfig(env_id=ENV_ID, behaviours=MIX, episodes=60, seed=1)
    """training episodes"""
    heldout_data: CollectConfig = CollectConfig(env_id=ENV_ID, behaviours=MIX, episodes=12, seed=2)
    """held-out episodes (context bank and fidelity)"""
    wide_data: CollectConfig = CollectConfig(env_id=ENV_ID, behaviours=WIDE, episodes=480, frame_size=0, seed=3)
    """wide-coverage training episodes, without frames (the dynamics train on them, the frame decoder does not)"""
    probe_ars: ARSConfig = ARSConfig(iterations=40, seed=7)
    """the probe policy's ARS search (a policy in no training data)"""
    probe_data: CollectConfig = CollectConfig(env_id=ENV_ID, behaviours=PROBE, episodes=10, frame_size=0, seed=4)
    """episodes of policies in no training data, for the uncertainty's correlation with the real error"""
    # the model is chosen with fidelity and speed in view: 128 wide, standardised observations (the fidelity
    # metric's own scale) and the lean architecture (no norm, ReLU, shared heads, sigmoid std: the fewest
    # onnxruntime nodes per step); the measurements are in benchmarks/README.md, "Model size against fidelity"
    model: RSSMConfig = RSSMConfig(
        deter=128,
        stoch=24,
        hidden=128,
        symlog_inputs=False,
        norm="none",
        act="relu",
        shared_heads=True,
        std_act="sigmoid",
        ensemble=5,
        ensemble_hidden=32,
    )
    """the world model"""
    frames: FitConfig = FitConfig(steps=1500, batch=64, lr=6e-4, grad_clip=100.0, eval_every=250, ckpt_every=500)
    """training of the frame decoder on (obs, frame) pairs, done first"""
    world: FitConfig = FitConfig(steps=6000, batch=16, lr=6e-4, grad_clip=100.0, eval_every=250, ckpt_every=500)
    """training of the dynamics on sequences (batch: sequences per update)"""
    ensemble: FitConfig = FitConfig(steps=3000, batch=16, lr=1e-3, grad_clip=100.0, eval_every=500, ckpt_every=500)
    """training of the uncertainty ensemble on the trained model's states, done last"""
    uncertainty_penalty_scale: float = 1.0
    """the bundle's default λ (reward minus λ·uncertainty) is this times the training rewards' standard
    deviation: the uncertainty is in standard-deviation units, so λ·uncertainty is in reward units"""
    uncertainty_limit_quantile: float = 0.999
    """the bundle's default τ is this quantile of the uncertainty on held-out real data ..."""
    uncertainty_limit_scale: float = 2.0
    """... times this (0: no limit)"""
    horizon: int | None = None
    """the bundle's training horizon (env_defaults.max_episode_steps: short dreams from the bank's real
    states); None: whole episodes"""
    seq_len: int = 50
    """steps per training sequence"""
    context_length: int = 10
    """C: real steps a reset filters"""
    context_windows: int = 512
    """real context windows in the bundle's bank"""
    context_source: str = "heldout"
    """where the bank's windows come from: "heldout" episodes, or the "train"ing data (every state a dream
    may start from is then one the model was fitted on)"""
    eval_policy: bool = True
    """measure the bundled policy's return in dream and reality"""


TINY = Recipe(
    run="runs/halfcheetah-tiny/run",
    data="runs/halfcheetah-tiny",
    out="runs/halfcheetah-tiny/bundle",
    id="Dream-HalfCheetahTiny-v0",
    ars=ARSConfig(iterations=3, directions=4, top=2, horizon=50),
    train_data=CollectConfig(env_id=ENV_ID, behaviours=("random", "policy:0.1"), episodes=2, max_steps=120, seed=1),
    heldout_data=CollectConfig(env_id=ENV_ID, behaviours=("mixed",), episodes=1, max_steps=120, seed=2),
    wide_data=CollectConfig(
        env_id=ENV_ID, behaviours=("flip+bang", "kick+policy@s2:0.3"), episodes=2, max_steps=120, frame_size=0, seed=3
    ),
    probe_ars=ARSConfig(iterations=2, directions=4, top=2, horizon=50, seed=7),
    probe_data=CollectConfig(env_id=ENV_ID, behaviours=("policy@probe:0.2",), episodes=1, max_steps=120, seed=4),
    model=RSSMConfig(deter=32, stoch=8, hidden=32, frame_channels=8, overshoot=3, ensemble=3, ensemble_hidden=16),
    frames=FitConfig(steps=10, batch=64, lr=6e-4, grad_clip=100.0, eval_every=10, ckpt_every=10),
    world=FitConfig(steps=20, batch=4, lr=6e-4, grad_clip=100.0, eval_every=10, ckpt_every=10),
    ensemble=FitConfig(steps=20, batch=4, lr=1e-3, grad_clip=100.0, eval_every=10, ckpt_every=10),
    seq_len=16,
    context_windows=16,
)
PRESETS = {"full": Recipe(), "tiny": TINY}


KEYMAP = {  # a key pair per action dimension: (negative, positive)
    "continuous": [
        {"dim": 0, "name": "back thigh", "keys": ["q", "a"]},
        {"dim": 1, "name": "back shin", "keys": ["w", "s"]},
        {"dim": 2, "name": "back foot", "keys": ["e", "d"]},
        {"dim": 3, "name": "front thigh", "keys": ["u", "j"]},
        {"dim": 4, "name": "front shin", "keys": ["i", "k"]},
        {"dim": 5, "name": "front foot", "keys": ["o", "l"]},
    ]
}
ACTION_MEANINGS = ["bthigh torque", "bshin torque", "bfoot torque", "fthigh torque", "fshin torque", "ffoot torque"]


def _t(x):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x))


def train(model, train_eps: list[dict], held_eps: list[dict], r: Recipe, stages: Stages, progress: bool = True) -> dict:
    """The two phases through `fit`: the frame decoder on (obs, frame) pairs (then frozen), then the rest
    of the model on sequences. Checkpoints RUN/frames.npz and RUN/world.npz; log RUN/log.jsonl."""
    from dreamgym.export.data.episodes import SequenceSampler
    from dreamgym.export.train.fit import fit, fit_frame_decoder

    run = Path(r.run)
    upgrade_checkpoint(run)
    meta = {"model_config": dataclasses.asdict(r.model)}
    out = {}
    if any("frames" in e for e in train_eps):
        out["frames"] = fit_frame_decoder(model, train_eps, held_eps, r.frames, run, meta=meta, progress=progress)
    seqs, held = (
        SequenceSampler(train_eps, r.seq_len, r.world.seed),
        SequenceSampler(held_eps, r.seq_len, r.world.seed + 1),
    )
    keys = ("obs", "prev_act", "reward", "cont", "mask")

    def sample(sampler, n):
        b = sampler.sample(n)
        return tuple(_t(b[k]) for k in keys)

    apart = {id(p) for m in (model.frame_decoder, getattr(model, "ensemble", None)) if m for p in m.parameters()}
    out["world"] = fit(
        model,
        lambda b: model.loss(*b),
        lambda n: sample(seqs, n),
        r.world,
        run,
        name="world",
        params=[p for p in model.parameters() if id(p) not in apart],
        heldout=lambda: model.loss(*sample(held, 64))[1],
        meta=meta,
        progress=progress,
    )
    if getattr(model.cfg, "ensemble", 0):  # last, on the trained model's states (the rest of the model stays as it is)
        K = model.cfg.ensemble
        boot = np.random.default_rng(r.ensemble.seed + 7)

        def ens_sample(n):  # each member sees its own random half of every batch (an online bootstrap)
            return (*sample(seqs, n), _t((boot.random((K, n)) < 0.5).astype(np.float32)))

        out["ensemble"] = fit(
            model.ensemble,
            lambda b: model.ensemble_loss(*b),
            ens_sample,
            r.ensemble,
            run,
            name="ensemble",
            heldout=lambda: model.ensemble_loss(*sample(held, 64), _t(np.ones((K, 64), np.float32)))[1],
            meta=meta,
            progress=progress,
        )
    stages.record("train", sum(v["wall_s"] for v in out.values()))
    return out


def upgrade_checkpoint(run: Path) -> None:
    """Runs trained before `fit` kept both phases in one RUN/model.npz (optimizers "frames" and "dynamics",
    one update count over both): split it into the frames.npz and world.npz that `fit` resumes from."""
    old = run / "model.npz"
    if not old.exists() or (run / "world.npz").exists() or (run / "frames.npz").exists():
        return
    from dreamgym.export.train.fit import load_checkpoint

    meta = load_checkpoint(old)
    if "train_config" not in meta:
        return
    with np.load(old, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
    fs, step, groups = int(meta["train_config"]["frame_steps"]), int(meta["step"]), meta["opt_groups"]
    common = {"model_config": meta.get("model_config", {}), "upgraded_from": "model.npz"}
    fd = "model/frame_decoder."
    frame_arrays = {"model/" + k[len(fd) :]: v for k, v in arrays.items() if k.startswith(fd)}
    frame_arrays.update({k: v for k, v in arrays.items() if k.startswith("opt/frames/")})
    np.savez(
        run / "frames.npz",
        meta=np.array(
            json.dumps({**common, "step": min(step, fs), "wall_s": 0.0, "opt_groups": {"frames": groups["frames"]}})
        ),
        **frame_arrays,
    )
    if step > fs:
        world = {k: v for k, v in arrays.items() if k.startswith("model/")}
        world.update(
            {"opt/world/" + k[len("opt/dynamics/") :]: v for k, v in arrays.items() if k.startswith("opt/dynamics/")}
        )
        np.savez(
            run / "world.npz",
            meta=np.array(
                json.dumps(
                    {**common, "step": step - fs, "wall_s": meta["wall_s"], "opt_groups": {"world": groups["dynamics"]}}
                )
            ),
            **world,
        )


def frameless_data(
    data: str | Path, splits: tuple[str, ...] = ("train", "wide"), r: Recipe | None = None, progress: bool = True
) -> tuple[LinearPolicy, list[dict]]:
    """The recipe's ARS policy (with its skill snapshots) and its episodes of `splits`, collected again without
    frames into `data` (each part resumes from what is there): for experiments that need the dynamics' data
    but not the frame decoder's. Returns the final policy and the episodes, split after split."""
    r, data = r or Recipe(), Path(data)
    pol_path = data / "ars_policy.json"
    if not pol_path.exists():
        snaps: dict = {}
        pol = train_ars(r.ars, snapshots=snaps, every=SKILL_EVERY)
        data.mkdir(parents=True, exist_ok=True)
        pol_path.write_text(json.dumps({**pol.to_dict(), "snapshots": snaps}))
    pol_d = json.loads(pol_path.read_text())
    policy = LinearPolicy.from_dict(pol_d)
    policies = {f"s{k}": LinearPolicy.from_dict(v).act for k, v in pol_d["snapshots"].items()}
    configs = {"train": r.train_data, "heldout": r.heldout_data, "wide": r.wide_data}
    episodes = []
    for split in splits:
        cfg = dataclasses.replace(configs[split], frame_size=0)
        if len(list((data / split).glob("episode_*.npz"))) < cfg.episodes:
            collect(cfg, data / split, policy.act, progress, policies)
        episodes += load_folder(data / split)
    return policy, episodes


def build(r: Recipe, progress: bool = True) -> dict:
    """Every stage of the recipe; returns the fidelity and the rest of what goes into the manifest."""
    data, run, out = Path(r.data), Path(r.run), Path(r.out)
    shared, stages = Stages(data), Stages(run)

    # 1. a running policy
    pol_path = data / "ars_policy.json"

    def do_ars():  # the final policy, and snapshots of it every SKILL_EVERY iterations: rising skill
        snaps: dict = {}
        pol = train_ars(r.ars, snapshots=snaps, every=SKILL_EVERY if r.ars.iterations > SKILL_EVERY else 1)
        ret = ars_evaluate(ENV_ID, pol, episodes=1)
        pol_path.write_text(json.dumps({"return": ret, **pol.to_dict(), "snapshots": snaps}))

    shared("ars", do_ars, done=pol_path.exists() and "snapshots" in json.loads(pol_path.read_text()))
    pol_d = json.loads(pol_path.read_text())
    policy = LinearPolicy.from_dict(pol_d)
    probe_path = data / "probe_policy.json"

    def do_probe():
        pol = train_ars(r.probe_ars)
        probe_path.write_text(json.dumps({"return": ars_evaluate(ENV_ID, pol, episodes=1), **pol.to_dict()}))

    shared("ars_probe", do_probe, done=probe_path.exists())
    probe_d = json.loads(probe_path.read_text())
    policies = {f"s{k}": LinearPolicy.from_dict(v).act for k, v in pol_d["snapshots"].items()}
    policies["probe"] = LinearPolicy.from_dict(probe_d).act

    # 2. data
    splits = (("train", r.train_data), ("heldout", r.heldout_data), ("wide", r.wide_data), ("probe", r.probe_data))
    for split, cfg in splits:
        folder = data / "data" / split
        shared(
            f"collect_{split}",
            lambda cfg=cfg, folder=folder: collect(cfg, folder, policy.act, progress, policies),
            done=len(list(folder.glob("episode_*.npz"))) >= cfg.episodes,
        )
    frame_eps, held_eps = load_folder(data / "data" / "train"), load_folder(data / "data" / "heldout")
    train_eps = frame_eps + load_folder(data / "data" / "wide")
    probe_eps = load_folder(data / "data" / "probe")

    # 3. the model (the family follows from the config's type)
    model = family_of(r.model).build(r.model)
    if hasattr(model, "set_obs_stats"):  # standardisation statistics come from the training data
        all_obs = np.concatenate([e["obs"] for e in train_eps])
        rewards = np.concatenate([e["reward"][1:] for e in train_eps])
        model.set_obs_stats(all_obs.mean(0), all_obs.std(0), reward_std=rewards.std())
    elif hasattr(model, "set_stats"):
        model.set_stats(train_eps)
    train(model, train_eps, held_eps, r, stages, progress)
    model.eval()

    # 4. the bundle
    env = gym.make(ENV_ID)
    C = r.context_length
    manifest = exporter.make_manifest(
        model,
        id=r.id,
        description=(
            f"A learned HalfCheetah-v5: {FAMILY_TEXT[model.family]} trained on random flailing "
            "and running gaits, with HalfCheetah's observation and action spaces, a learned reward, "
            "and frames from a decoder of the model's observation."
        ),
        source=Source(
            env_id=ENV_ID,
            render={**MUJOCO_RENDER, "size": 64},
            packages=json.loads(
                np.load(next((data / "data" / "train").glob("episode_*.npz")), allow_pickle=False)["meta"].item()
            )["packages"],
        ),
        observation_space=env.observation_space,
        action_space=env.action_space,
        context_length=C,
        max_episode_steps=1000,
        render_fps=int(env.metadata.get("render_fps", 20)),
        keymap=KEYMAP,
        action_meanings=ACTION_MEANINGS,
    )
    if r.context_source not in ("heldout", "train"):
        raise ValueError(f"context_source must be 'heldout' or 'train', got {r.context_source!r}")
    bank_eps = held_eps if r.context_source == "heldout" else train_eps
    ctx = exporter.context_windows(bank_eps, C, r.context_windows, np.random.default_rng(0))
    pgraph = exporter.LinearPolicyGraph(policy.M, policy.mean, policy.var)
    stages(
        "export",
        lambda: exporter.write_bundle(
            out, model=model, manifest=manifest, contexts=ctx, policy=pgraph, card=model_card
        ),
    )
    par = exporter.parity(model, {g: out / f"{g}.onnx" for g in ("reset", "step", "render")}, C)
    print("parity (max abs error, torch vs onnxruntime):", json.dumps(par))

    # 5. fidelity, written into the manifest and the card
    metrics = stages("evaluate", lambda: evaluate(out, held_eps, with_policy=r.eval_policy))
    timings = {**shared.timings, **stages.timings}
    total = sum(timings.values())
    n_steps = sum(len(e["obs"]) - 1 for e in train_eps)
    extra = {
        "parity": par,
        "data": {
            "train_steps": n_steps,
            "train_episodes": len(train_eps),
            "frame_episodes": len(frame_eps),
            "behaviours": sorted(set(r.train_data.behaviours) | set(r.wide_data.behaviours)),
            "heldout_episodes": len(held_eps),
            "bank": "held-out episodes" if r.context_source == "heldout" else "the training data",
            "text": (
                f"{len(train_eps)} training episodes ({n_steps} steps) and {len(held_eps)} held-out "
                f"episodes of {ENV_ID}: {len(frame_eps)} with frames, behaviours {list(r.train_data.behaviours)} "
                f"(cycled), and {len(train_eps) - len(frame_eps)} for wide coverage, behaviours "
                f"{list(r.wide_data.behaviours)} (cycled; policy@sN is the ARS search's policy after N "
                "iterations, :x Gaussian action noise of std x, kick+ random pushes to every joint's "
                "velocity every 50-200 steps, flip+ a start pitched by a random angle). The final linear "
                f"ARS policy scores {pol_d['return']:.0f} over 1000 real steps."
            ),
        },
        "recipe": {
            "command": f"dreamgym train {RECIPE_OF[model.family]}",
            "stages": timings,
            "wall_s": total,
            "wall_time_text": f"{total / 60:.1f} min",
            "machine": f"{platform.machine()} CPU, 2 cores (torch threads default)",
            "train_config": {
                "frames": dataclasses.asdict(r.frames),
                "world": dataclasses.asdict(r.world),
                "seq_len": r.seq_len,
            },
        },
    }
    if any(o.name == "uncertainty" for o in Manifest.read(out / MANIFEST).outputs):
        reward_std = float(np.concatenate([e["reward"][1:] for e in train_eps]).std())
        extra["uncertainty"] = uncertainty_defaults(out, probe_eps, held_eps, r, reward_std)
    write_metrics(out, metrics, extra)
    if "uncertainty" in extra:
        u = extra["uncertainty"]
        set_env_defaults(out, EnvDefaults(u["penalty"], u["limit"], r.horizon))
    make_preview(out)
    return {"fidelity": metrics, **extra}


def uncertainty_defaults(out: Path, probe_eps: list[dict], held_eps: list[dict], r: Recipe, reward_std: float) -> dict:
    """How well the uncertainty ranks the real error on policies in no training data, and the bundle's
    defaults: λ a multiple of the training rewards' standard deviation, τ a multiple of a high quantile of the
    uncertainty on held-out real data (the training distribution), so that a dream is cut short only where
    it left what it knows."""
    q = r.uncertainty_limit_quantile
    rep = uncertainty_report(out, probe_eps, held_eps, quantiles=(0.5, 0.9, 0.99, q))
    limit = float(r.uncertainty_limit_scale * rep["heldout_quantiles"][str(q)]) if r.uncertainty_limit_scale else None
    rep.update(
        penalty=round(float(r.uncertainty_penalty_scale * reward_std), 3),
        penalty_rule=f"{r.uncertainty_penalty_scale} x the training rewards' standard deviation ({reward_std:.3f})",
        limit=None if limit is None else round(limit, 4),
        limit_rule=f"{r.uncertainty_limit_scale} x the {q} quantile on held-out real data" if limit else "none",
        probe_behaviours=list(r.probe_data.behaviours),
    )
    print(
        f"uncertainty: Spearman with the real one-step error {rep['spearman_obs_error']:.3f} "
        f"on {rep['probe_steps']} probe steps; defaults penalty {rep['penalty']}, limit {rep['limit']}"
    )
    return rep


def set_env_defaults(out: Path, defaults: EnvDefaults) -> None:
    """Write the bundle's env defaults into its manifest (and refresh the card and hashes)."""
    with exporter.staged(out, copy=True) as folder:
        m = Manifest.read(folder / MANIFEST)
        m.replace(env_defaults=defaults).write(folder / MANIFEST)
        exporter.finalize(folder, model_card)


def summary(res: dict) -> dict:
    f = res["fidelity"]
    return {
        "horizons": f["horizons"],
        "reward_corr_50": f["reward_corr_50"],
        "policy_return": f.get("policy_return"),
        "wall_s": res["recipe"]["wall_s"],
    }


def main(argv=None) -> int:
    return recipe_main("halfcheetah_rssm", argv)


if __name__ == "__main__":
    raise SystemExit(main())

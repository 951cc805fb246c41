"""Rebuild the shipped Dream-HalfCheetah-v0 from nothing on a 2-core CPU:

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
from dreamgym.export.ars import ARSConfig, LinearPolicy, train_ars
from dreamgym.export.ars import evaluate as ars_evaluate
from dreamgym.export.card import make_preview, model_card
from dreamgym.export.collect import CollectConfig, collect
from dreamgym.export.data import load_folder
from dreamgym.export.evaluate import evaluate, write_metrics
from dreamgym.export.families import family_of
from dreamgym.export.fit import FitConfig
from dreamgym.export.recipes import Stages
from dreamgym.export.recipes import main as recipe_main
from dreamgym.export.rssm import RSSMConfig
from dreamgym.export.sources import MUJOCO_RENDER
from dreamgym.manifest import Source

ENV_ID = "HalfCheetah-v5"
FAMILY_TEXT = {
    "rssm": "an RSSM (PlaNet/Dreamer) world model",
    "tssm": "a TSSM (TransDreamer) world model, a causal transformer with a KV-cache step,",
}
MIX = ("random", "policy:0.1", "mixed", "policy:0.3", "sine", "policy:0.0")


@dataclass(frozen=True)
class Recipe:
    run: str = "runs/halfcheetah/run_lean"
    """folder of the model's checkpoints, training log and stage timings (stages resume from it)"""
    data: str = "runs/halfcheetah"
    """folder of the ARS policy and the episodes, shared by the HalfCheetah recipes"""
    out: str = "assets/halfcheetah-rssm"
    """the bundle folder written"""
    id: str = "Dream-HalfCheetah-v0"
    """the bundle's id"""
    ars: ARSConfig = ARSConfig()
    """the ARS search for the running policy"""
    train_data: CollectConfig = CollectConfig(env_id=ENV_ID, behaviours=MIX, episodes=60, seed=1)
    """training episodes"""
    heldout_data: CollectConfig = CollectConfig(env_id=ENV_ID, behaviours=MIX, episodes=12, seed=2)
    """held-out episodes (context bank and fidelity)"""
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
    )
    """the world model"""
    frames: FitConfig = FitConfig(steps=1500, batch=64, lr=6e-4, grad_clip=100.0, eval_every=250, ckpt_every=500)
    """training of the frame decoder on (obs, frame) pairs, done first"""
    world: FitConfig = FitConfig(steps=6000, batch=16, lr=6e-4, grad_clip=100.0, eval_every=250, ckpt_every=500)
    """training of the dynamics on sequences (batch: sequences per update)"""
    seq_len: int = 50
    """steps per training sequence"""
    context_length: int = 10
    """C: real steps a reset filters"""
    context_windows: int = 512
    """real context windows in the bundle's bank"""
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
    model=RSSMConfig(deter=32, stoch=8, hidden=32, frame_channels=8, overshoot=3),
    frames=FitConfig(steps=10, batch=64, lr=6e-4, grad_clip=100.0, eval_every=10, ckpt_every=10),
    world=FitConfig(steps=20, batch=4, lr=6e-4, grad_clip=100.0, eval_every=10, ckpt_every=10),
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
    from dreamgym.export.data import FrameSampler, SequenceSampler
    from dreamgym.export.fit import fit

    run = Path(r.run)
    upgrade_checkpoint(run)
    meta = {"model_config": dataclasses.asdict(r.model)}
    out = {}
    if any("frames" in e for e in train_eps):
        frames, held_frames = FrameSampler(train_eps, r.frames.seed), FrameSampler(held_eps, r.frames.seed + 1)
        frame_loss = lambda b: model.frame_loss(*b)  # noqa: E731
        out["frames"] = fit(
            model.frame_decoder,
            frame_loss,
            lambda n: tuple(map(_t, frames.sample(n))),
            r.frames,
            run,
            name="frames",
            heldout=lambda: frame_loss(tuple(map(_t, held_frames.sample(256))))[1],
            meta=meta,
            progress=progress,
        )
    seqs, held = (
        SequenceSampler(train_eps, r.seq_len, r.world.seed),
        SequenceSampler(held_eps, r.seq_len, r.world.seed + 1),
    )
    keys = ("obs", "prev_act", "reward", "cont", "mask")

    def sample(sampler, n):
        b = sampler.sample(n)
        return tuple(_t(b[k]) for k in keys)

    frame_ids = {id(p) for p in model.frame_decoder.parameters()}
    out["world"] = fit(
        model,
        lambda b: model.loss(*b),
        lambda n: sample(seqs, n),
        r.world,
        run,
        name="world",
        params=[p for p in model.parameters() if id(p) not in frame_ids],
        heldout=lambda: model.loss(*sample(held, 64))[1],
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
    from dreamgym.export.fit import load_checkpoint

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


def build(r: Recipe, progress: bool = True) -> dict:
    """Every stage of the recipe; returns the fidelity and the rest of what goes into the manifest."""
    data, run, out = Path(r.data), Path(r.run), Path(r.out)
    shared, stages = Stages(data), Stages(run)

    # 1. a running policy
    pol_path = data / "ars_policy.json"

    def do_ars():
        pol = train_ars(r.ars)
        ret = ars_evaluate(ENV_ID, pol, episodes=1)
        pol_path.write_text(json.dumps({"return": ret, **pol.to_dict()}))

    shared("ars", do_ars, done=pol_path.exists())
    pol_d = json.loads(pol_path.read_text())
    policy = LinearPolicy.from_dict(pol_d)

    # 2. data
    for split, cfg in (("train", r.train_data), ("heldout", r.heldout_data)):
        folder = data / "data" / split
        shared(
            f"collect_{split}",
            lambda cfg=cfg, folder=folder: collect(cfg, folder, policy=policy.act, progress=progress),
            done=len(list(folder.glob("episode_*.npz"))) >= cfg.episodes,
        )
    train_eps, held_eps = load_folder(data / "data" / "train"), load_folder(data / "data" / "heldout")

    # 3. the model (the family follows from the config's type)
    model = family_of(r.model).build(r.model)
    if hasattr(model, "set_obs_stats"):  # standardisation statistics come from the training data
        all_obs = np.concatenate([e["obs"] for e in train_eps])
        model.set_obs_stats(all_obs.mean(0), all_obs.std(0))
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
    ctx = exporter.context_windows(held_eps, C, r.context_windows, np.random.default_rng(0))
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
            "heldout_episodes": len(held_eps),
            "text": (
                f"{len(train_eps)} training episodes ({n_steps} steps) and {len(held_eps)} held-out "
                f"episodes of {ENV_ID}, behaviours {list(r.train_data.behaviours)} (cycled); the "
                f"linear ARS policy scores {pol_d['return']:.0f} over 1000 real steps."
            ),
        },
        "recipe": {
            "command": f"dreamgym train halfcheetah_{model.family}",
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
    write_metrics(out, metrics, extra)
    make_preview(out)
    return {"fidelity": metrics, **extra}


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

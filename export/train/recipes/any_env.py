"""A dream you can train in, of any Gymnasium env or of its logged episodes, in one command:

    dreamgym train --env ENV_ID [--env-kwargs JSON] [--preset tiny|full] [--run DIR] [--out DIR] [--transfer]
    dreamgym train --dataset PATH --env ENV_ID        # logged episodes only; the env is made for its spaces
    dreamgym train --dataset PATH --spaces JSON       # no env at all

What HalfCheetah taught, as a pipeline that takes no per-env tuning:

1. search: ARS finds a linear policy in the real env (Box or Discrete actions), keeping snapshots of rising
   skill; a second search with another seed is the probe policy, in no training data;
2. coverage data, chosen generically: random, saturated and correlated noise, gaits, the snapshots with
   noise, the final policy with none to much, and MuJoCo bodies kicked and flipped where the env allows;
   a real-step budget per split (frames on a smaller share);
3. the step ensemble (five memoryless members, MBPO/MOPO) with a termination head when the data ends;
4. export, with a bank of real training states (terminal ones left out) and the ARS policy as policy.onnx;
5. held-out evaluation: fidelity per horizon, termination precision and recall within +-2 steps, and the
   uncertainty's rank correlation with the real error on the probe policy's states;
6. the learner's defaults from one rule for every env (`rules`): the penalty and the horizon;
7. with --transfer, `dreamgym transfer` (SB3 SAC, or PPO for discrete actions) at the end, into the card.

Every stage resumes from --run (each episode, the training checkpoint, the search). `--preset tiny` runs
every stage at toy sizes in about a minute.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from dreamgym.export.data.ars import ARSConfig
from dreamgym.export.families.ensemble import EnsembleConfig
from dreamgym.export.train.fit import FitConfig
from dreamgym.export.train.recipes import main as recipe_main
from dreamgym.export.train.recipes.any_env_stages import horizon_rule, penalty_rule

__all__ = ["Recipe", "PRESETS", "build", "summary", "main", "penalty_rule", "horizon_rule"]


@dataclass(frozen=True)
class Recipe:
    env: str = ""
    """the Gymnasium env id (a Box observation; Box or Discrete actions)"""
    env_kwargs: str = "{}"
    """keyword arguments for gym.make, as JSON"""
    dataset: str | None = None
    """build from logged episodes instead: a folder of episode_*.npz, or a local Minari dataset; the env is
    made only for its spaces (never stepped), or not at all with --spaces"""
    spaces: str | None = None
    """with --dataset and no env: {"observation_space": ..., "action_space": ...} in dreamgym's space JSON"""
    heldout_share: float = 0.1
    """with --dataset: the share of episodes held out (seeded split)"""
    run: str | None = None
    """folder of the run: data, search, checkpoints, timings (default runs/ENV)"""
    out: str | None = None
    """the bundle folder written (default RUN/bundle)"""
    id: str | None = None
    """the bundle's id (default Dream-NAME-v0)"""
    ars: ARSConfig = ARSConfig()
    """the search for policies of rising skill (its env_id is --env's)"""
    probe_iterations_share: float = 1 / 3
    """the probe search (seed 7) runs this share of the search's iterations"""
    frame_steps: int = 60_000
    """real steps of training data with frames (the frame decoder learns on them)"""
    wide_steps: int = 480_000
    """real steps of wide-coverage training data, without frames"""
    heldout_steps: int = 12_000
    """real steps of held-out data (fidelity, termination, the uncertainty's quantiles)"""
    probe_steps: int = 10_000
    """real steps of policies in no training data (the uncertainty's correlation with the real error)"""
    share: str = "episodes"
    """how the behaviours share each budget: "episodes" (cycled episode by episode) or "steps" (equal steps
    each; on Hopper it made the dreams fall more often but less truly: benchmarks/README.md, "Own-env dreams")"""
    max_steps: int | None = None
    """steps per collected episode at most (default: the env's own limit, else 1000)"""
    frame_size: int = 64
    """side of the frames (0: none; the render graph then draws the observation as bars)"""
    model: EnsembleConfig = EnsembleConfig(members=5, hidden=200, layers=4)
    """the world model (obs_dim, act_dim, discrete and termination follow from the env and the data)"""
    frames: FitConfig = FitConfig(steps=1500, batch=64, lr=6e-4, grad_clip=100.0, eval_every=250, ckpt_every=500)
    """training of the frame decoder on (obs, frame) pairs"""
    world: FitConfig = FitConfig(steps=30000, batch=256, lr=1e-3, grad_clip=100.0, eval_every=1000, ckpt_every=2000)
    """training of the members on transitions (batch: transitions per update)"""
    termination: FitConfig = FitConfig(steps=3000, batch=256, lr=1e-3, eval_every=500, ckpt_every=1000)
    """training of the termination head (when the data ends) on next observations, a quarter of each batch
    drawn from the terminal ones"""
    context_windows: int = 16384
    """real starting states in the bundle's bank (from the training data, terminal states left out)"""
    penalty_kappa: float = 0.78
    """the penalty rule: λ = κ × (the training rewards' std) / (the 90 % quantile of the uncertainty on held-out
    data); κ is calibrated once, on HalfCheetah, where it gives the λ ≈ 5 that made SAC transfer"""
    horizon_error: float = 0.18
    """the horizon rule: the most imagined steps whose held-out error stays within this many data stds;
    calibrated once, on HalfCheetah, where it gives MOPO's 5 steps (the shipped dream's error reaches 0.171
    at 5 steps and 0.191 at 6)"""
    horizon_max: int = 20
    """... and at most this many"""
    transfer: bool = False
    """run the transfer benchmark at the end and write it into the card"""
    transfer_steps: int = 100_000
    """--transfer: learner steps, in the dream and in the real env"""
    transfer_seeds: int = 3
    """--transfer: seeds"""


TINY = Recipe(
    ars=ARSConfig(iterations=3, directions=4, top=2, horizon=50),
    frame_steps=300,
    wide_steps=600,
    heldout_steps=300,
    probe_steps=200,
    max_steps=100,
    frame_size=16,
    model=EnsembleConfig(members=3, hidden=16, layers=2, frame_channels=4, term_hidden=16),
    frames=FitConfig(steps=10, batch=32, lr=6e-4, grad_clip=100.0, eval_every=10, ckpt_every=10),
    world=FitConfig(steps=30, batch=64, lr=1e-3, grad_clip=100.0, eval_every=10, ckpt_every=10),
    termination=FitConfig(steps=30, batch=64, lr=1e-3, eval_every=10, ckpt_every=10),
    context_windows=64,
    transfer_steps=200,
    transfer_seeds=1,
)
PRESETS = {"full": Recipe(), "tiny": TINY}


# -- what the env is -----------------------------------------------------------------------------------
def slug(env_id: str) -> str:
    """'HalfCheetah-v5' -> 'halfcheetah', 'ALE/Pong-v5' -> 'pong'."""
    return re.sub(r"[^a-z0-9]+", "-", env_id.split("/")[-1].rsplit("-v", 1)[0].lower()).strip("-") or "env"


def default_id(env_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]", "", env_id.split("/")[-1].rsplit("-v", 1)[0]) or "Env"
    return f"Dream-{name}-v0"


@dataclass(frozen=True)
class EnvInfo:
    """What the build needs to know of the env, read without stepping it."""

    observation_space: object
    action_space: object
    limit: int | None = None
    """its episode limit (the registered TimeLimit), if any"""
    mujoco: bool = False
    fps: int = 30
    names: tuple[str, ...] = ()
    """the action dimensions' names (a MuJoCo model's actuators), if known"""


def env_info(r: Recipe) -> EnvInfo:
    """The spaces and the rest from --spaces or from the env (made, never stepped)."""
    import gymnasium as gym

    from dreamgym.spaces import space_from_json

    if r.spaces:
        d = json.loads(r.spaces)
        info = EnvInfo(space_from_json(d["observation_space"]), space_from_json(d["action_space"]))
    else:
        from dreamgym.export.data.sources import make_source_env

        env = make_source_env(r.env, **json.loads(r.env_kwargs))
        u, names = env.unwrapped, ()
        mujoco = hasattr(u, "mujoco_renderer")
        if mujoco:
            import mujoco as mj

            names = tuple(mj.mj_id2name(u.model, mj.mjtObj.mjOBJ_ACTUATOR, i) or f"dim {i}" for i in range(u.model.nu))
        info = EnvInfo(
            env.observation_space,
            env.action_space,
            env.spec.max_episode_steps if env.spec else None,
            mujoco,
            int(env.metadata.get("render_fps") or 30),
            names,
        )
        env.close()
    obs, act = info.observation_space, info.action_space
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise ValueError(f"{r.env or '--spaces'}: the step ensemble needs a flat Box observation space, got {obs}")
    if not (isinstance(act, gym.spaces.Discrete) or (isinstance(act, gym.spaces.Box) and len(act.shape) == 1)):
        raise ValueError(f"{r.env or '--spaces'}: expected a flat Box or a Discrete action space, got {act}")
    return info


def paths(r: Recipe) -> tuple[Path, Path, str]:
    """(run folder, bundle folder, id)."""
    if not r.env and not r.dataset:
        raise ValueError("name the env (--env ENV_ID) or the logged episodes (--dataset PATH)")
    name = r.env or Path(r.dataset).name
    run = Path(r.run or f"runs/{slug(name)}")
    return run, Path(r.out or run / "bundle"), r.id or default_id(name)


def build(r: Recipe, progress: bool = True) -> dict:
    """Every stage; returns what went into the manifest."""
    from dreamgym.export.train.recipes import Stages
    from dreamgym.export.train.recipes import any_env_stages as st

    run, out, bundle_id = paths(r)
    if r.dataset and not (r.env or r.spaces):
        raise ValueError("--dataset needs the spaces: --env ENV_ID (made, never stepped) or --spaces JSON")
    info = env_info(r)
    obs_space, act_space = info.observation_space, info.action_space
    max_steps = int(r.max_steps or info.limit or 1000)
    stages = Stages(run)
    if r.dataset:
        data = st.dataset_data(r, run, stages)
    else:
        data = st.env_data(r, run, stages, act_space, max_steps, progress)
    model = st.train_model(r, run, stages, data, obs_space, act_space, progress)
    res = st.export_and_measure(r, run, out, bundle_id, stages, model, data, info, max_steps)
    if r.transfer:
        res["transfer"] = st.transfer(r, run, out, act_space, stages)
    return {**res, "out": str(out)}


def summary(res: dict) -> dict:
    f = res["fidelity"]
    return {
        "horizons": {h: v["ratio"] for h, v in f["horizons"].items()},
        "termination": res.get("termination"),
        "defaults": res.get("defaults"),
        "uncertainty_spearman": res.get("uncertainty", {}).get("spearman_obs_error"),
        "wall_s": res["recipe"]["wall_s"],
    }


def main(argv=None) -> int:
    return recipe_main("env", argv)


if __name__ == "__main__":
    raise SystemExit(main())

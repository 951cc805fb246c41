"""Recipe: Dream-Pong-v0, a Simulus/REM dream of ALE Pong at 64x64 RGB, rebuilt from nothing on a 2-core CPU.

    dreamgym train pong_rem [--preset tiny|full] [--run DIR] [--out DIR] [--world.steps N ...]
    dreamgym train pong_rem --continue-from BUNDLE --world.steps 2000 --world.lr 2e-4   # v4 -> v5
    dreamgym train pong_rem --continue-from BUNDLE --world.steps 2000 --world.lr 2e-4 --model.slot-history 3  # v5 -> v6

Stages (each resumes from what the run folder already holds):
1. collect: 96 training and 8 held-out episodes of ALE/Pong-v5 (frameskip 4, no sticky actions, 2000 steps
   at most), a scripted paddle that tracks the ball with noise mixed with stretches of random play, so the
   data has points won and lost, and (half the training episodes) a cleaner tracker, so it has rallies
   (`export/data/atari.py`);
2. tokenizer: a VQ-VAE, 8x8 tokens of a 512-code vocabulary per frame, trained with the reconstruction
   error weighted towards pixels that differ from the static background (ball, paddles, score) and with
   dead codes restarted on encoder outputs;
3. world model: the REM RetNet with parallel observation prediction on tokenised sequences;
4. export + evaluation: the bundle, its fidelity on the held-out episodes through the runtime, the preview.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from dreamgym.export.data.atari import PONG_ACTIONS, collect_pong
from dreamgym.export.families.rem import REM
from dreamgym.export.train.fit import load_checkpoint
from dreamgym.export.train.recipes import Stages
from dreamgym.export.train.recipes import main as recipe_main
from dreamgym.export.train.recipes.pong_rem_config import (  # noqa: F401 (PRESETS, Recipe: the recipe's surface)
    CONTEXT,
    FULL,
    HISTORY,
    PRESETS,
    RETRAINED,
    Recipe,
    _data_flags,
)
from dreamgym.export.train.recipes.pong_rem_tokens import (
    TokenSequences,
    load_pong,
    tokenize,
    train_tokenizer,
    train_world,
)

KEYMAP = {
    "discrete": {
        "default": 0,
        "bindings": [
            {"keys": ["up"], "action": 2},
            {"keys": ["w"], "action": 2},
            {"keys": ["down"], "action": 3},
            {"keys": ["s"], "action": 3},
            {"keys": ["f"], "action": 1},
            {"keys": ["up", "f"], "action": 4},
            {"keys": ["w", "f"], "action": 4},
            {"keys": ["down", "f"], "action": 5},
            {"keys": ["s", "f"], "action": 5},
        ],
    }
}
ENV_KWARGS = {"frameskip": 4, "repeat_action_probability": 0.0}


@torch.no_grad()
def reward_head_check(model: REM, eps: list[dict], tokens: list[np.ndarray], C: int = CONTEXT, T: int = 16) -> dict:
    """The reward head with real frames (teacher forcing): after C real steps of context, is a point
    predicted at the exact step of every real point? Separates the head's own error from the dream's drift."""
    model.eval()
    tp = fp = fn = 0
    for e, tk in zip(eps, tokens):
        for s in range(C + 1, len(e["actions"]) - T, T):
            x = model.embed_blocks(
                torch.from_numpy(tk[s - C : s + T].astype(np.int64))[None],
                torch.from_numpy(e["actions"][s - C : s + T])[None],
                torch.from_numpy(e["rewards"][s - C - 1 : s + T - 1].astype(np.float32))[None],
            )
            out, _, _ = model.run(x, model.initial_state(1), pop=False)
            pred = (model.heads(out[:, :, -1])[0].argmax(-1) - 1).numpy()[0, C:]
            real = np.sign(e["rewards"][s : s + T])
            tp += int(((pred != 0) & (pred == real)).sum())
            fp += int(((pred != 0) & (pred != real)).sum())
            fn += int(((real != 0) & (pred != real)).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "real_points": tp + fn,
        "predicted_points": tp + fp,
    }


def data_summary(eps: list[dict]) -> dict:
    r = np.concatenate([e["rewards"] for e in eps])
    return {
        "episodes": len(eps),
        "steps": int(sum(len(e["actions"]) for e in eps)),
        "points_won": int((r > 0).sum()),
        "points_lost": int((r < 0).sum()),
        "terminations": int(sum(e["terminations"].sum() for e in eps)),
    }


def package_versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("ale-py", "gymnasium", "numpy", "torch")}


def export_bundle(model: REM, out: Path, held_eps: list[dict], r: Recipe, id: str, metrics: dict) -> Path:
    from gymnasium import spaces

    from dreamgym.export import exporter
    from dreamgym.export.card import model_card
    from dreamgym.export.data.atari import pong_pixel_policy
    from dreamgym.manifest import Source

    S = r.model.frame_size
    manifest = exporter.make_manifest(
        model,
        id=id,
        description=f"ALE Pong imagined by a Simulus/REM world model: {r.model.grid}x{r.model.grid} VQ tokens per "
        f"{S}x{S} frame{' and two for the ball (its row and column)' if r.model.ball_tokens else ''}"
        f"{' and one for the paddle (its row)' if r.model.paddle_token else ''}"
        f"{', with fixed codes of the places they name' if r.model.coord_features else ''}"
        f"{' (their predictions mixed with the action by an MLP' if r.model.slot_mixer else ''}"
        f"{f', which also reads the slots of the {r.model.slot_history} frames before' if r.model.slot_history else ''}"
        f"{')' if r.model.slot_mixer else ''}, a RetNet with "
        "parallel observation prediction, reward and termination heads.",
        source=Source(
            env_id="ALE/Pong-v5",
            render={"kind": "ale", "make_kwargs": ENV_KWARGS},
            frames=f"the 210x160 RGB screen area-averaged to {S}x{S}",
            packages=package_versions(),
        ),
        observation_space=spaces.Box(0, 255, (S, S, 3), np.uint8),
        action_space=spaces.Discrete(r.model.actions),
        context_length=CONTEXT,
        max_episode_steps=r.collect_train.max_steps,
        render_fps=15,
        keymap=KEYMAP,
        action_meanings=PONG_ACTIONS,
        metrics=metrics,
        # the encoder runs at reset only
        step_parameters=sum(p.numel() for p in model.parameters())
        - sum(p.numel() for p in model.tokenizer.encoder.parameters()),
    )
    from dreamgym.export.measure.token import token_episodes

    ctx = exporter.context_windows(
        token_episodes(held_eps),
        CONTEXT,
        r.context_windows,
        np.random.default_rng(7),
        start_share=0,
        obs_dtype=np.uint8,
        action_dtype=np.int64,
    )
    model.example_contexts = ctx  # the parity check's reset inputs: real windows (see REM.example_contexts)
    exporter.write_bundle(
        out,
        model=model,
        manifest=manifest,
        contexts=ctx,
        card=model_card,
        policy=pong_pixel_policy(S),
        policy_input=torch.zeros(2, S, S, 3),
    )
    return out


def build(r: Recipe = FULL, progress: bool = True, log=print) -> dict:
    """Every stage of the recipe; returns the fidelity and timings (also written into the bundle)."""
    from dreamgym.export import exporter
    from dreamgym.export.card import make_preview
    from dreamgym.export.measure.report import write_metrics
    from dreamgym.export.measure.token import token_episodes, token_fidelity

    run, out = Path(r.run), Path(r.out)
    stages = Stages(run, log)
    data = run / "data"
    if r.from_bundle and r.continue_from:
        raise ValueError("--from-bundle re-exports a bundle's weights, --continue-from trains them further: pick one")
    if r.world_part == "slot_mixer" and not (r.continue_from and r.model.slot_mixer):
        raise ValueError(
            "--world-part slot_mixer trains the slot mixer of a trained model alone: it needs --continue-from a "
            "bundle and a model with a slot mixer (model.slot_mixer)"
        )
    start = _from_bundle if r.from_bundle else _train
    model, metrics, held_eps, held_tok, source_recipe = start(r, stages, data, run, progress)

    def do_export():
        export_bundle(model, out, held_eps, r, r.id, metrics)
        return exporter.parity(model, {g: out / f"{g}.onnx" for g in ("reset", "step", "render")}, CONTEXT, batch=8)

    par = stages("export", do_export)

    def do_evaluate():
        # what a user gets by default: the dream sampling its tokens (noise_scale=1); the most likely tokens too
        fid = token_fidelity(out, token_episodes(held_eps), noise_scale=1.0)
        mode = token_fidelity(out, token_episodes(held_eps), noise_scale=0.0)
        mode.pop("curve"), mode.pop("summary")
        return fid, mode

    fid, mode = stages("evaluation", do_evaluate)
    if r.game_steps:  # the ball, the paddle and the points, measured as Pong is played (measure.pong)
        from dreamgym.export.measure.pong import pong_game

        fid["game"] = stages("game", lambda: pong_game(out, token_episodes(held_eps), r.game_steps))
    head = reward_head_check(model, held_eps, held_tok)
    times = stages.timings
    total = sum(times.values())
    command = "dreamgym train pong_rem"
    if r.continue_from:  # this run's time is on top of the source bundle's build
        command += f" --continue-from {r.continue_from} --world.steps {r.world.steps} --world.lr {r.world.lr:g}"
    if r.model.slot_history != FULL.model.slot_history:
        command += f" --model.slot-history {r.model.slot_history}"
    if r.world.batch != FULL.world.batch:
        command += f" --world.batch {r.world.batch}"
    if r.world_part != FULL.world_part:
        command += f" --world-part {r.world_part}"
    command += _data_flags(r)
    recipe = {
        "command": command,
        "machine": "2-core x86-64 CPU, no GPU",
        "stages": times,
        "wall_s": total,
        "wall_time_text": f"{total / 60:.0f} min",
    }
    if source_recipe is not None:  # a re-export: rebuilding from nothing costs what the bundle's build did
        recipe = {
            **source_recipe,
            "rebuilt_from": {
                "bundle": r.from_bundle,
                "command": f"dreamgym train pong_rem --from-bundle {r.from_bundle} "
                f"--model.temperature {r.model.temperature}",
                "stages": times,
            },
        }
    write_metrics(out, fid, {"parity": par, "recipe": recipe, "fidelity_mode": mode, "reward_head": head})
    make_preview(out)  # the same code path as `dreamgym record`
    return {"fidelity": fid, "parity": par, "timings": times}


def _tokenizer(model: REM, train_eps, held_eps, r: Recipe, tok_dir: Path, stages: Stages, progress: bool) -> dict:
    """The model's tokenizer trained on the training frames (or loaded from `tok_dir`) -> its evaluation."""
    if not (tok_dir / "tokenizer.json").exists():
        frames = np.concatenate([e["obs"] for e in train_eps])
        held = np.concatenate([e["obs"] for e in held_eps])[::10]
        ev = train_tokenizer(model.tokenizer, frames, held, r, tok_dir, progress, ball=r.ball_weight)
        stages.record("tokenizer", ev["wall_s"])
        del frames
    else:
        load_checkpoint(tok_dir / "tokenizer.npz", model.tokenizer)
    return json.loads((tok_dir / "tokenizer.json").read_text())


def _train(r: Recipe, stages: Stages, data: Path, run: Path, progress: bool):
    """The episodes collected, the tokenizer and the world model trained (or resumed) on them; no source recipe
    (the build is its own)."""

    def do_collect():
        collect_pong(r.collect_train, data / "train", progress)
        if r.collect_clean is not None:
            collect_pong(r.collect_clean, data / "train_clean", progress)
        collect_pong(r.collect_heldout, data / "heldout", progress)

    stages("collect", do_collect, done=(data / "heldout").exists())
    noisy_eps, held_eps = load_pong(data / "train"), load_pong(data / "heldout")
    clean_eps = load_pong(data / "train_clean") if r.collect_clean is not None else []
    train_eps = noisy_eps + clean_eps
    src = None
    if r.continue_from:  # the bundle's tokenizer as it is, its world model trained further
        model, src = _bundle_model(r, r.continue_from, "--continue-from")
        tok_eval = src.manifest.metrics["tokenizer"]
    else:
        model = REM(r.model)
        tok_eval = _tokenizer(model, train_eps, held_eps, r, run / "tokenizer", stages, progress)
    train_tok, held_tok = stages(
        "tokenise", lambda: (tokenize(model.tokenizer, train_eps), tokenize(model.tokenizer, held_eps))
    )
    world = train_world(
        model,
        TokenSequences(train_tok, train_eps, r.seq_len, r.world.seed, model.cfg.tokenizer_config, r.contact_share),
        TokenSequences(held_tok, held_eps, r.seq_len, r.world.seed + 1),
        r,
        run / "world",
        progress,
    )
    stages.record("world model", world["wall_s"])
    model.eval()
    d, dh = data_summary(train_eps), data_summary(held_eps)
    cfg, clean = r.collect_train, r.collect_clean
    players = (
        f"played by a paddle that tracks the ball from RAM with {cfg.noise:.0%} random actions, "
        f"{cfg.random_share:.0%} of the time in stretches of random play"
    )
    if clean is not None:
        dc = data_summary(clean_eps)
        players += (
            f" ({len(noisy_eps)} episodes), and by a cleaner tracker ({clean.noise:.0%} random actions, "
            f"{clean.random_share:.0%} random play; {dc['episodes']} episodes, {dc['points_won']} points won, "
            f"{dc['points_lost']} lost)"
        )
        d["clean"] = dc
    tokenizer = f"{r.tokenizer.steps} updates" if src is None else f"{r.continue_from}'s ({_version(src)}), kept"
    world_from, total = "", world["updates"]
    if src is not None:  # a chain of continuations counts every update its world model had
        trained = src.manifest.metrics.get("training", {})
        before = trained.get("world_updates_total", trained.get("world_updates"))
        world_from = f" after the {before if before is not None else '?'} of {r.continue_from} ({_version(src)})"
        total = None if before is None else before + world["updates"]
    trained_part = "World model" if r.world_part == "all" else "Slot mixer alone (the rest of the world model kept)"
    text = (
        f"{d['episodes']} training episodes ({d['steps']} steps, {d['points_won']} points won, {d['points_lost']} "
        f"lost, {d['terminations']} games finished) and {dh['episodes']} held-out ones ({dh['steps']} steps, "
        f"{dh['points_won']} won, {dh['points_lost']} lost) of ALE/Pong-v5 with {ENV_KWARGS}, {players}. Tokenizer: "
        f"{tokenizer}, held-out reconstruction {tok_eval['heldout_psnr_db']:.1f} dB with "
        f"{tok_eval['codes_used']} of {r.model.vocab} codes in use. {trained_part}: {world['updates']} updates"
        f"{world_from} of {r.world.batch} sequences of {r.seq_len} steps"
        f"{f', {r.contact_share:.0%} of them drawn around the ball on its way into the paddle' if r.contact_share else ''}."
    )
    # a build from nothing is v4: the versions before it, then its own figures (v4's and later ones are not its)
    history = HISTORY[: [h["version"] for h in HISTORY].index(RETRAINED["version"])]
    version = RETRAINED
    if src is not None:
        history = HISTORY
        version = {
            "version": "continued",
            "text": f"the tokenizer and world model of {r.continue_from} ({_version(src)}), "
            + (
                f"the slot mixer also reading the slots of the {r.model.slot_history} frames before and the actions "
                "after them (`slot_history`, its weights on them from zero), "
                if model.cfg.slot_history != src.manifest.model.config.get("slot_history", 0)
                else ""
            )
            + (
                f"the world model trained {world['updates']} more updates"
                if r.world_part == "all"
                else f"its slot mixer alone trained {world['updates']} more updates of {r.world.batch} sequences"
            )
            + f" (peak learning rate {r.world.lr:g}"
            + ("" if r.world_part == "all" else "; the rest frozen")
            + "): the figures on this card.",
        }
    metrics = {
        "history": [*history, version],
        "data": {**d, "heldout": dh, "text": text},
        "tokenizer": tok_eval,
        "training": {"world_updates": world["updates"], "world_updates_total": total, "last_eval": world["last_eval"]},
    }
    return model, metrics, held_eps, held_tok, None


SAMPLING = ("temperature", "grid_noise")  # the model's fields that only the sampler reads (not learned)


def _bundle_model(r: Recipe, source: str, flag: str):
    """A bundle's weights (tokenizer and world model) in this recipe's model, whose config must be the bundle's
    but for the sampling (`SAMPLING`, not learned) -> (model, the loaded bundle)."""
    import dreamgym
    from dreamgym.export.families import model_from_bundle

    src = dreamgym.Bundle.load(dreamgym.resolve(source))
    if src.family != "rem":
        raise ValueError(f"{flag} {source}: a {src.family!r} bundle, this recipe builds 'rem' ones")
    trained = model_from_bundle(src)
    grows = flag == "--continue-from" and trained.cfg.slot_history == 0 and r.model.slot_history > 0
    free = SAMPLING + (("slot_history",) if grows else ())
    differ = {
        k: (getattr(r.model, k), getattr(trained.cfg, k))
        for k in trained.cfg.__dataclass_fields__
        if k not in free and getattr(r.model, k) != getattr(trained.cfg, k)
    }
    if differ:
        raise ValueError(
            f"{flag} {source}: the bundle's model is not this recipe's (recipe, bundle): {differ}; "
            "only --model.temperature and --model.grid-noise may differ (and, with --continue-from from a bundle "
            "without one, --model.slot-history)"
        )
    model = REM(dataclasses.replace(trained.cfg, **{k: getattr(r.model, k) for k in free}))
    if grows:
        model.load_without_history(trained.state_dict())
    else:
        model.load_state_dict(trained.state_dict())
    return model, src


def _version(src) -> str:
    return src.manifest.metrics.get("history", [{}])[-1].get("version", "?")


def _from_bundle(r: Recipe, stages: Stages, data: Path, run: Path, progress: bool):
    """A bundle's own weights in this recipe's model (only the sampling may differ), the held-out episodes
    collected, and the bundle's data, training and rebuild figures."""
    model, src = _bundle_model(r, r.from_bundle, "--from-bundle")
    model.eval()
    stages(
        "collect", lambda: collect_pong(r.collect_heldout, data / "heldout", progress), done=(data / "heldout").exists()
    )
    held_eps = load_pong(data / "heldout")
    held_tok = stages("tokenise", lambda: tokenize(model.tokenizer, held_eps))
    met = src.manifest.metrics
    was = src.manifest.model.config
    changes = [
        f"{k.replace('_', ' ')} {getattr(r.model, k)} instead of {was.get(k, 1.0)}"
        for k in SAMPLING
        if getattr(r.model, k) != was.get(k, 1.0)
    ]
    reexported = {
        "version": "re-export",
        "text": f"the weights of {r.from_bundle} ({_version(src)}), re-exported to sample at "
        f"{', '.join(changes) or 'the same settings'}: the figures on this card.",
    }
    metrics = {"history": [*HISTORY, reexported], **{k: met[k] for k in ("data", "tokenizer", "training") if k in met}}
    return model, metrics, held_eps, held_tok, met.get("recipe")


def summary(res: dict) -> dict:
    return {"horizons": res["fidelity"]["horizons"], "rewards": res["fidelity"]["rewards"], "timings": res["timings"]}


def main(argv=None) -> int:
    return recipe_main("pong_rem", argv)


if __name__ == "__main__":
    raise SystemExit(main())

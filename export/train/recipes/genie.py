"""Recipe: a Genie dream learned from video alone. Dream-Breakout-v0 by default; any folder of videos with --videos.

    dreamgym train genie [--preset tiny|full] [--run DIR] [--out DIR] [--videos DIR] [--lam.steps N ...]

Stages (each resumes from what the run folder already holds):
1. video: without --videos, 120 training and 8 held-out episodes of ALE/Breakout-v5 (frameskip 4, no sticky
   actions) at 64x64, played by a paddle that follows the ball from RAM with 20 % random actions, mixed with
   stretches of random play (`data.atari.collect_breakout`). The actions are kept beside the frames but
   no training stage reads them. With --videos DIR, every mp4 and gif file in DIR (any size, resized to
   64x64) is the video, and the last `heldout_share` of the clips is held out;
2. tokenizer: the image VQ-VAE of the REM family on every frame (foreground-weighted, dead codes restarted);
3. latent action model: frames t-1, t, t+1 -> one of K codes, trained to redraw frame t+1 from frames t-1, t
   and the code (`genie.LatentActionModel`): first with a small noisy continuous code, then with the nearest
   of K codes put on k-means centres of it;
4. labels: the LAM labels every training transition with its code; the frames become tokens;
5. dynamics: MaskGIT over the next frame's tokens given the window of past tokens and the code;
6. names: with recorded actions, `label_share` (2.5 %) of the training transitions keep their real action,
   and each code is named after the real action most of its labelled transitions took ("≈ LEFT", "no-op");
   the keymap binds the named codes to the real game's keys; without labels the codes keep their numbers;
7. export + evaluation: the bundle (with `lam.onnx` beside it), controllability (ΔPSNR), the code -> action
   confusion and frame PSNR on the held-out episodes, the preview (the dream cycling through latent actions).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamgym.export.families.genie import GenieConfig
from dreamgym.export.train.fit import FitConfig
from dreamgym.export.train.recipes import Stages
from dreamgym.export.train.recipes import main as recipe_main

CONTEXT = 4


@dataclass(frozen=True)
class Recipe:
    run: str = "runs/genie"
    """folder of the data, checkpoints, training logs and stage timings (stages resume from it)"""
    out: str = "assets/breakout-genie"
    """the bundle folder written"""
    id: str = "Dream-Breakout-v0"
    """the bundle's id"""
    videos: str = ""
    """a folder of mp4/gif videos to learn from instead of Breakout (no actions needed)"""
    model: GenieConfig = GenieConfig()
    """the tokenizer, latent action model and dynamics model"""
    train_episodes: int = 120
    """Breakout training episodes"""
    heldout_episodes: int = 8
    """Breakout held-out episodes (context bank and evaluation)"""
    max_steps: int = 1000
    """steps per Breakout episode at most"""
    heldout_share: float = 0.1
    """with --videos: the share of clips held out (at least one, when there are two or more)"""
    tokenizer: FitConfig = FitConfig(steps=4000, batch=32, lr=3e-3, eval_every=250, ckpt_every=250)
    """training of the VQ-VAE (batch: frames per update)"""
    foreground_weight: float = 30.0
    """extra weight of pixels that differ from the static background in the tokenizer's loss"""
    restart_every: int = 100
    """updates between the tokenizer's dead-code restarts (during the first 80 % of training)"""
    lam: FitConfig = FitConfig(steps=4000, batch=32, lr=1e-3, grad_clip=1.0, eval_every=250, ckpt_every=250)
    """the latent action model's first phase, a continuous code (batch: clips of W + 1 frames per update)"""
    lam_noise: float = 0.1
    """std of the Gaussian noise on the continuous code in the first phase"""
    lam_prior: float = 0.01
    """weight of |z|^2 in the first phase"""
    lam_codes: FitConfig = FitConfig(steps=1000, batch=32, lr=3e-4, grad_clip=1.0, eval_every=250, ckpt_every=250)
    """the second phase: the decoder (and encoder) on the nearest of the K codes put on k-means centres"""
    dynamics: FitConfig = FitConfig(
        steps=20000, batch=32, lr=6e-4, warmup=200, weight_decay=0.01, grad_clip=1.0, eval_every=500, ckpt_every=250
    )
    """training of the MaskGIT dynamics model (batch: windows per update)"""
    label_share: float = 0.025
    """share of training transitions whose recorded action names the codes (the LAOM setting)"""
    context_windows: int = 256
    """real context windows in the bundle's bank"""
    render_fps: int = 15
    """frames per second of play and videos"""
    max_episode_steps: int = 1000
    """the dream's truncation"""


def _fit(n: int) -> FitConfig:
    return FitConfig(steps=n, batch=4, lr=3e-3, eval_every=n, ckpt_every=n)


TINY = Recipe(
    run="runs/genie-tiny",
    out="runs/genie-tiny/bundle",
    id="Dream-BreakoutTiny-v0",
    model=GenieConfig(
        frame_size=32,
        grid=4,
        vocab=32,
        code_dim=8,
        tok_channels=8,
        actions=4,
        lam_dim=4,
        lam_channels=8,
        d_model=32,
        heads=2,
        layers=1,
        iterations=2,
    ),
    train_episodes=2,
    heldout_episodes=1,
    max_steps=60,
    tokenizer=_fit(20),
    restart_every=10,
    lam=_fit(20),
    lam_codes=_fit(10),
    dynamics=_fit(20),
    label_share=0.5,
    context_windows=8,
    max_episode_steps=50,
)
PRESETS = {"full": Recipe(), "tiny": TINY}


# -- video ----------------------------------------------------------------------------------------------
VIDEO_SUFFIXES = (".mp4", ".gif")


def load_videos(folder: str | Path, size: int) -> list[dict]:
    """Every mp4 and gif in `folder` (sorted by name) as {"obs": uint8 (T, size, size, 3), "name"}; frames
    of any size are area-averaged (grey and RGBA frames become RGB). Clips shorter than 3 frames are refused."""
    import imageio.v2 as imageio

    from dreamgym.export.data.sources import area_resize

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--videos {str(folder)!r} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no {' or '.join(VIDEO_SUFFIXES)} files in {str(folder)!r}")
    clips = []
    for p in files:
        try:
            reader = imageio.get_reader(p)
            frames = []
            for f in reader:
                f = np.asarray(f)
                f = np.repeat(f[..., None], 3, -1) if f.ndim == 2 else f[..., :3]
                frames.append(area_resize(f.astype(np.uint8), size))
            reader.close()
        except Exception as e:  # noqa: BLE001 — imageio's own reason, with the file named
            raise ValueError(f"cannot read the video {p.name}: {e}") from e
        if len(frames) < 3:
            raise ValueError(f"{p.name} has {len(frames)} frame(s); a clip needs at least 3")
        clips.append({"obs": np.stack(frames), "name": p.name})
    return clips


def load_episodes(folder: Path) -> list[dict]:
    from dreamgym.export.data.collect import load_episodes as load

    eps = [dict(e) for e in load(folder)]
    if not eps:
        raise FileNotFoundError(f"no episode_*.npz in {folder}; run the video stage first")
    return eps


class Clips:
    """Random windows of `n` consecutive frames of the clips (uint8 (B, n, S, S, 3))."""

    def __init__(self, clips: list[np.ndarray], n: int, seed: int):
        self.clips, self.n = clips, n
        lens = np.array([len(c) - n + 1 for c in clips], float)
        if (lens <= 0).all():
            raise ValueError(f"every clip is shorter than {n} frames")
        self.p = np.maximum(lens, 0) / np.maximum(lens, 0).sum()
        self.rng = np.random.default_rng(seed)

    def sample(self, b: int):
        import torch

        out = []
        for i in self.rng.choice(len(self.clips), size=b, p=self.p):
            s = int(self.rng.integers(len(self.clips[i]) - self.n + 1))
            out.append(self.clips[i][s : s + self.n])
        return torch.from_numpy(np.stack(out))


def train_lam(lam, train: Clips, held: Clips, r: Recipe, out: Path, progress: bool = True) -> dict:
    """The latent action model's two phases (`genie.LatentActionModel`): a continuous code (OUT/lam), the K
    codes put on k-means centres of the encoder's outputs on 4096 training clips, then the quantised code
    (OUT/lam_codes). Returns the summed training time, the code counts of the k-means and the last held-out
    evaluation."""
    import torch

    from dreamgym.export.train.fit import fit

    def phase(quantize: bool, cfg: FitConfig, name: str) -> dict:
        kw = {"quantize": quantize, "noise": r.lam_noise, "prior": r.lam_prior}
        return fit(
            lam,
            lambda b: lam.loss(b, **kw),
            train.sample,
            cfg,
            out / name,
            name=name,
            heldout=lambda: lam.loss(held.sample(4 * cfg.batch), **kw)[1],
            meta={"config": dataclasses.asdict(lam.c)},
            progress=progress,
        )

    first = phase(False, r.lam, "lam")
    counts_file = out / "lam_codes" / "kmeans.json"
    if not counts_file.exists():
        lam.eval()
        with torch.no_grad():
            z = torch.cat([lam.encode(train.sample(256)) for _ in range(16)])
        counts = lam.fit_codes(z).tolist()
        counts_file.parent.mkdir(parents=True, exist_ok=True)
        counts_file.write_text(json.dumps({"clips": len(z), "counts": counts}) + "\n")
    second = phase(True, r.lam_codes, "lam_codes")
    return {
        "wall_s": first["wall_s"] + second["wall_s"],
        "kmeans": json.loads(counts_file.read_text()),
        "last_eval": second["last_eval"],
    }


def infer_actions(lam, clips: list[np.ndarray], batch: int = 256) -> list[np.ndarray]:
    """The LAM's code of every transition: codes[i][j] is the latent action between frames j and j + 1 (the
    W - 1 first frames of a clip are repeated to give the first transitions their past)."""
    import torch

    W = lam.c.window
    out = []
    lam.eval()
    with torch.no_grad():
        for c in clips:
            padded = np.concatenate([np.repeat(c[:1], W - 1, 0), c]) if W > 1 else c
            idx = np.arange(len(c) - 1)[:, None] + np.arange(W + 1)[None]  # windows of W + 1 frames
            codes = [lam.infer(torch.from_numpy(padded[idx[a : a + batch]])).numpy() for a in range(0, len(idx), batch)]
            out.append(np.concatenate(codes).astype(np.int64))
    return out


class TokenWindows:
    """Random (tokens of frames t-W+1 .. t+1, latent action after frame t) for the dynamics model."""

    def __init__(self, tokens: list[np.ndarray], actions: list[np.ndarray], W: int, seed: int):
        self.tokens, self.actions, self.W = tokens, actions, W
        lens = np.array([len(t) - W for t in tokens], float)
        self.p = np.maximum(lens, 0) / np.maximum(lens, 0).sum()
        self.rng = np.random.default_rng(seed)

    def sample(self, b: int):
        import torch

        tok, act = [], []
        for i in self.rng.choice(len(self.tokens), size=b, p=self.p):
            t = int(self.rng.integers(self.W - 1, len(self.tokens[i]) - 1))  # the newest past frame
            tok.append(self.tokens[i][t - self.W + 1 : t + 2]), act.append(self.actions[i][t])
        return torch.from_numpy(np.stack(tok).astype(np.int64)), torch.from_numpy(np.asarray(act, np.int64))


# -- names ------------------------------------------------------------------------------------------------
KEYS_OF = {"LEFT": ["a"], "RIGHT": ["d"], "UP": ["w", "up"], "DOWN": ["s", "down"], "FIRE": ["f"]}
"""the keys of a real action a code is named after (the arrows left/right and space are play's own controls)"""


def name_codes(codes: np.ndarray, actions: np.ndarray, meanings: list[str], K: int, min_labels: int = 3) -> dict:
    """Each latent code's name from a few labelled transitions: the real action most of them took ("≈ LEFT";
    NOOP is "no-op"), or "code k" with fewer than `min_labels` labels. Returns the names, the counts and
    each named code's purity."""
    counts = np.zeros((K, len(meanings)), np.int64)
    np.add.at(counts, (codes, actions), 1)
    names, purity = [], []
    for k in range(K):
        n = counts[k].sum()
        if n < min_labels:
            names.append(f"code {k}")
            purity.append(None)
            continue
        a = int(counts[k].argmax())
        names.append("no-op" if meanings[a] == "NOOP" else f"≈ {meanings[a]}")
        purity.append(float(counts[k, a] / n))
    return {"names": names, "counts": counts.tolist(), "purity": purity, "labels": int(counts.sum())}


def latent_keymap(names: list[str], counts: list[list[int]] | None = None, meanings: list[str] | None = None) -> dict:
    """Number keys 1..K choose codes 0..K-1 (play's latent keymap). Each real action's keys go to the code
    named after it that holds most of it (labels of the action times their share of the code's labels: a
    code named from a handful of labels does not win on purity alone); with no key held, that "no-op" code
    (else code 0)."""
    best: dict[str, tuple[float, int]] = {}
    for k, n in enumerate(names):
        if counts is None or meanings is None or n.startswith("code "):
            continue
        row = np.asarray(counts[k], float)
        a = meanings.index("NOOP") if n == "no-op" else meanings.index(n.removeprefix("≈ "))
        score = row[a] ** 2 / max(row.sum(), 1.0)
        if n not in best or score > best[n][0]:
            best[n] = (score, k)
    bindings = [
        {"keys": [key], "action": k} for n, (_, k) in best.items() for key in KEYS_OF.get(n.removeprefix("≈ "), [])
    ]
    default = best["no-op"][1] if "no-op" in best else 0
    return {"latent": {"n": len(names), "default": default, "bindings": bindings}}


# -- the build --------------------------------------------------------------------------------------------
def _package_versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("ale-py", "gymnasium", "numpy", "torch")}


def build(r: Recipe, progress: bool = True, log=print) -> dict:
    import torch

    from dreamgym.export import exporter
    from dreamgym.export.card import make_preview, model_card
    from dreamgym.export.data.atari import BREAKOUT_ACTIONS, BreakoutCollectConfig, collect_breakout
    from dreamgym.export.families.genie import Genie
    from dreamgym.export.measure.report import write_metrics
    from dreamgym.export.train.fit import fit, load_checkpoint
    from dreamgym.export.train.recipes.pong_rem_tokens import tokenize, train_tokenizer

    run, out = Path(r.run), Path(r.out)
    stages = Stages(run, log)
    c = r.model
    W = c.window
    data = run / "data"

    # 1. video
    if r.videos:
        clips = load_videos(r.videos, c.frame_size)
        n_held = max(1, int(round(r.heldout_share * len(clips)))) if len(clips) > 1 else 0
        train_eps = [{"obs": v["obs"]} for v in clips[: len(clips) - n_held] or clips]
        held_eps = [{"obs": v["obs"]} for v in clips[len(clips) - n_held :]] if n_held else train_eps
        source_text = f"{len(clips)} video file(s) from {r.videos} ({n_held} held out), resized to {c.frame_size}px"
        meanings, env_id = None, None
    else:

        def do_collect():
            kw = dict(size=c.frame_size, max_steps=r.max_steps)
            collect_breakout(BreakoutCollectConfig(episodes=r.train_episodes, seed=0, **kw), data / "train", progress)
            collect_breakout(
                BreakoutCollectConfig(episodes=r.heldout_episodes, seed=1, effects=True, **kw),
                data / "heldout",
                progress,
            )

        stages("video", do_collect, done=(data / "heldout").exists())
        train_eps, held_eps = load_episodes(data / "train"), load_episodes(data / "heldout")
        meanings, env_id = BREAKOUT_ACTIONS, "ALE/Breakout-v5"
    train_frames = [e["obs"] for e in train_eps]  # what every training stage reads: frames only
    held_frames = [e["obs"] for e in held_eps]

    torch.manual_seed(0)
    model = Genie(c)

    # 2. tokenizer
    tok_dir = run / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        ev = train_tokenizer(
            model.tokenizer, np.concatenate(train_frames), np.concatenate(held_frames)[::5], r, tok_dir, progress
        )
        stages.record("tokenizer", ev["wall_s"])
    else:
        load_checkpoint(tok_dir / "tokenizer.npz", model.tokenizer)
    tok_eval = json.loads((tok_dir / "tokenizer.json").read_text())

    # 3. latent action model
    lam_dir = run / "lam"
    lam_res = train_lam(model.lam, Clips(train_frames, W + 1, 0), Clips(held_frames, W + 1, 1), r, lam_dir, progress)
    model.lam.eval()
    stages.record("latent actions", lam_res["wall_s"])

    # 4. labels and tokens
    train_codes = infer_actions(model.lam, train_frames)
    held_codes = infer_actions(model.lam, held_frames)
    train_tok = tokenize(model.tokenizer, [{"obs": f} for f in train_frames])
    held_tok = tokenize(model.tokenizer, [{"obs": f} for f in held_frames])

    # 5. dynamics
    tok_ids = {id(p) for p in [*model.tokenizer.parameters(), *model.lam.parameters()]}
    tw, hw = TokenWindows(train_tok, train_codes, W, 0), TokenWindows(held_tok, held_codes, W, 1)
    dyn = fit(
        model,
        lambda b: model.dynamics_loss(*b),
        tw.sample,
        r.dynamics,
        run / "dynamics",
        name="dynamics",
        params=[p for p in model.parameters() if id(p) not in tok_ids],
        heldout=lambda: model.dynamics_loss(*hw.sample(4 * r.dynamics.batch))[1],
        meta={"config": dataclasses.asdict(c)},
        progress=progress,
    )
    stages.record("dynamics", dyn["wall_s"])
    model.eval()

    # 6. names from a few labels
    names = {"names": [f"code {k}" for k in range(c.actions)], "purity": [None] * c.actions, "labels": 0}
    if meanings is not None:
        rng = np.random.default_rng(3)
        codes = np.concatenate(train_codes)
        acts = np.concatenate([e["actions"] for e in train_eps])
        pick = rng.choice(len(codes), size=int(r.label_share * len(codes)), replace=False)  # at most the share
        names = name_codes(codes[pick], acts[pick], meanings, c.actions)
        names["share"] = len(pick) / len(codes)
    keymap = latent_keymap(names["names"], names.get("counts"), meanings)

    # 7. export and evaluation
    from gymnasium import spaces

    from dreamgym.manifest import Source

    steps = sum(len(f) for f in train_frames)
    text = (
        f"{source_text if r.videos else f'{len(train_eps)} training and {len(held_eps)} held-out episodes of ALE/Breakout-v5 (frameskip 4, no sticky actions) at {c.frame_size}x{c.frame_size}, a paddle that follows the ball with 20 % random actions mixed with stretches of random play'}"
        f": {steps} training frames. Training read the frames only; "
        + (
            f"{names['labels']} labelled transitions ({100 * names.get('share', 0):.1f} %) named the codes afterwards. "
            if meanings
            else "the codes have no names (no labels). "
        )
        + f"Tokenizer: {r.tokenizer.steps} updates, held-out reconstruction {tok_eval['heldout_psnr_db']:.1f} dB "
        f"with {tok_eval['codes_used']} of {c.vocab} codes. Latent action model: {r.lam.steps} updates with a "
        f"continuous code, then {r.lam_codes.steps} with the nearest of K = {c.actions} codes. Dynamics: {dyn['step']} updates of {r.dynamics.batch} windows."
    )
    metrics = {
        "data": {"frames": steps, "text": text},
        "tokenizer": tok_eval,
        "latent_actions": {"names": names, "kmeans": lam_res["kmeans"], "last_eval": lam_res["last_eval"]},
        "training": {"dynamics_updates": dyn["step"], "last_eval": dyn["last_eval"]},
    }
    S = c.frame_size

    def do_export():
        manifest = exporter.make_manifest(
            model,
            id=r.id,
            description=(
                "A Genie world model learned from video alone: 8x8 VQ tokens per 64x64 frame, "
                f"{c.actions} latent actions found by a latent action model without labels, MaskGIT dynamics "
                f"({c.iterations} iterations per step)."
            ),
            source=Source(
                env_id=env_id,
                render={"kind": "ale", "make_kwargs": {"frameskip": 4, "repeat_action_probability": 0.0}}
                if env_id
                else {},
                frames=f"the 210x160 RGB screen area-averaged to {S}x{S}" if env_id else source_text,
                packages=_package_versions(),
            ),
            observation_space=spaces.Box(0, 255, (S, S, 3), np.uint8),
            action_space=spaces.Discrete(c.actions),
            context_length=CONTEXT,
            max_episode_steps=r.max_episode_steps,
            render_fps=r.render_fps,
            keymap=keymap,
            action_meanings=names["names"],
            metrics=metrics,
            step_parameters=sum(p.numel() for p in model.parameters())
            - sum(p.numel() for p in model.tokenizer.encoder.parameters())
            - sum(p.numel() for p in model.lam.parameters()),
        )
        ctx = exporter.context_windows(
            [{"obs": f, "prev_act": np.concatenate([[0], a])} for f, a in zip(held_frames, held_codes)],
            CONTEXT,
            r.context_windows,
            np.random.default_rng(7),
            start_share=0,
            obs_dtype=np.uint8,
            action_dtype=np.int64,
        )
        model.example_contexts = ctx
        exporter.write_bundle(
            out,
            model=model,
            manifest=manifest,
            contexts=ctx,
            card=model_card,
            extras=lambda folder: export_lam(model, folder / "lam.onnx"),
        )
        return exporter.parity(model, {g: out / f"{g}.onnx" for g in ("reset", "step", "render")}, CONTEXT, batch=8)

    par = stages("export", do_export)

    def do_evaluate():
        from dreamgym.export.measure.genie import genie_fidelity

        return genie_fidelity(out, [dict(e) for e in held_eps], samples=True)

    fid = stages("evaluation", do_evaluate)
    times = stages.timings
    total = sum(times.values())
    recipe = {
        "command": "dreamgym train genie" + (f" --videos {r.videos}" if r.videos else ""),
        "machine": "2-core x86-64 CPU, no GPU",
        "stages": times,
        "wall_s": total,
        "wall_time_text": f"{total / 60:.0f} min",
    }
    write_metrics(out, fid, {"parity": par, "recipe": recipe})
    make_preview(out, policy="cycle")
    return {"fidelity": fid, "parity": par, "timings": times}


def summary(res: dict) -> dict:
    f = res["fidelity"]
    return {k: f[k] for k in ("delta_psnr", "mapping", "horizons") if k in f} | {"timings": res["timings"]}


def main(argv=None) -> int:
    return recipe_main("genie", argv)


def export_lam(model, path) -> None:
    """lam.onnx beside the graphs: frames (B, W + 1, S, S, 3) float 0..255 -> latent action ids (B,) int64.
    The evaluator labels real clips with it; the runtime never loads it."""
    import torch
    import torch.nn as nn

    from dreamgym.export.exporter import _export

    class _Infer(nn.Module):
        def __init__(self, lam):
            super().__init__()
            self.lam = lam

        def forward(self, frames):
            return self.lam.infer(frames)

    c = model.cfg
    ex = torch.zeros(2, c.window + 1, c.frame_size, c.frame_size, 3)
    _export(_Infer(model.lam), (ex,), path, ["frames"], ["latent_action"])


if __name__ == "__main__":
    raise SystemExit(main())

"""Dream-Pong-v0's recipe: every size and path of the rebuild (`Recipe`, one docstring per field for `--help`),
its presets and the versions it has shipped. The stages are in `pong_rem`, the tokens in `pong_rem_tokens`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from dreamgym.export.data.atari import PongCollectConfig
from dreamgym.export.families.rem import REMConfig
from dreamgym.export.train.fit import FitConfig

CONTEXT = 8
BUNDLE_ID = "Dream-Pong-v0"


@dataclass(frozen=True)
class Recipe:
    run: str = "runs/pong"
    """folder of the data, checkpoints, training logs and stage timings (stages resume from it)"""
    out: str = "assets/pong-rem"
    """the bundle folder written"""
    id: str = BUNDLE_ID
    """the bundle's id"""
    # Sampling temperature 0.56 (baked into the step graph; training does not use it). Sampling keeps the ball
    # that the most likely tokens lose within a few steps (one token's "ball here" never outweighs "floor
    # here"); v0 and v1 sampled at 0.7, and v1's weights at 0.56 are truer on every held-out horizon (PSNR
    # +0.7 to +1.2 dB) and keep the ball and the points at least as well (benchmarks/studies/pong_temperature.py;
    # the table is in benchmarks/README.md).
    # Changed tokens weigh 5x in the token loss and each reward is fed back into the next block (issue 17:
    # the first recipe, without either, lost the ball at h = 1 in 91 % of held-out windows and repeated 57 % of
    # its points on the next step).
    # The ball has tokens of its own (row, column; issue 17): the patch codes of v0 and v1 kept 83 % and 46 % of
    # real balls, and the world model lost most of the rest (ball missing at h = 1 in 91 % and 70 % of windows).
    # The paddle's row is a token too, the slots carry place codes, and an MLP mixes the slots' predictions with
    # their places and the action (v4; issue 17): v3 bounced the ball about as often with the paddle away as under
    # it, though the slots' places tell a bounce from a miss at 98 % of held-out decisive steps
    # (benchmarks/pong_contact_ceiling.py).
    model: REMConfig = REMConfig(
        temperature=0.56,
        changed_token_weight=5.0,
        reward_input=True,
        ball_tokens=True,
        paddle_token=True,
        coord_features=True,
        slot_mixer=True,
    )
    """the tokenizer and world model"""
    collect_train: PongCollectConfig = PongCollectConfig(episodes=48, max_steps=2000, seed=0)
    """training episodes of the noisy mix (tracker with 15 % random actions, 30 % of the time random play)"""
    # v2's 64 noisy episodes lost 1064 points and won 182 (the player missed about 56 % of the balls that
    # reached it), and the v2 dream lost points under the bundled tracker at 3x the real rate (15.7 against 5.0
    # per 1000 steps): a paddle under the ball still missed it about as often as in the data. A tracker with 3 %
    # random actions and 5 % random play returns most balls (3.3 points per 1000 steps, half of them won).
    collect_clean: PongCollectConfig | None = PongCollectConfig(
        episodes=48, max_steps=2000, noise=0.03, random_share=0.05, seed=2
    )
    """training episodes of a cleaner player (rallies; None: none)"""
    collect_heldout: PongCollectConfig = PongCollectConfig(episodes=8, max_steps=2000, seed=1)
    """held-out episodes (context bank and fidelity)"""
    tokenizer: FitConfig = FitConfig(steps=4000, batch=32, lr=3e-3, eval_every=250, ckpt_every=250)
    """training of the VQ-VAE (batch: frames per update)"""
    foreground_weight: float = 30.0
    """extra weight of pixels that differ from the static background in the tokenizer's loss"""
    ball_weight: float = 0.0
    """extra weight of the ball's pixels in the tokenizer's loss (v1: 100, before the ball had its own tokens;
    with `model.ball_tokens` the grid's frames have no ball)"""
    restart_every: int = 100
    """tokenizer updates between dead-code restarts (during the first 80 % of training)"""
    world: FitConfig = FitConfig(
        steps=5000, batch=16, lr=5e-4, warmup=100, weight_decay=0.01, grad_clip=1.0, eval_every=250, ckpt_every=250
    )
    """training of the world model (batch: sequences per update)"""
    seq_len: int = 10
    """time steps per training sequence"""
    contact_share: float = 0.3
    """share of the training sequences drawn to hold a contact step (`contact_steps`: the ball near the player's
    paddle and moving towards it), the rest uniformly. It is drawn by the state, whatever the outcome, so what the
    model learns of a bounce given the state is not biased, only seen more often: in uniform windows the steps that
    decide a point are about 2 % of the data, and v3 to v6 bounced about as often with the paddle away as under the
    ball (benchmarks/pong_bounce.py). Needs `model.ball_tokens`"""
    context_windows: int = 256
    """real context windows in the bundle's bank"""
    game_steps: int = 12_000
    """closed-loop steps per policy of the game metrics (`measure.pong`; 0: skip them). v0 to v4's cards counted
    3000, whose points per 1000 steps moved by a quarter or more between runs"""
    from_bundle: str | None = None
    """an id or bundle folder whose weights to start from instead of training: its model config, except the
    sampling (temperature and grid noise, not learned), which is this recipe's; only the held-out episodes are
    collected, and the data, training and rebuild figures in the card stay the bundle's (a re-export, e.g. at
    another temperature, then measured afresh)"""
    world_part: Literal["all", "slot_mixer"] = "all"
    """what of the world model `world` trains: all of it, or (with `--continue-from` a model with a slot mixer)
    only the slot mixer, the RetNet, the embeddings and the heads frozen. Then the grid's tokens, the rewards and
    the terminations are the source bundle's, and only the slots (the ball's and the paddle's tokens) learn; an
    update reads the RetNet forward only (64 windows took 2.1 s here, a full update of 16 0.95 s). v6's
    mixer had seen each training step about twice in its 2000 updates (16 sequences of 10 steps each) and put the
    paddle on the wrong row one step after real context in 8 % of held-out windows, where the paddle's last three
    rows and actions tell the next row at 99 % (benchmarks/pong_paddle_inertia.py)"""
    continue_from: str | None = None
    """an id or bundle folder whose tokenizer and world model to start from, with this recipe's model config
    (the temperature may differ): the tokenizer is kept, the world model is trained `world.steps` more updates on
    this run's data (a fresh schedule, warmup and cosine decay), then exported and measured afresh"""


# What the first release (recipe of 2026-11, no changed-token weight, no reward fed back, a tokenizer without
# the ball's weight, 2500 + 5000 updates) measured, kept in the card's version history.
V0 = (
    "first release: tokenizer of 2500 updates (held-out 36.1 dB, keeps 83 % of real balls), world model of "
    "5000 updates with every token weighted alike and no reward fed back. Held-out, sampled: frame PSNR 36.7 / "
    "34.9 / 33.7 / 33.4 dB at h = 1 / 10 / 50 / 100 (copy-last 37.8 / 33.4 / 32.7 / 32.3), token accuracy "
    "0.960 / 0.932 / 0.917 / 0.910, points precision / recall 0.087 / 0.027 within 4 steps. Game: ball missing "
    "at h = 1 / 5 in 91 / 97 % of held-out windows; points precision / recall 0.29 / 0.08 (h <= 20, +-4); one "
    "ball in 5 % of dream frames against 90 % real and 2.3 points per 1000 steps against 5.0 under the bundled "
    "policy (random actions: 2.3 against 22.7), 57 % of points repeated on the next step; 4 x UP / DOWN "
    "moved the paddle -16.2 / +15.7 px (real -17.8 / +17.9)."
)
V1 = (
    "the ball weighs 100x in the tokenizer's loss (4000 updates); changed tokens weigh 5x in the world model's "
    "token loss and each step's reward is fed back into the next block (a `last_reward` state), 5000 updates; "
    "sampling temperature 0.7. Held-out, sampled: frame PSNR 36.0 / 33.7 / 32.5 / 32.1 dB at h = 1 / 10 / 50 / "
    "100, token accuracy 0.960 / 0.920 / 0.895 / 0.889, points precision / recall 0.17 / 0.04 within 4 steps. "
    "Game: one ball in 27 % of dream frames under the bundled policy (36 % under random actions; real 90 / 64 "
    "%), 2.3 / 2.0 points per 1000 steps (real 5.0 / 22.7), no point repeated; the held-out game figures (most "
    "likely tokens, which the temperature does not change) as on this card."
)
V1_1 = (
    "v1's weights, re-exported (`--from-bundle`) to sample at temperature 0.56 instead of 0.7. Held-out, "
    "sampled: frame PSNR 37.2 / 34.7 / 33.2 / 32.8 dB at h = 1 / 10 / 50 / 100, token accuracy 0.967 / 0.930 / "
    "0.905 / 0.897, points precision / recall 0.097 / 0.039 within 4 steps. Game: ball missing at h = 1 in 70 % "
    "of held-out windows, points precision / recall 0.14 / 0.07 (h <= 20, +-4); one ball in 29 % of dream "
    "frames under the bundled policy (41 % under random actions; real 90 / 64 %), 3.3 / 5.0 points per 1000 "
    "steps (real 5.0 / 22.7), no point repeated; 4 x UP / DOWN moved the paddle -17.6 / +15.1 px."
)
V2 = (
    "the ball has tokens of its own (its row and column, or none) after the grid's, whose tokenizer learns the "
    "frames without it; no ball weight in the tokenizer's loss; 64 training episodes of the noisy mix only (77 "
    "min). Held-out, sampled: frame PSNR 37.6 / 35.0 / 32.8 / 32.5 dB at h = 1 / 10 / 50 / 100, token accuracy "
    "0.987 / 0.947 / 0.894 / 0.886. Game: ball error 0.40 / 0.42 px at h = 1 / 5 (missing in 2 / 8 % of "
    "windows), points precision / recall 0.45 / 0.79 (h <= 20, +-4); one ball in 69 % of dream frames under the "
    "bundled policy (62 % under random actions; real 90 / 64 %), 15.7 / 18.0 points per 1000 steps (real 5.0 / "
    "22.7), no point repeated; 4 x UP / DOWN moved the paddle -17.7 / +17.5 px (real -17.8 / +17.9)."
)
V3 = (
    "v2's model on data with rallies: 48 episodes of v2's noisy mix and 48 of a cleaner tracker (64 min). "
    "Held-out, sampled: frame PSNR 40.0 / 35.9 / 32.9 / 32.4 dB at h = 1 / 10 / 50 / 100, token accuracy 0.987 / "
    "0.943 / 0.892 / 0.881. Game: ball error 0.40 / 0.50 px at h = 1 / 5 (missing in 1 / 7 % of windows), points "
    "precision / recall 0.53 / 0.56 (h <= 20, +-4); one ball in 85 % of dream frames under the bundled policy (85 "
    "% under random actions; real 90 / 64 %), 8.7 / 9.7 points per 1000 steps (real 5.0 / 22.7), no point "
    "repeated; 4 x UP / DOWN moved the paddle -16.9 / +15.8 px (real -17.8 / +17.9). Contact "
    "(benchmarks/pong_contact.py): from 48 real states with the ball on its way to the player, the dream lost 25 % "
    "of the balls with the paddle tracking them and 32 % with it moving away (real 19 / 98 %); one step from 300 "
    "real decisive states (benchmarks/pong_bounce.py) it turned the ball back at 63 % of real bounces and 29 % of "
    "real misses."
)
V4 = (
    "v3's data and tokenizer; the paddle's row has a token of its own, the slots carry place codes and an MLP mixes "
    "their predictions with the action, 30 % of the training windows are drawn around the ball on its way into "
    "the player's paddle; 5000 updates (80 min). Held-out, sampled: frame PSNR 40.1 / 36.2 / 33.4 / 33.0 dB at h = "
    "1 / 10 / 50 / 100, token accuracy 0.984 / 0.940 / 0.892 / 0.883. Game: ball error 0.43 / 1.0 px at h = 1 / 5 "
    "(missing in 1 / 6 % of windows), points precision / recall 0.65 / 0.75 (h <= 20, +-4); one ball in 93 % of "
    "dream frames under the bundled policy (77 % under random actions; real 90 / 64 %); 7.0 / 20.7 points per "
    "1000 steps over 3000 steps (real 5.0 / 22.7), and over 12000 steps 6.2 +- 1.4 / 18.0 +- 2.4 (real 5.4 / "
    "24.2); no point repeated; 4 x UP / DOWN moved the paddle -17.8 / +17.4 px (real -17.8 / +17.9). Contact "
    "(benchmarks/pong_contact.py): the dream lost 13 % of the balls with the paddle tracking them and 50 % with it "
    "moving away (real 19 / 98 %); one step from 300 real decisive states (benchmarks/pong_bounce.py) it turned "
    "the ball back at 75 % of real bounces and 10 % of real misses."
)
V5 = (
    "v4's tokenizer and world model, the world model trained 2000 more updates on v4's data (a fresh warmup to a "
    "learning rate of 2e-4, then cosine decay; 31 min after v4's 80). Held-out, sampled: frame PSNR 40.4 / 36.5 / "
    "33.7 / 33.2 dB at h = 1 / 10 / 50 / 100, token accuracy 0.988 / 0.945 / 0.897 / 0.887. Game: ball error 0.40 / "
    "0.57 px at h = 1 / 5 (missing in 1 / 6 % of windows), points precision / recall 0.65 / 0.75 (h <= 20, +-4); one "
    "ball in 92 % of dream frames under the bundled policy (68 % under random actions; real 90 / 63 %); over 12000 "
    "steps 5.4 +- 1.3 / 19.0 +- 2.5 points per 1000 steps (real 5.4 / 24.2); no point repeated; 4 x UP / DOWN "
    "moved the paddle -17.8 / +18.0 px (real -17.8 / +17.9). Contact: the dream lost 24 % of the balls with the "
    "paddle tracking them and 66 % with it moving away (real 19 / 98 %); one step from 300 real decisive states it "
    "turned the ball back at 72 % of real bounces and 8 % of real misses."
)
V6 = (
    "v5's tokenizer and world model, the slot mixer also reading the slots of the 3 frames before and the actions "
    "after them (`slot_history`, its weights on them from zero), the world model trained 2000 more updates on v5's "
    "data (a fresh warmup to a learning rate of 2e-4, then cosine decay; 32 min after v4's 80 and v5's 31). "
    "Held-out, sampled: frame PSNR 40.5 / 37.2 / 33.9 / 33.2 dB at h = 1 / 10 / 50 / 100, token accuracy 0.990 / "
    "0.954 / 0.902 / 0.887. Game: ball error 0.40 / 0.43 px at h = 1 / 5 (missing in 1 / 6 % of windows), points "
    "precision / recall 0.65 / 0.79 (h <= 20, +-4); one ball in 90 % of dream frames under the bundled policy (68 % "
    "under random actions; real 90 / 63 %); over 12000 steps 5.6 +- 1.3 / 19.3 +- 2.5 points per 1000 steps (real "
    "5.4 / 24.2); no point repeated; 4 x UP / DOWN moved the paddle -17.6 / +17.8 px (real -17.8 / +17.9). Contact: "
    "the dream lost 24 % of the balls with the paddle tracking them and 80 % with it moving away (real 19 / 98 %); "
    "one step from 300 real decisive states it turned the ball back at 74 % of real bounces and 8 % of real misses."
)
V7 = (
    "v6's tokenizer and world model, its slot mixer alone trained 1000 more updates of 64 sequences on v6's data, "
    "the RetNet, embeddings and heads frozen (`--world-part slot_mixer`; a fresh warmup to a learning rate of 5e-4, "
    "then cosine decay; 35 min). Held-out, sampled: frame PSNR 40.6 / 37.6 / 34.1 / 33.4 dB at h = 1 / 10 / 50 / "
    "100 (33.47 +- 0.04 over sampling seeds 0 / 1 / 2), token accuracy 0.991 / 0.958 / 0.906 / 0.891. Game: ball "
    "error 0.40 / 0.42 px at h = 1 / 5 (missing in 1 / 6 % of windows), points precision / recall 0.74 / 0.84 (h <= "
    "20, +-4); one ball in 87 % of dream frames under the bundled policy (64 % under random actions; real 90 / 63 %); "
    "over 12000 steps 4.8 +- 1.2 / 18.8 +- 2.5 points per 1000 steps (real 5.4 / 24.2); no point repeated; 4 x UP / "
    "DOWN moved the paddle -17.6 / +17.3 px (real -17.8 / +17.9). Contact: the dream lost 26 % of the balls with the "
    "paddle tracking them and 84 % with it moving away (real 19 / 98 %); one step from 300 real decisive states it "
    "turned the ball back at 77 % of real bounces and 6 % of real misses."
)
HISTORY = [
    {"version": "v0", "text": V0},
    {"version": "v1", "text": V1},
    {"version": "v1.1", "text": V1_1},
    {"version": "v2", "text": V2},
    {"version": "v3", "text": V3},
    {"version": "v4", "text": V4},
    {"version": "v5", "text": V5},
    {"version": "v6", "text": V6},
    {"version": "v7", "text": V7},
]
# a build from nothing with this recipe is v4, which v5 continues (--continue-from, 2000 updates at a learning rate
# of 2e-4), v6 continues from v5 with a slot history (--model.slot-history 3, 2000 more), and the shipped v7 trains
# v6's slot mixer alone 1000 more (--world-part slot_mixer); a re-export of a bundle's weights (--from-bundle) says so
RETRAINED = {
    "version": "v4",
    "text": "v3's data and tokenizer; the paddle's row has a token of its own, the ball's and the paddle's slots "
    "carry place codes and their predictions are mixed with the action by an MLP, and 30 % of the world model's "
    "training windows are drawn around the ball on its way into the player's paddle (v3's dream decided the "
    "contact more by the mix of its data than by the paddle's place): the figures on this card.",
}

FULL = Recipe()
TINY = Recipe(
    run="runs/pong-tiny",
    out="runs/pong-tiny/bundle",
    id="Dream-PongTiny-v0",
    # the full recipe's model, every switch as shipped, at a tiny size (and sampling at temperature 1)
    model=dataclasses.replace(
        FULL.model, vocab=64, code_dim=8, tok_channels=8, d_model=32, heads=2, layers=1, temperature=1.0
    ),
    collect_train=PongCollectConfig(episodes=2, max_steps=120, seed=0),
    collect_clean=PongCollectConfig(episodes=1, max_steps=120, noise=0.03, random_share=0.05, seed=2),
    collect_heldout=PongCollectConfig(episodes=1, max_steps=120, seed=1),
    tokenizer=FitConfig(steps=30, batch=8, lr=3e-3, eval_every=10, ckpt_every=10),
    restart_every=10,
    world=FitConfig(
        steps=20, batch=4, lr=5e-4, warmup=100, weight_decay=0.01, grad_clip=1.0, eval_every=10, ckpt_every=10
    ),
    seq_len=6,
    context_windows=8,
    game_steps=0,
)
PRESETS = {"full": FULL, "tiny": TINY}


def _data_flags(r: Recipe) -> str:
    """The options by which this run's training episodes differ from the full recipe's, as `dreamgym train
    pong_rem` takes them (the cleaner player's config is a subcommand, so it comes last with all its fields), so
    that a card's rebuild command collects the episodes its model was trained on."""

    def flags(prefix: str, cfg: PongCollectConfig, base: PongCollectConfig | None) -> list[str]:
        return [
            f"--{prefix}.{f.name.replace('_', '-')} {getattr(cfg, f.name):g}"
            for f in dataclasses.fields(cfg)
            if base is None or getattr(cfg, f.name) != getattr(base, f.name)
        ]

    out = flags("collect-train", r.collect_train, FULL.collect_train)
    if r.collect_clean != FULL.collect_clean:
        if r.collect_clean is None:
            out.append("collect-clean:none")
        else:
            out += ["collect-clean:pong-collect-config", *flags("collect-clean", r.collect_clean, None)]
    return "".join(f" {f}" for f in out)

"""An experiment on issue 13: give the HalfCheetah dream the real states that a learner trained in it visits.

    python benchmarks/studies/learner_data.py --learner sac=runs/sac40k/sac-seed0-dream.zip [--steps 2000] [--out runs/learner]
    dreamgym transfer runs/learner/bundle --algo sac --steps 40000 --evals 2 --episodes 5 --no-real --out runs/learner/sac

A SAC trained only in the shipped dream finds actions the dream rates as a 4 m/s gait (about 4,000 over 1000
steps) that tilt and stall the real cheetah (about 0). This is one round of data aggregation (the DAgger idea
for models, as in MBPO's loop): run the given dream-trained learners in the real env (deterministic and with
action noise, also in a kicked body), add those episodes to the recipe's own training data (re-collected
without frames into --data, resumable), fine-tune the shipped model's dynamics and then its uncertainty
ensemble on the union with a share `--share` of every batch from the learners' episodes, and export a bundle
beside the shipped one (same context bank, policy and env defaults; its manifest and card are the
shipped one's, not measured again). Train a fresh learner in that bundle
to see whether it is fooled again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import dreamgym
from dreamgym.export import exporter
from dreamgym.export.card import model_card
from dreamgym.export.data.collect import CollectConfig, collect
from dreamgym.export.data.episodes import SequenceSampler, load_folder
from dreamgym.export.families import model_from_bundle
from dreamgym.export.train.fit import FitConfig, fit
from dreamgym.export.train.recipes.halfcheetah_rssm import Recipe, _t, frameless_data

KEYS = ("obs", "prev_act", "reward", "cont", "mask")
LEARNER_BEHAVIOURS = ("policy@{n}:0.0", "policy@{n}:0.1", "policy@{n}:0.3", "policy@{n}:0.6", "kick+policy@{n}:0.1")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="Dream-HalfCheetah-RSSM-v0")
    ap.add_argument("--learner", action="append", required=True, help="NAME=PATH of an SB3 SAC .zip; repeatable")
    ap.add_argument("--episodes", type=int, default=20, help="real episodes per learner")
    ap.add_argument("--steps", type=int, default=2000, help="dynamics updates (the ensemble gets half)")
    ap.add_argument("--share", type=float, default=0.25, help="share of each batch from the learners' episodes")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--data", default="runs/halfcheetah-noframes")
    ap.add_argument("--out", default="runs/learner")
    a = ap.parse_args(argv)
    bad = [s for s in a.learner if not all(s.partition("=")[::2])]
    if bad:
        ap.error(f"--learner takes NAME=PATH (e.g. sac1=runs/sac40k/sac-seed0-dream.zip), got {bad}")
    if not 0 < a.share < 1:
        ap.error(f"--share is the learners' share of each batch, between 0 and 1 (exclusive), got {a.share}")
    from stable_baselines3 import SAC

    r, data, out = Recipe(), Path(a.data), Path(a.out)
    t0 = time.time()
    # the recipe's ARS search (its snapshots drive part of the wide data) and its training data, without frames
    policy, base = frameless_data(data, ("train", "wide"), r)
    # the learners in the real env
    learners = {}
    for spec in a.learner:
        name, _, path = spec.partition("=")
        sac = SAC.load(path, device="cpu")
        learners[name] = lambda o, sac=sac: sac.predict(np.asarray(o, np.float32), deterministic=True)[0]
    new = []
    for i, name in enumerate(learners):
        folder = out / "data" / name
        beh = tuple(b.format(n=name) for b in LEARNER_BEHAVIOURS)
        cfg = CollectConfig(env_id=r.train_data.env_id, behaviours=beh, episodes=a.episodes, frame_size=0, seed=50 + i)
        if len(list(folder.glob("episode_*.npz"))) < cfg.episodes:
            collect(cfg, folder, policy.act, True, learners)
        new += load_folder(folder)
    print(f"data: {len(base)} recipe episodes, {len(new)} learner episodes ({time.time() - t0:.0f} s)")

    src = dreamgym.Bundle.load(dreamgym.resolve(a.bundle))
    model = model_from_bundle(src)
    # the ensemble's reward scale is folded into the step graph's constants, so it is not read back: the
    # recipe's value, from the same training data
    model.reward_std.fill_(float(np.concatenate([e["reward"][1:] for e in base]).std()))
    print(
        f"reward std {model.reward_std.item():.3f} (the shipped penalty rule says {src.manifest.metrics['uncertainty']['penalty_rule']})"
    )
    model.train()
    L = r.seq_len
    old_s, new_s = SequenceSampler(base, L, seed=11), SequenceSampler(new, L, seed=12)

    def sample(n: int):
        k = int(round(a.share * n))
        b, c = old_s.sample(n - k), new_s.sample(k)
        return tuple(_t(np.concatenate([b[key], c[key].astype(b[key].dtype)])) for key in KEYS)

    apart = {id(p) for m in (model.frame_decoder, model.ensemble) for p in m.parameters()}
    cfg = FitConfig(steps=a.steps, batch=r.world.batch, lr=a.lr, grad_clip=r.world.grad_clip, ckpt_every=250)
    res = fit(
        model,
        lambda b: model.loss(*b),
        sample,
        cfg,
        out / "run",
        name="world",
        params=[p for p in model.parameters() if id(p) not in apart],
    )
    K = model.cfg.ensemble
    boot = np.random.default_rng(13)
    ecfg = FitConfig(
        steps=a.steps // 2, batch=r.ensemble.batch, lr=a.lr, grad_clip=r.ensemble.grad_clip, ckpt_every=250
    )
    eres = fit(
        model.ensemble,
        lambda b: model.ensemble_loss(*b),
        lambda n: (*sample(n), _t((boot.random((K, n)) < 0.5).astype(np.float32))),
        ecfg,
        out / "run",
        name="ensemble",
    )
    print(f"fine-tuned {a.steps} + {a.steps // 2} updates in {res['wall_s'] + eres['wall_s']:.0f} s")
    model.eval()
    with np.load(src.path / "contexts.npz", allow_pickle=False) as z:
        ctx = {k: z[k] for k in z.files}
    pgraph = exporter.LinearPolicyGraph(policy.M, policy.mean, policy.var)
    exporter.write_bundle(
        out / "bundle", model=model, manifest=src.manifest, contexts=ctx, policy=pgraph, card=model_card
    )
    print(f"bundle written to {out / 'bundle'} ({time.time() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

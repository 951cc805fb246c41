"""Checkers for people who add a model family (like PettingZoo's `parallel_api_test`).

    from dreamgym.export.families import get_family
    from dreamgym.export.testing import check_family
    check_family(get_family("rssm"), RSSMConfig(deter=24, stoch=6, hidden=24, frame_channels=4))

raises AssertionError saying what broke, or returns a short report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from dreamgym.export.families import Family


def check_family(
    family: Family,
    config,
    *,
    context_length: int = 4,
    batch: int = 17,
    tol: float = 1e-4,
    fit_steps: int = 25,
    seed: int = 0,
    out: str | Path | None = None,
) -> dict:
    """Export a `family` model of (a tiny) `config` into a bundle and check, in order:

    1. parity: every output of every graph, torch (`graph_functions`) vs onnxruntime on the family's example
       inputs — floats within `tol`, integer and bool outputs (tokens, terminated) exact, uint8 frames within
       one grey level;
    2. the bundle passes `dreamgym.testing.check_bundle` (manifest, graph IO, check_env, vector env);
    3. determinism: the same seed gives the same rollout twice (observations, rewards, latents);
    4. training: a short `fit` on one fixed example batch lowers the loss.

    `out`: where to write the bundle (default: a temporary folder, removed after). Returns a report."""
    import dataclasses

    import onnxruntime as ort
    import torch

    from dreamgym.export import exporter
    from dreamgym.export.train.fit import FitConfig, fit
    from dreamgym.manifest import Source
    from dreamgym.testing import check_bundle

    name = family.name
    torch.manual_seed(seed)
    model = family.build(config).eval()
    if getattr(model, "family", None) != name:
        raise AssertionError(f"{name}: the model's `family` is {getattr(model, 'family', None)!r}, expected {name!r}")
    tmp = tempfile.TemporaryDirectory(prefix=f"check-{name}-") if out is None else None
    root = Path(tmp.name if tmp else out)
    try:
        # 1. parity
        graphs = exporter.export_graphs(model, root / "graphs", context_length)
        report = exporter.parity(model, graphs, context_length, batch=batch, seed=seed)
        bad = []
        for g, path in graphs.items():
            for o in ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_outputs():
                err, kind = report[f"{g}.{o.name}"], o.type
                limit = 1.0 if kind == "tensor(uint8)" else tol if "float" in kind else 0.0
                if not err <= limit:
                    bad.append(f"{g}.{o.name} ({kind}): max abs error {err:.3g} > {limit:g}")
        if bad:
            raise AssertionError(f"{name}: torch and onnxruntime disagree:\n  " + "\n  ".join(bad))

        # 2. a bundle the runtime accepts
        obs_space, act_space = family.spaces(config)
        ex = model.example_inputs(8, context_length, np.random.default_rng(seed))["reset"]
        agents = family.agents(config) if family.agents else ()
        if agents:  # a multi-agent family: a bank per agent
            ctx = {k.replace("context_", "", 1): v for k, v in ex.items() if k.startswith("context_")}
        else:
            ctx = {
                "obs": ex["context_obs"].astype(obs_space.dtype),
                "actions": ex["context_actions"].astype(np.int64 if act_space.shape == () else np.float32),
            }
        manifest = exporter.make_manifest(
            model,
            id=f"Dream-Check{name.upper()}-v0",
            description=f"check_family({name})",
            source=Source(env_id=None),
            observation_space=obs_space,
            action_space=act_space,
            context_length=context_length,
            max_episode_steps=50,
            render_fps=15,
            agents=agents,
        )
        bundle = exporter.write_bundle(root / "bundle", model=model, manifest=manifest, contexts=ctx)
        try:
            check_bundle(bundle)
        except Exception as e:  # noqa: BLE001 — one message naming the family
            raise AssertionError(f"{name}: dreamgym.testing.check_bundle refused the exported bundle: {e}") from e

        # 3. determinism
        roll = _rollout_games if agents else _rollout
        a, b = roll(bundle, seed), roll(bundle, seed)
        for k in a:
            if not np.array_equal(a[k], b[k]):
                raise AssertionError(
                    f"{name}: the same seed gave different rollouts ({k}); all randomness must be "
                    "a noise input drawn by the runtime"
                )

        # 4. a few updates lower the loss
        train_model = family.build(config)
        fixed = family.example_batch(config, 4, np.random.default_rng(seed))
        losses: list[float] = []

        def loss(b):
            value, logs = train_model.loss(*b)
            losses.append(value.item())
            return value, logs

        res = fit(
            train_model,
            loss,
            lambda n: fixed,
            FitConfig(steps=fit_steps, batch=4, lr=3e-3, eval_every=fit_steps, ckpt_every=fit_steps, seed=seed),
            root / "fit",
            name="check",
            progress=False,
            log=lambda *_: None,
        )
        first, last = losses[0], float(np.mean(losses[-3:]))
        if not (np.isfinite(losses).all() and last < first):
            raise AssertionError(
                f"{name}: {fit_steps} updates on one fixed batch did not lower the loss ({first:.4g} -> {last:.4g})"
            )
        return {
            "family": name,
            "config": dataclasses.asdict(config),
            "parity": report,
            "graphs": sorted(graphs),
            "fit": {"first_loss": first, "last_loss": last, "updates": res["step"]},
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


def _rollout(bundle: Path, seed: int, steps: int = 6) -> dict[str, np.ndarray]:
    import dreamgym

    env = dreamgym.make_vec(bundle, 3, render_mode="rgb_array")
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = {"obs": [obs], "reward": [], "terminated": [], "frame": [np.stack(env.render())]}
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out["obs"].append(obs), out["reward"].append(r), out["terminated"].append(term)
        out["frame"].append(np.stack(env.render()))
    env.close()
    return {k: np.stack([np.asarray(x) for x in v]) for k, v in out.items()}


def _rollout_games(bundle: Path, seed: int, steps: int = 6) -> dict[str, np.ndarray]:
    import dreamgym

    env = dreamgym.make_batched(bundle, 3, render_mode="rgb_array")
    for i, s in enumerate(env.action_spaces.values()):
        s.seed(seed + i)
    obs, _ = env.reset(seed=seed)
    out = {"obs": [np.concatenate(list(obs.values()), -1)], "reward": [], "frame": [env.render()]}
    for _ in range(steps):
        acts = {a: np.stack([s.sample() for _ in range(3)]) for a, s in env.action_spaces.items()}
        obs, r, term, trunc, info = env.step(acts)
        out["obs"].append(np.concatenate(list(obs.values()), -1)), out["reward"].append(np.stack(list(r.values())))
        out["frame"].append(env.render())
    env.close()
    return {k: np.stack(v) for k, v in out.items()}

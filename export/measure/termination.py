"""Does the dream end where reality ends? Termination precision and recall on held-out episodes.

Two measurements, both with a tolerance of `tol` steps (a predicted end counts when a real one is within
`tol` steps of it in the same episode, and a real end is found when a predicted one is):

- **one step**: from every real state, one imagined step under the real action; the dream's termination
  flags against the real ones (the termination head on the member's prediction of the next state);
- **falls**: from `lead` steps before every real termination, the dream imagines under the recorded actions
  (the last one held past the end) and its first termination is compared with the real one; windows of the
  same length in the middle of episodes, with no real end near them, count the dream's false ends.
"""

from __future__ import annotations

import numpy as np


def _dream(bundle_path, ctx_obs, ctx_act, actions):
    """Imagine `actions` (N, H, ...) from contexts; returns the terminated flags (N, H) (after the first end
    of an env, its later flags are False)."""
    import dreamgym

    n, H = len(actions), actions.shape[1]
    env = dreamgym.make_vec(
        bundle_path,
        n,
        noise_scale=0.0,
        autoreset_mode="Disabled",
        max_episode_steps=10**9,
        uncertainty_penalty=0.0,
        uncertainty_limit=None,
        device="cpu",
    )
    env.reset(seed=0, options={"context": {"obs": ctx_obs, "actions": ctx_act}})
    ended = np.zeros((n, H), bool)
    alive = np.ones(n, bool)
    for h in range(H):
        _, _, term, *_ = env.step(actions[:, h])
        ended[:, h] = term & alive
        alive &= ~term
    env.close()
    return ended


def _context(e: dict, end: int, C: int, discrete: bool):
    """The C real steps ending at observation index `end` (obs and the actions before them)."""
    o, a = e["obs"][end - C + 1 : end + 1], e["prev_act"][end - C + 1 : end + 1]
    return o, (a.reshape(C).astype(np.int64) if discrete else a)


def _actions(e: dict, start: int, H: int, discrete: bool):
    """The recorded actions after observation `start` for H steps, the last one held past the episode's end."""
    acts = e["prev_act"][start + 1 : start + 1 + H]
    acts = np.concatenate([acts, np.repeat(acts[-1:], H - len(acts), 0)]) if len(acts) < H else acts
    return acts.reshape(H).astype(np.int64) if discrete else acts


def termination_report(bundle_path, episodes: list[dict], tol: int = 2, lead: int = 10, seed: int = 0) -> dict:
    """Both measurements on aligned held-out episodes (`cont[t] == 0`: obs[t] is terminal)."""
    import gymnasium as gym

    import dreamgym

    b = dreamgym.Bundle.load(bundle_path)
    C, discrete = b.context_length, isinstance(b.action_space, gym.spaces.Discrete)
    out: dict = {"tolerance_steps": tol, "lead_steps": lead, "real_terminations": 0}

    # one step from every real (non-terminal) state
    starts = [(i, t) for i, e in enumerate(episodes) for t in range(C - 1, len(e["obs"]) - 1) if e["cont"][t] > 0]
    if not starts:
        raise ValueError("no held-out transitions to measure termination on")
    ctx = [_context(episodes[i], t, C, discrete) for i, t in starts]
    acts = np.stack([_actions(episodes[i], t, 1, discrete) for i, t in starts])
    said = _dream(bundle_path, np.stack([c[0] for c in ctx]), np.stack([c[1] for c in ctx]), acts)[:, 0]
    predicted: dict[int, list[int]] = {}
    for (i, t), s in zip(starts, said):
        if s:
            predicted.setdefault(i, []).append(t + 1)
    tp = found = n_said = n_real = 0
    for i, e in enumerate(episodes):
        pred_t = predicted.get(i, [])
        real_t = [t for t in range(len(e["obs"])) if e["cont"][t] == 0]
        tp += sum(any(abs(p - q) <= tol for q in real_t) for p in pred_t)
        found += sum(any(abs(p - q) <= tol for p in pred_t) for q in real_t)
        n_said, n_real = n_said + len(pred_t), n_real + len(real_t)
    out["real_terminations"] = n_real
    out["one_step"] = {
        "precision": tp / n_said if n_said else (1.0 if not n_real else 0.0),
        "recall": found / n_real if n_real else 1.0,
        "predicted": n_said,
        "real": n_real,
        "transitions": len(starts),
    }

    # falls: from `lead` steps before each real end; control windows with no end near them
    H = lead + tol
    falls = [(i, len(e["obs"]) - 1) for i, e in enumerate(episodes) if e["cont"][-1] == 0 and len(e["obs"]) > lead + C]
    rng = np.random.default_rng(seed)
    calm = []  # windows that end, with the tolerance, before any real end
    for i, e in enumerate(episodes):
        room = len(e["obs"]) - H - tol - C
        if room > 0:
            calm += [(i, int(s)) for s in rng.choice(np.arange(C - 1, C - 1 + room), size=min(2, room), replace=False)]
    windows = [(i, T - lead) for i, T in falls] + calm
    if not windows:
        out["falls"] = None
        return out
    ctx = [_context(episodes[i], s, C, discrete) for i, s in windows]
    acts = np.stack([_actions(episodes[i], s, H, discrete) for i, s in windows])
    ended = _dream(bundle_path, np.stack([c[0] for c in ctx]), np.stack([c[1] for c in ctx]), acts)
    first = np.where(ended.any(1), ended.argmax(1) + 1, -1)  # imagined steps to the dream's end (-1: none)
    hits = sum(1 for k in range(len(falls)) if first[k] > 0 and abs(first[k] - lead) <= tol)
    early = sum(1 for k in range(len(falls)) if first[k] > 0 and first[k] < lead - tol)
    false_calm = int((first[len(falls) :] > 0).sum())
    said = hits + early + false_calm
    out["falls"] = {
        "recall": hits / len(falls) if falls else None,
        "precision": hits / said if said else (1.0 if not falls else 0.0),
        "falls": len(falls),
        "found": hits,
        "early": early,
        "calm_windows": len(calm),
        "false_ends_in_calm_windows": false_calm,
        "mean_error_steps": float(np.mean([abs(first[k] - lead) for k in range(len(falls)) if first[k] > 0]))
        if any(first[k] > 0 for k in range(len(falls)))
        else None,
    }
    return out


def episode_lengths(bundle_path, policies: tuple[str, ...] = ("random", "bundle"), n: int = 32, seed: int = 0) -> dict:
    """How long episodes last, real against dreamt, from the same real starts: each policy (`dreamgym record`'s
    names) runs `n` real episodes from seeded resets and `n` dreams from those reset states (a random member per
    step, as a learner sees it; no penalty, no truncation for uncertainty), up to the manifest's episode length."""
    import dreamgym
    from dreamgym.record import make_policy
    from dreamgym.source import open_source_env

    b = dreamgym.Bundle.load(bundle_path)
    T = int(b.max_episode_steps or 1000)
    src = open_source_env(b.manifest)
    out = {"episodes": n, "max_steps": T}
    try:
        for name in policies:
            if name == "bundle" and not b.has_graph("policy"):
                continue
            act = make_policy(name, b, np.random.default_rng(seed))
            starts, real = [], []
            for i in range(n):
                o = src.reset(seed=seed + i)
                starts.append(o)
                steps, done = 0, False
                while steps < T and not done:
                    o, _, term, trunc = src.step(np.asarray(act(np.asarray(o, np.float32)[None]))[0])
                    steps, done = steps + 1, term or trunc
                real.append(steps)
            env = dreamgym.make_vec(
                bundle_path,
                n,
                autoreset_mode="Disabled",
                max_episode_steps=T,
                uncertainty_penalty=0.0,
                uncertainty_limit=None,
                device="cpu",
            )
            zero = np.zeros((n, 1, *b.action_space.shape), b.action_space.dtype)
            obs, _ = env.reset(
                seed=seed, options={"context": {"obs": np.stack(starts)[:, None].astype(np.float32), "actions": zero}}
            )
            dream, alive = np.full(n, T), np.ones(n, bool)
            for t in range(1, T + 1):
                obs, _, term, trunc, _ = env.step(act(obs))
                dream[alive & (term | trunc)] = t
                alive &= ~(term | trunc)
                if not alive.any():
                    break
            env.close()
            real = np.asarray(real)
            out[name] = {
                "real_mean": float(real.mean()),
                "dream_mean": float(dream.mean()),
                "real_ended": float((real < T).mean()),
                "dream_ended": float((dream < T).mean()),
            }
    finally:
        src.close()
    return out

"""Pong measured the way Pong is played: the ball, the player's paddle and the points (issue 17).

A pixel detector for the 64×64 frames of the Pong dreams finds the ball and the player's (green, right)
paddle; the same detector reads the real ALE frames and the dream's, so every figure compares like with like:

- `heldout_game`: from held-out real windows (C real steps, then the recorded actions), the ball's and the
  paddle's position error at h = 1, 5, 10 and the precision / recall of the points within ±4 steps at h ≤ 20;
- `closed_loop`: the dream and the real ALE Pong played by the same policy (the bundled one, or uniformly
  random actions): the share of frames showing exactly one ball, points per 1000 steps, and how many nonzero
  rewards repeat on the next step;
- `control`: from the same real states, UP and DOWN held for k steps move the paddle by how much, in the
  dream and in reality.

The geometry is that of ALE Pong area-resized to 64×64 (`data.atari.collect_pong`): the play field is
rows 11–58 between the walls, the opponent's paddle is at columns 6–7, the player's at 56–57. The ball, 2×4
pixels at 160×210, covers one or two pixels at 64×64, blended with the brown floor: it is found by how much it
lifts the blue channel (the floor's blue is 17, the ball's 236) against red (a ball blend raises blue 2.4×
faster than red; the orange opponent's paddle raises them about equally, the green player's lowers red).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamgym.export.families.tokenizer import PONG_FIELD as FIELD  # the play field's rows in a 64-pixel frame
from dreamgym.export.families.tokenizer import PONG_PLAYER_COLS as PLAYER_COLS  # the player's paddle's columns
from dreamgym.record import make_policy

UP, DOWN = 2, 3  # ALE Pong's RIGHT moves the player's paddle up, LEFT down
HORIZONS = (1, 5, 10)
# closed-loop env-steps per policy: 12000 steps count about 65 points of the real tracker's and 280 of random
# play, so the 95 % interval of a rate is about ±20 % and ±10 % (3000 steps, the card's up to v4: ±50 % and ±20 %,
# and the bars are ±30 %)
GAME_STEPS = 12_000
MISS = 64.0  # the position error of a frame that shows no ball where the real one does: a frame's width


def _scale(frames: np.ndarray) -> float:
    return frames.shape[1] / 64.0


def ball_weight(frames: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 → (N, S, S) how much each pixel looks like the ball (0 where it does not)."""
    f = frames.astype(np.float32)
    r, b = f[..., 0], f[..., 2]
    lift = b - 17.0
    w = np.where((lift > 40.0) & (r >= 140.0) & (lift > 1.6 * (r - 144.0)), lift, 0.0)
    s = _scale(frames)
    w[:, : int(FIELD[0] * s)] = 0.0
    w[:, int(FIELD[1] * s) :] = 0.0
    return w


def _components(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """8-connected components of a small 2-D mask (a few pixels: a flood fill is enough)."""
    left = {(int(y), int(x)) for y, x in zip(*np.nonzero(mask))}
    out = []
    while left:
        stack = [left.pop()]
        comp = []
        while stack:
            y, x = stack.pop()
            comp.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    n = (y + dy, x + dx)
                    if n in left:
                        left.remove(n)
                        stack.append(n)
        out.append(comp)
    return out


def detect(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame: `balls` (how many ball-like blobs), `ball_y`, `ball_x` (the weighted centre when exactly
    one, else NaN) and `paddle_y` (the centre of the player's paddle, NaN when none is seen), in pixels of
    the frame given."""
    frames = np.asarray(frames)
    w = ball_weight(frames)
    n = len(frames)
    balls = np.zeros(n, np.int64)
    by, bx = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        comps = _components(w[i] > 0)
        balls[i] = len(comps)
        if len(comps) == 1:
            ys, xs = np.array(comps[0]).T
            ww = w[i, ys, xs]
            by[i], bx[i] = (ys * ww).sum() / ww.sum(), (xs * ww).sum() / ww.sum()
    s = _scale(frames)
    f = frames.astype(np.float32)[
        :, int(FIELD[0] * s) : int(FIELD[1] * s), int(PLAYER_COLS[0] * s) : int(PLAYER_COLS[1] * s)
    ]
    green = np.maximum(f[..., 1] - f[..., 0] - 10.0, 0.0).sum(2)  # green over red: the player's paddle
    rows = np.arange(green.shape[1], dtype=np.float64) + int(FIELD[0] * s)
    tot = green.sum(1)
    paddle = np.where(tot > 20.0, (green * rows).sum(1) / np.maximum(tot, 1e-6), np.nan)
    return {"balls": balls, "ball_y": by, "ball_x": bx, "paddle_y": paddle}


def _repeats(rewards: np.ndarray) -> tuple[int, int]:
    """(nonzero rewards that follow a nonzero reward of the same env, nonzero rewards) of (N, T) rewards."""
    nz = rewards != 0
    return int((nz[:, 1:] & nz[:, :-1]).sum()), int(nz.sum())


def heldout_game(bundle_path, episodes: list[dict], horizon: int = 20, stride: int = 10, tol: int = 4) -> dict:
    """Ball and paddle position errors at h = 1, 5, 10 and points within ±`tol` steps at h ≤ `horizon`, from
    held-out real windows (episodes as `measure.token.token_episodes` gives them), the dream's most likely tokens."""
    import dreamgym
    from dreamgym.export.measure.fidelity import _events, _windows

    bundle_path = dreamgym.resolve(bundle_path)
    env, starts, C = _windows(bundle_path, episodes, horizon, stride, noise_scale=0.0, seed=0)
    n = len(starts)
    err = {"ball": np.full((n, horizon), np.nan), "paddle": np.full((n, horizon), np.nan)}
    real_ball = np.zeros((n, horizon), bool)
    rewards = np.zeros((n, horizon, 2))
    for h in range(1, horizon + 1):
        t = [s + C - 1 + h for _, s in starts]
        a = np.array([episodes[i]["prev_act"][tt] for (i, _), tt in zip(starts, t)])
        o, r, *_ = env.step(a)
        real = np.stack([episodes[i]["obs"][tt] for (i, _), tt in zip(starts, t)])
        d, q = detect(o), detect(real)
        one = q["balls"] == 1
        real_ball[:, h - 1] = one
        e = np.hypot(d["ball_y"] - q["ball_y"], d["ball_x"] - q["ball_x"])
        err["ball"][:, h - 1] = np.where(one, np.where(np.isnan(e), MISS, e), np.nan)
        err["paddle"][:, h - 1] = np.abs(d["paddle_y"] - q["paddle_y"])
        rewards[:, h - 1, 0] = r
        rewards[:, h - 1, 1] = [episodes[i]["reward"][tt] for (i, _), tt in zip(starts, t)]
    env.close()
    out: dict = {"windows": n, "horizon": horizon, "position_error_px": {}}
    out["tokenizer"] = tokenizer_ceiling(bundle_path, np.stack([episodes[i]["obs"][s + C] for i, s in starts]))
    for h in HORIZONS:
        if h > horizon:
            continue
        b = err["ball"][:, h - 1]
        b = b[~np.isnan(b)]
        p = err["paddle"][:, h - 1]
        p = p[~np.isnan(p)]
        out["position_error_px"][str(h)] = {
            "ball_median": float(np.median(b)) if len(b) else None,
            "ball_windows": int(len(b)),
            "ball_missing_share": float((b >= MISS).mean()) if len(b) else None,
            "paddle_median": float(np.median(p)) if len(p) else None,
        }
    tp, n_pred, found, n_real = _events(rewards, tol)
    rep, nz = _repeats(rewards[..., 0])
    out["points"] = {
        "tolerance": tol,
        "precision": tp / n_pred if n_pred else None,
        "recall": found / n_real if n_real else None,
        "dream_points": int(n_pred),
        "real_points": int(n_real),
        "dream_repeated_share": rep / nz if nz else 0.0,
    }
    return out


def tokenizer_ceiling(bundle_path, frames: np.ndarray) -> dict:
    """The ceiling the world model works under: of real frames showing one ball, the share whose tokens,
    decoded by the bundle's own tokenizer, still show one ball, and the median ball position error there."""
    import torch

    import dreamgym
    from dreamgym.export.families import model_from_bundle

    tok = model_from_bundle(dreamgym.Bundle.load(dreamgym.resolve(bundle_path))).tokenizer
    with torch.no_grad():
        recon = np.concatenate(
            [
                tok.decode_uint8(tok.encode(torch.from_numpy(np.ascontiguousarray(frames[a : a + 256])))).numpy()
                for a in range(0, len(frames), 256)
            ]
        )
    q, d = detect(frames), detect(recon)
    one = q["balls"] == 1
    e = np.hypot(d["ball_y"] - q["ball_y"], d["ball_x"] - q["ball_x"])[one & (d["balls"] == 1)]
    return {
        "frames": int(one.sum()),
        "keeps_ball_share": float((d["balls"][one] == 1).mean()) if one.any() else None,
        "ball_error_median": float(np.median(e)) if len(e) else None,
    }


def _real_env(seed: int):
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.0)
    env.reset(seed=seed)
    return env


def play_dream(bundle_path, act, steps: int, num_envs: int = 8, seed: int = 0, noise_scale: float = 1.0):
    """`num_envs` dreams of a bundle played by `act` (frames -> actions) for `steps` env-steps in all, with the
    env's `noise_scale` and no uncertainty shaping -> (balls seen in each frame, rewards), both (T, num_envs)."""
    import dreamgym

    env = dreamgym.make_vec(
        bundle_path, num_envs, uncertainty_penalty=0.0, uncertainty_limit=None, noise_scale=noise_scale
    )
    obs, _ = env.reset(seed=seed)
    balls, rewards = [], []
    for _ in range(max(1, steps // num_envs)):
        obs, r, term, trunc, _ = env.step(act(obs))
        balls.append(detect(obs)["balls"]), rewards.append(r)
    env.close()
    return np.stack(balls), np.stack(rewards)


def play_real(act, size: int, steps: int, seed: int = 0):
    """One real ALE Pong, episode after episode, played by `act` on its frames area-averaged to `size` for
    `steps` steps -> (balls seen in each frame, rewards), both (steps, 1)."""
    from dreamgym.export.data.sources import area_resize

    env = _real_env(seed)
    o, _ = env.reset(seed=seed)
    f = area_resize(o, size)
    rewards, frames = [], []
    for _ in range(steps):
        o, r, term, trunc, _ = env.step(int(np.asarray(act(f[None]))[0]))
        f = area_resize(o, size)
        rewards.append(r), frames.append(f)
        if term or trunc:
            o, _ = env.reset()
            f = area_resize(o, size)
    env.close()
    return detect(np.stack(frames))["balls"][:, None], np.asarray(rewards)[:, None]


def _game_summary(balls: np.ndarray, rewards: np.ndarray) -> dict:
    rep, nz = _repeats(rewards.T)
    return {
        "steps": int(rewards.size),
        "points": int(nz),
        "one_ball_share": float((balls == 1).mean()),
        "points_per_1000": 1000.0 * nz / rewards.size,
        "repeated_share": rep / nz if nz else 0.0,
    }


def points_interval(summary: dict) -> float:
    """Half-width of the 95 % interval of a closed-loop summary's points per 1000 steps, from its point count
    (Poisson, normal approximation; at least one point counted, so that a run without points is not exact).
    3000 steps count 15-70 points, so a rate moves by a quarter or more between runs."""
    n = summary["points"] if "points" in summary else summary["points_per_1000"] * summary["steps"] / 1000
    return 1000.0 * 1.96 * float(np.sqrt(max(n, 1))) / summary["steps"]


def closed_loop(
    bundle_path,
    policy: str = "bundle",
    steps: int = GAME_STEPS,
    num_envs: int = 8,
    seed: int = 0,
    noise_scale: float = 1.0,
    real: bool = True,
) -> dict:
    """The dream and the real ALE Pong under the same policy for `steps` env-steps each: the share of frames
    with exactly one ball, points per 1000 steps, and the share of points repeated on the next step. The dream
    samples with the env's `noise_scale` (1: as shipped). The real rows depend only on the policy and the seed:
    `real=False` leaves them out (the dream's rows are the same either way, played first)."""
    import dreamgym

    bundle_path = dreamgym.resolve(bundle_path)
    b = dreamgym.Bundle.load(bundle_path)
    act = make_policy(policy, b, np.random.default_rng(seed))
    dream = play_dream(bundle_path, act, steps, num_envs, seed, noise_scale)
    out = {"policy": policy, "dream": _game_summary(*dream)}
    if real:
        out["real"] = _game_summary(*play_real(act, b.frame_shape[0], max(1, steps // num_envs) * num_envs, seed))
    return out


def control(bundle_path, states: int = 24, hold: int = 4, seed: int = 0) -> dict:
    """From `states` real ALE states with the ball in play (reached by the bundled policy, or random play):
    the player's paddle displacement after `hold` steps of UP, and of DOWN, in reality (the state restored)
    and in the dream (its context: the C real frames and actions that led to the state)."""
    import dreamgym
    from dreamgym.export.data.sources import area_resize

    bundle_path = dreamgym.resolve(bundle_path)
    b = dreamgym.Bundle.load(bundle_path)
    size, C = b.frame_shape[0], b.context_length
    rng = np.random.default_rng(seed)
    act = make_policy("bundle" if b.has_graph("policy") else "random", b, rng)
    env = _real_env(seed)
    ale = env.unwrapped.ale
    o, _ = env.reset(seed=seed)
    frames, acts = [area_resize(o, size)], [0]
    picked = []  # (ALE state, context frames, context actions)
    t = 0
    while len(picked) < states and t < 50_000:
        a = int(np.asarray(act(frames[-1][None]))[0]) if rng.random() > 0.2 else int(rng.integers(6))
        o, r, term, trunc, _ = env.step(a)
        frames.append(area_resize(o, size))
        acts.append(a)
        t += 1
        if term or trunc:
            o, _ = env.reset()
            frames, acts = [area_resize(o, size)], [0]
            continue
        if len(frames) >= C and t % 37 == 0 and detect(frames[-1][None])["balls"][0] == 1:
            picked.append((ale.cloneState(), np.stack(frames[-C:]), np.asarray(acts[-C:], np.int64)))
        frames, acts = frames[-C:], acts[-C:]
    real = {UP: [], DOWN: []}
    for state, fr, _ in picked:
        y0 = detect(fr[-1:])["paddle_y"][0]
        for a in (UP, DOWN):
            ale.restoreState(state)
            for _ in range(hold):
                o, *_ = env.step(a)
            real[a].append(detect(area_resize(o, size)[None])["paddle_y"][0] - y0)
    env.close()
    n = len(picked)
    denv = dreamgym.make_vec(
        bundle_path,
        n,
        autoreset_mode="Disabled",
        max_episode_steps=10**9,
        uncertainty_penalty=0.0,
        uncertainty_limit=None,
    )
    ctx = {"obs": np.stack([p[1] for p in picked]), "actions": np.stack([p[2] for p in picked])}
    y0 = detect(ctx["obs"][:, -1])["paddle_y"]
    dream = {}
    for a in (UP, DOWN):
        denv.reset(seed=seed, options={"context": ctx})
        for _ in range(hold):
            o, *_ = denv.step(np.full(n, a))
        dream[a] = detect(o)["paddle_y"] - y0
    denv.close()

    def mean(v):
        v = np.asarray(v, np.float64)
        return float(np.nanmean(v)) if np.isfinite(v).any() else None

    out = {"states": n, "hold": hold}
    for a, name in ((UP, "up"), (DOWN, "down")):
        out[name] = {"real_px": mean(real[a]), "dream_px": mean(dream[a])}
        rp, dp = out[name]["real_px"], out[name]["dream_px"]
        out[name]["ratio"] = dp / rp if rp and dp is not None else None
    u, d = out["up"], out["down"]
    out["holds"] = bool(
        u["ratio"] is not None
        and d["ratio"] is not None
        and u["dream_px"] * d["dream_px"] < 0
        and abs(u["ratio"] - 1) <= 0.3
        and abs(d["ratio"] - 1) <= 0.3
    )
    return out


def pong_game(bundle_path, episodes: list[dict], steps: int = GAME_STEPS) -> dict:
    """Every game-level figure of issue 17 in one dict (what the Pong card's game table shows)."""
    return {
        "heldout": heldout_game(bundle_path, episodes),
        "closed_loop": {p: closed_loop(bundle_path, p, steps) for p in ("bundle", "random")},
        "control": control(bundle_path),
    }


def _f(v, fmt="{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def game_metrics(bundle_path, episodes: list[dict]) -> dict:
    """Pong's own measures for the token evaluator (`token.GAMES`): `pong_game` at its default length."""
    return pong_game(bundle_path, episodes)


def card_lines(game: dict) -> list[str]:
    """The game table of a Pong dream's card, with the bars of issue 17 beside each figure."""
    h = game["heldout"]
    pe, pts = h["position_error_px"], h["points"]
    rows = [
        "## Pong as it is played (game metrics)",
        "",
        "A pixel detector finds the ball and the player's paddle in the dream's and the real frames "
        "(`dreamgym.export.measure.pong`, checked against the real game's RAM in the tests). Position errors "
        f"are medians over {h['windows']} held-out windows (C real frames, then the recorded actions; a dream "
        f"frame without the ball where the real one has it counts as {MISS:.0f} px); points are matched within "
        f"±{pts['tolerance']} steps at h ≤ {h['horizon']}; these use the dream's most likely tokens. The "
        "closed-loop rows run the dream as `gym.make_vec` gives it (sampled tokens) and real ALE Pong for the "
        "same number of steps under the same policy, on the same 64×64 frames.",
        "",
        "| measure | dream | real | bar |",
        "|---|---:|---:|---|",
    ]
    for k in ("1", "5", "10"):
        if k in pe:
            bar = {"1": "≤ 2 px", "5": "≤ 4 px"}.get(k, "")
            rows.append(
                f"| ball position error, h = {k} (px; frames without a ball: "
                f"{_f(pe[k]['ball_missing_share'], '{:.0%}')}) | {_f(pe[k]['ball_median'], '{:.1f}')} | | {bar} |"
            )
    for k in ("1", "5", "10"):
        if k in pe:
            rows.append(f"| paddle position error, h = {k} (px) | {_f(pe[k]['paddle_median'], '{:.1f}')} | | |")
    rows.append(
        f"| points: precision / recall (h ≤ {h['horizon']}, ±{pts['tolerance']}) | "
        f"{_f(pts['precision'])} / {_f(pts['recall'])} | {pts['real_points']} real points | ≥ 0.5 / ≥ 0.5 |"
    )
    for pol, c in game["closed_loop"].items():
        d, r = c["dream"], c["real"]
        name = "the bundled policy" if pol == "bundle" else "uniformly random actions"
        rows += [
            f"| frames showing exactly one ball, {name} | {d['one_ball_share']:.0%} | {r['one_ball_share']:.0%} | "
            f"{'within 10 points' if pol == 'bundle' else ''} |",
            f"| points per 1000 steps, {name} ({d['steps']} steps each; ± the 95 % interval of the count) | "
            f"{d['points_per_1000']:.1f} ± {points_interval(d):.1f} | {r['points_per_1000']:.1f} ± {points_interval(r):.1f} "
            "| within 30 % |",
            f"| points repeated on the next step, {name} | {d['repeated_share']:.0%} | {r['repeated_share']:.0%} | ≤ 1 % |",
        ]
    c = game["control"]
    rows += [
        f"| paddle move after {c['hold']} × UP, from {c['states']} real states (px) | {_f(c['up']['dream_px'], '{:+.1f}')} | "
        f"{_f(c['up']['real_px'], '{:+.1f}')} | opposite signs, within 30 % |",
        f"| paddle move after {c['hold']} × DOWN (px) | {_f(c['down']['dream_px'], '{:+.1f}')} | "
        f"{_f(c['down']['real_px'], '{:+.1f}')} | {'holds' if c['holds'] else 'does not hold'} |",
        "",
    ]
    t = h.get("tokenizer")
    if t and t["keeps_ball_share"] is not None:
        rows += [
            f"The tokenizer's ceiling: of {t['frames']} real frames with one ball, {t['keeps_ball_share']:.0%} still "
            f"show one ball when encoded and decoded by this bundle's tokenizer (median error "
            f"{_f(t['ball_error_median'], '{:.1f}')} px); a ball the dream loses beyond that is lost by the world "
            "model, not the tokenizer.",
            "",
        ]
    return rows


def write_game(bundle_path, game: dict) -> None:
    """Put the game metrics into the bundle's manifest (`metrics.fidelity.game`) and its card, keeping every
    other figure (the write is atomic: the bundle as it was, or with the new figures)."""
    from dreamgym.export.card import model_card
    from dreamgym.export.exporter import finalize, staged
    from dreamgym.manifest import MANIFEST, Manifest

    with staged(Path(bundle_path), copy=True) as folder:
        man = Manifest.read(folder / MANIFEST)
        fid = dict(man.metrics.get("fidelity", {}))
        fid["game"] = game
        man.replace(metrics={**man.metrics, "fidelity": fid}).write(folder / MANIFEST)
        finalize(folder, model_card)


def main(argv=None) -> int:
    """python -m dreamgym.export.measure.pong [BUNDLE] [--episodes DIR] [--steps N] [--json OUT] [--write]"""
    import argparse
    import json
    import tempfile

    import dreamgym
    from dreamgym.export.measure.token import TokenEvaluator

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", nargs="?", default="Dream-Pong-v0")
    p.add_argument("--episodes", default=None, help="a folder of held-out episode_*.npz (default: collect 6 fresh)")
    p.add_argument("--steps", type=int, default=GAME_STEPS, help="closed-loop env-steps per policy")
    p.add_argument("--json", default=None)
    p.add_argument("--write", action="store_true", help="put the figures into the manifest and the model card")
    a = p.parse_args(argv)
    path = dreamgym.resolve(a.bundle)
    ev = TokenEvaluator()
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.episodes
        if folder is None:
            folder = tmp
            ev.heldout(dreamgym.Bundle.load(path), episodes=6, seed=90_001, out=Path(tmp), max_steps=1000)
        res = pong_game(path, ev.load(folder), a.steps)
    print(json.dumps(res, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    if a.write:
        write_game(path, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

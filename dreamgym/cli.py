"""The `dreamgym` command (also `python -m dreamgym`): list, info, rollout."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _size_mb(path) -> float:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / 1e6


def cmd_list(args) -> int:
    from .manifest import MANIFEST, Manifest
    from .registration import shipped_bundles

    rows = []
    for id, path in shipped_bundles().items():
        m = Manifest.read(path / MANIFEST)
        rows.append((m, path))
    if not rows:
        print("no bundles are shipped with this install")
        return 0
    if args.markdown:  # the README's zoo table
        print("| id | family | source env | size | held-out fidelity at h = 1 / 10 / 50 / 100 | frame PSNR h = 1 / 50 |")
        print("|---|---|---|---|---|---|")
        for m, path in rows:
            s = m.summary
            psnr = " / ".join(f"{s.frame_psnr_db[k]:.1f}" for k in ("1", "50") if k in s.frame_psnr_db) if s else ""
            print(f"| `{m.id}` | {m.family} | `{m.source.env_id or '?'}` | {_size_mb(path):.1f} MB | "
                  f"{s.cell() if s else '—'} | {psnr + ' dB' if psnr else '—'} |")
        return 0
    head = ("id", "family", "source env", "size", "fidelity")
    table = [(m.id, m.family, m.source.env_id or "?", f"{_size_mb(path):.1f} MB", _headline(m)) for m, path in rows]
    widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
    for r in [head] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _headline(m) -> str:
    return m.summary.headline() if m.summary else "not evaluated"


def cmd_info(args) -> int:
    from .bundle import Bundle
    from .registration import resolve

    b = Bundle.load(resolve(args.id))
    m = b.manifest
    model = m.model
    print(f"{b.id}  ({b.family})  {b.path}")
    print(f"  {m.description}")
    print(f"  source env:        {m.source.env_id}")
    print(f"  observation space: {b.observation_space}")
    print(f"  action space:      {b.action_space}")
    print(f"  obs modes:         {', '.join(b.obs_modes)}   frame {tuple(m.frame_shape)}")
    print(f"  context length:    {b.context_length}   max episode steps: {b.max_episode_steps}   fps: {b.render_fps}")
    print("  state:             " + ", ".join(f"{s.name}{list(s.shape)}" for s in b.state))
    print("  noise:             " + ", ".join(f"{n.name}{list(n.shape)} {n.distribution} ({n.graph})" for n in b.noise))
    print(f"  graphs:            {', '.join(m.graphs)}")
    print(f"  contexts:          {len(b.contexts['obs'])} real windows")
    if model.parameters:
        print(f"  parameters:        {model.parameters}   multiply-adds per step: {model.step_macs}")
    print(f"  fidelity:          {_headline(m)}")
    if args.json:
        print(json.dumps(m.metrics))
    return 0


def cmd_rollout(args) -> int:
    from .registration import resolve
    from .vector_env import DreamVectorEnv

    env = DreamVectorEnv(resolve(args.id), num_envs=args.num_envs, device=args.device)
    obs, _ = env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    ret = np.zeros(args.num_envs)
    done_returns: list[float] = []
    t0 = time.perf_counter()
    for _ in range(args.steps):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        ret += r
        done = term | trunc
        if done.any():
            done_returns += ret[done].tolist()
            ret[done] = 0.0
    dt = time.perf_counter() - t0
    n = args.num_envs * args.steps
    returns = done_returns or ret.tolist()
    what = "finished episodes" if done_returns else f"{args.steps}-step partial episodes"
    print(f"{env.bundle.id}: {args.num_envs} envs x {args.steps} steps, random actions, device {env.device}")
    print(f"mean return {np.mean(returns):.2f} over {len(returns)} {what}")
    print(f"{n / dt:,.0f} env-steps/s ({dt:.2f} s)")
    return 0


def cmd_record(args) -> int:
    from .record import record

    path = record(args.id, args.output, steps=args.steps, num_envs=args.num_envs, policy=args.policy, seed=args.seed,
                  fps=args.fps, scale=args.scale, compare=args.compare)
    print(f"wrote {path}")
    return 0


def cmd_bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(args)


def cmd_play(args) -> int:
    try:
        from dreamgym.play import app
    except ImportError as e:  # pygame-ce missing
        print(f"dreamgym play: {e}; run `pip install \"dreamgym[play]\"` (it installs pygame-ce)", file=sys.stderr)
        return 2
    return app.main(args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dreamgym", description="Trained world models as Gymnasium environments.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="the zoo of shipped dreams")
    p.add_argument("--markdown", action="store_true", help="print the zoo as a markdown table")
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("info", help="everything about one dream")
    p.add_argument("id", help="a registered id or a bundle folder")
    p.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("rollout", help="step a batch of dreams with random actions; prints mean return and env-steps/s")
    p.add_argument("id", help="a registered id or a bundle folder")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(fn=cmd_rollout)
    p = sub.add_parser("record", help="write a video of imagined rollouts (extra: video)")
    p.add_argument("id", help="a registered id or a bundle folder")
    p.add_argument("-o", "--output", required=True, help="OUT.mp4 or OUT.gif")
    p.add_argument("--steps", type=int, default=200, help="imagined steps (frames)")
    p.add_argument("--num-envs", type=int, default=4, help="dreams tiled in a grid (rows with --compare)")
    p.add_argument("--policy", default="random", help="random, zero, bundle (its policy.onnx) or PATH.onnx")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=int, default=None, help="default: the manifest's render_fps")
    p.add_argument("--scale", type=int, default=2, help="pixels per frame pixel")
    p.add_argument("--compare", action="store_true",
                   help="real | dream | error from the same real start under the same actions (needs the real env)")
    p.set_defaults(fn=cmd_record)
    p = sub.add_parser("bench", help="throughput as ratios measured in one run (dream vs real env, ONNX vs torch)")
    p.add_argument("id", help="a registered id or a bundle folder")
    p.add_argument("--num-envs", default="1,16,64,256,1024,4096", help="comma-separated batch sizes")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None,
                   help="onnxruntime intra-op threads (default: the engine's schedule from the work per step)")
    p.add_argument("--seconds", type=float, default=1.0, help="measuring time per figure and round")
    p.add_argument("--rounds", type=int, default=3, help="measure every figure this many times in turn; report each best")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--no-real", action="store_true", help="skip the real env")
    p.add_argument("--no-torch", action="store_true", help="skip torch eager")
    p.add_argument("--no-memory", action="store_true", help="skip the 65,536-env memory check")
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("play", help="drive a dream from the keyboard in a pygame window (extra: play)")
    p.add_argument("id", nargs="?", default="Dream-HalfCheetah-v0", help="a registered id (default Dream-HalfCheetah-v0)")
    p.add_argument("--bundle", help="a bundle folder instead of an id")
    p.add_argument("--scale", type=int, default=None, help="pixels per frame pixel (default: fills ~512 px)")
    p.add_argument("--fps", type=int, default=None, help="frame rate (default: the manifest's render_fps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keys", help="a JSON file with your own key binding (the manifest keymap's form)")
    p.add_argument("--multiverse", type=int, default=4, help="dreams shown in the multiverse view (F6)")
    p.add_argument("--record-dir", default=".", help="where F5 recordings go")
    p.add_argument("--benchmark", type=int, default=0, metavar="N",
                   help="run N frames as fast as possible with scripted keys and print fps=<frames/s> last")
    p.set_defaults(fn=cmd_play)
    args = ap.parse_args(argv)
    from gymnasium.error import Error

    try:
        return args.fn(args)
    except (Error, ValueError, FileNotFoundError) as e:
        print(f"dreamgym {args.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

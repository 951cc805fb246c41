"""The model card (bundle README.md), generated from the manifest in Gymnasium's docstring sections."""

from __future__ import annotations

import json

from dreamgym.manifest import MANIFEST, Manifest, Preview
from dreamgym.spaces import space_to_json

from .evaluate import VectorEvaluator
from .families import LATENT_TEXT


def _fmt(x, nd=3):
    return "—" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def fidelity_table(f: dict) -> str:
    rows = [
        "| horizon h | std. RMSE (dream) | std. RMSE (copy last) | ratio | frame PSNR (dB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for h, r in f.get("horizons", {}).items():
        rows.append(
            f"| {h} | {_fmt(r['std_rmse'])} | {_fmt(r['copy_last_std_rmse'])} | {_fmt(r['ratio'], 2)}× | "
            f"{_fmt(r.get('frame_psnr_db'), 1)} |"
        )
    return "\n".join(rows)


def token_fidelity_table(f: dict) -> str:
    rows = [
        "| horizon h | frame PSNR (dB) | copy last (dB) | tokenizer ceiling (dB) | token accuracy | "
        "moving-token accuracy | copy last token accuracy |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h, r in f.get("horizons", {}).items():
        rows.append(
            f"| {h} | {_fmt(r['frame_psnr_db'], 1)} | {_fmt(r['copy_last_psnr_db'], 1)} | "
            f"{_fmt(r['tokenizer_psnr_db'], 1)} | {_fmt(r['token_accuracy'])} | "
            f"{_fmt(r['moving_token_accuracy'])} | {_fmt(r['copy_last_token_accuracy'])} |"
        )
    return "\n".join(rows)


def reward_events_table(f: dict) -> str:
    rows = [
        "| matched within | precision | recall | points in the dream | points in reality |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, r in f.get("rewards", {}).items():
        rows.append(
            f"| {k.split('_')[1]} steps | {_fmt(r['precision'])} | {_fmt(r['recall'])} | "
            f"{r['dream_points']} | {r['real_points']} |"
        )
    return "\n".join(rows)


def _horizon_text(m) -> str:
    """The truncation sentence: the real env's horizon, or the bundle's shorter training horizon."""
    short = m.env_defaults.max_episode_steps
    if not short:
        return f"truncation after {m.max_episode_steps} steps"
    return (
        f"truncation after **{short} steps** by default: the training horizon, short dreams from real states as "
        f"MBPO and MOPO train their learners (a truncation, which learners bootstrap through); "
        f"`max_episode_steps={m.max_episode_steps}` gives whole episodes, as play, record, evaluate and transfer run them"
    )


def model_card(m: Manifest) -> str:
    if m.agents:
        return parallel_card(m)
    met = m.metrics
    fam = _family(m.family)
    txt = fam.card_text if fam else LATENT_TEXT
    space_text = txt.get("action_space", "the real env's action space")
    model = m.model
    lines = [
        f"# {m.id}",
        "",
        m.description,
        "",
        f"Family **{m.family}** · source env `{m.source.env_id}` · format v{m.format_version} · "
        f"license {m.license or '—'}",
        "",
        "```python",
        "import gymnasium as gym, dreamgym",
        f'env = gym.make("{m.id}", render_mode="rgb_array")',
        f'venv = gym.make_vec("{m.id}", num_envs=1024)',
        "```",
        "",
        "## Action Space",
        "",
        f"`{json.dumps(space_to_json(m.action_space))}` — {space_text}. "
        f"{txt['action']}" + (f" Meanings: {', '.join(m.action_meanings)}." if m.action_meanings else ""),
        "",
        "## Observation Space",
        "",
        f'`obs_mode="state"`: `{json.dumps(space_to_json(m.observation_space))}`, {txt["obs"]}. `"pixels"`: uint8 frames {list(m.frame_shape)}. `"latent"`: the model\'s '
        f"{m.latent_dim} features.",
        "",
        "## Rewards",
        "",
        txt["reward"],
        "",
        "## Episode End",
        "",
        f"{txt['term']}; {_horizon_text(m)}. A reset draws "
        f"one of {m.contexts.windows} real context windows of C = {m.context_length} "
        f"steps from {m.metrics.get('data', {}).get('bank', 'held-out episodes')} and {txt['reset']}.",
        "",
        "## Model",
        "",
        f"- parameters: {model.parameters} ({model.step_parameters} in the step graph)",
        f"- multiply-adds per env-step: {model.step_macs}",
        f"- config: `{json.dumps(dict(model.config))}`",
        "",
    ]
    if m.preview:
        lines += [
            "## Preview",
            "",
            f"![imagined rollouts]({m.preview.file})",
            "",
            f"Made by `{m.preview.command}`: four dreams from real contexts, "
            f"{POLICY_WORDS.get(m.preview.command.split('--policy ')[-1].split()[0], 'the policy named there')}.",
            "",
        ]
    if "data" in met:
        d = met["data"]
        lines += ["## Data", "", d.get("text", ""), ""]
    evaluator = fam.evaluator if fam else VectorEvaluator()
    lines += evaluator.card_fidelity(m)
    if "parity" in met:
        lines += evaluator.card_parity(met["parity"])
    lines += uncertainty_section(m)
    lines += transfer_section(m)
    if "comparison" in met:
        c = met["comparison"]
        lines += ["## Families compared", "", c["text"], "", c["table"], ""]
    if "recipe" in met:
        r = met["recipe"]
        lines += [
            "## Rebuilding",
            "",
            f"`{r.get('command')}` — measured wall time on {r.get('machine')}: "
            f"{r.get('wall_time_text')} (each stage as measured; training summed over its resumes).",
            "",
        ]
        lines += rebuild_stages(r)
    lines += history_section(m)
    return "\n".join(lines)


def rebuild_stages(r: dict) -> list[str]:
    """The "Rebuilding" section's table of stage times and, for a re-export of a built bundle's weights (e.g.
    at another sampling temperature), what it took."""
    lines = []
    if r.get("stages"):
        lines += ["| stage | wall time (s) |", "|---|---:|"]
        lines += [f"| {k} | {v:.0f} |" for k, v in r["stages"].items()]
        lines.append("")
    if r.get("rebuilt_from"):
        b = r["rebuilt_from"]
        lines += [
            f"This bundle re-exports the weights of that build (`{b['bundle']}`): `{b['command']}`, "
            f"{sum(b['stages'].values()) / 60:.0f} min (data collection, export and measurement only). "
            f"`{r.get('command')}` with the recipe's defaults trains such a model from nothing.",
            "",
        ]
    return lines


def history_section(m: Manifest) -> list[str]:
    """`metrics.history`: what earlier versions of the bundle were and measured, oldest first, each
    {"version", "text"}; a bundle without one is its first release."""
    hist = m.metrics.get("history") or [{"version": "v0", "text": "first release."}]
    return ["## Version History", "", *(f"- {h['version']}: {h['text']}" for h in hist), ""]


def uncertainty_section(m: Manifest) -> list[str]:
    """What the step's `uncertainty` output is, the bundle's defaults for the options that use it, and how
    well it ranks the real error (the recipe's `uncertainty` metrics)."""
    out = next((o for o in m.outputs if o.name == "uncertainty"), None)
    if out is None:
        return []
    d = m.env_defaults
    u = m.metrics.get("uncertainty", {})
    lines = [
        "## Uncertainty",
        "",
        f'Every step gives `info["uncertainty"]`: {out.description}. The defaults: '
        f"`uncertainty_penalty={d.uncertainty_penalty:g}` (the reward is the model's reward minus λ·uncertainty; "
        f'`info["model_reward"]` keeps the model\'s own) and `uncertainty_limit={d.uncertainty_limit}` (an episode '
        "is truncated when the uncertainty exceeds it"
        + (f"; λ is {u['penalty_rule']}" if "penalty_rule" in u else "")
        + (f"; τ is {u['limit_rule']}" if "limit_rule" in u else "")
        + "). `uncertainty_penalty=0, uncertainty_limit=None` gives the raw dream.",
        "",
    ]
    if "spearman_obs_error" in u:
        lines += [
            f"Does it know what it does not know? From {u['probe_steps']} real states of policies in no training "
            f"data ({', '.join(u.get('probe_behaviours', []))}), one imagined step under the real action: Spearman's "
            f"rank correlation of the uncertainty with the real observation error is **{u['spearman_obs_error']:.2f}** "
            f"(with the reward error {u['spearman_reward_error']:.2f}); on held-out episodes of the training "
            f"behaviours {u['spearman_obs_error_heldout']:.2f}.",
            "",
            "| states | mean one-step error (std. units) | uncertainty: median | 99 % | 99.9 % |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, key in (("held-out (training behaviours)", "heldout"), ("probe (unseen policies)", "probe")):
            q = u[f"{key}_quantiles"]
            lines.append(
                f"| {name} | {u[f'{key}_obs_error_mean']:.3f} | {q['0.5']:.3f} | {q['0.99']:.3f} | {q['0.999']:.3f} |"
            )
        lines.append("")
    return lines


def transfer_section(m: Manifest) -> list[str]:
    """`dreamgym transfer`'s results (metrics.transfer.ALGO): a learner trained only in the dream, measured in
    the real env."""
    tr = m.metrics.get("transfer", {})
    lines: list[str] = []
    for algo, t in tr.items():
        s = t["summary"]
        if not lines:
            lines += [
                "## Transfer: trained in the dream, measured in reality",
                "",
                "Stable-Baselines3 with its defaults trains only in this dream (its default options); at each "
                "point its policy runs in the real env and in the dream. Calibration compares the dream's return "
                "with the real return from the same real start states (within 20 %, or ±300 for small returns).",
                "",
            ]
            if not any(o.name == "uncertainty" for o in m.outputs):
                lines += [
                    "This dream gives no uncertainty: the learner trains on the model's raw reward, and nothing "
                    "stops it from finding and exploiting the model's errors. Read the table as a warning: a "
                    "return that rises in the dream while the real one falls is that exploitation.",
                    "",
                ]
        lines += [
            f"**{algo.upper()}**, {t['steps']} steps, {t['seeds']} seed(s), {t['episodes']} episodes of "
            f"{t['episode_steps']} steps per point; a random policy scores {t['random_real_return']:.0f} in the real "
            f"env. `{t['command']}`",
            "",
            "| seed | steps | real return | dream return | real-trained return | same starts: real / dream |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for run in t["runs"]:
            for p in run["points"]:
                ref = p.get("real_trained_return")
                c = p["calibration"]
                lines.append(
                    f"| {run['seed']} | {p['steps']} | {p['real_return']:.0f} | {p['dream_return']:.0f} | "
                    f"{'—' if ref is None else f'{ref:.0f}'} | {c['real']:.0f} / {c['dream']:.0f} |"
                )
        miss = s.get("largest_calibration_miss")
        gains = s.get("gain_ratio")
        lines += [
            "",
            f"Calibrated points: {s.get('calibrated_points')}"
            + (
                f"; largest miss {miss['miss']:.0f} (real {miss['real']:.0f}, dream {miss['dream']:.0f})"
                if miss
                else ""
            )
            + (
                "; real gain over random ÷ the real-trained learner's: "
                + ", ".join("—" if g is None else f"{g:.2f}" for g in gains)
                if gains
                else ""
            )
            + ".",
            "",
        ]
        for name, c in t.get("fixed_policies", {}).items():
            lines.append(f"- {name}: real {c['real']:.0f}, dream {c['dream']:.0f} from the same starts")
        if t.get("fixed_policies"):
            lines.append("")
        lines += [f"![transfer, {algo}](transfer-{algo}.png)", ""]
    return lines


def token_fidelity_section(m: Manifest) -> list[str]:
    """The fidelity section of a token dream's card (`evaluate.token_fidelity`'s metrics)."""
    met, f = m.metrics, m.metrics.get("fidelity", {})
    if not f:
        return []
    lines: list[str] = []
    lines += [
        "## Fidelity (held-out episodes)",
        "",
        f"Observe C = {m.context_length} real frames, then imagine under the recorded actions; "
        f"{f.get('imagination')}; {f.get('windows')} windows from {f.get('heldout_episodes')} held-out episodes. "
        "Frame PSNR compares the dream's frame with the real frame of the same step (next to copying the last "
        "real frame, and to the tokenizer's own reconstruction of the real frame, the ceiling); token accuracy "
        "compares the dream's tokens with the tokenizer's tokens of the real frame, over all tokens and over the "
        "tokens that changed since the last real frame (the ball, the paddles, the score).",
        "",
        token_fidelity_table(f),
        "",
        "Points: a nonzero reward in the dream counts for precision when the real episode has a point of the "
        "same sign within the given number of steps, and a real point counts for recall when the dream has one.",
        "",
        reward_events_table(f),
        "",
    ]
    if "reward_head" in met:
        rh = met["reward_head"]
        lines += [
            f"The reward head alone, reading real frames (teacher forcing, {rh['real_points']} real points, "
            f"exact step): precision {_fmt(rh['precision'])}, recall {_fmt(rh['recall'])} — the gap to the "
            "table above is the dream's ball drifting from the real one.",
            "",
        ]
    if "fidelity_mode" in met:
        fm = met["fidelity_mode"]
        hs = fm["horizons"]
        lines += [
            "With the most likely tokens instead (`noise_scale=0`): frame PSNR "
            + " / ".join(f"{hs[k]['frame_psnr_db']:.1f}" for k in hs)
            + " dB, moving-token accuracy "
            + " / ".join(f"{hs[k]['moving_token_accuracy']:.2f}" for k in hs)
            + f" at h = {' / '.join(hs)}; {fm['rewards']['within_4']['dream_points']} points in the dream "
            f"against {fm['rewards']['within_4']['real_points']} real ones (the ball fades when no single "
            "token is sure of it).",
            "",
        ]
    lines += ["![fidelity over horizon](fidelity.png)", ""]
    if "game" in f:
        from .evaluate_pong import card_lines

        lines += card_lines(f["game"])
    return lines


def vector_fidelity_section(m: Manifest) -> list[str]:
    """The fidelity section of a vector dream's card (`evaluate.fidelity`'s metrics)."""
    f = m.metrics.get("fidelity", {})
    if not f:
        return []
    lines: list[str] = []
    lines += [
        "## Fidelity (held-out episodes)",
        "",
        f"Observe C = {m.context_length} real steps, then imagine under the recorded actions; "
        f"{f.get('imagination')}; {f.get('windows')} windows from {f.get('heldout_episodes')} held-out episodes. "
        "Standardised RMSE uses the per-dimension std of the held-out observations; frame PSNR compares "
        "`render()` with the real MuJoCo frame of the same step.",
        "",
        fidelity_table(f),
        "",
        f"Reward over the first 50 imagined steps: RMSE {_fmt(f.get('reward_rmse_50'))}, "
        f"correlation {_fmt(f.get('reward_corr_50'))}.",
        "",
    ]
    if "policy_return" in f:
        p = f["policy_return"]
        lines += [
            f"Closed loop with the bundled policy from the same real start ({p['starts']} starts): 100-step "
            f"return {p['dream_return_100']:.1f} in the dream vs {p['real_return_100']:.1f} in the real env "
            f"(relative error of the mean {100 * p['relative_error']:.1f}%, mean per-start "
            f"{100 * p['per_start_relative_error']:.1f}%).",
            "",
        ]
    lines += ["![fidelity over horizon](fidelity.png)", ""]
    return lines


def token_parity_section(par: dict) -> list[str]:
    floats = {k: v for k, v in par.items() if k.split(".")[1] in ("retention", "next_retention", "latent")}
    frames = max(v for k, v in par.items() if k.split(".")[1] in ("obs", "frame"))
    tokens = max(v for k, v in par.items() if k.split(".")[1] in ("tokens", "next_tokens"))
    worst = max(floats.items(), key=lambda kv: kv[1])
    return [
        "## Export parity",
        "",
        f"torch vs onnxruntime on random states, actions and Gumbel noise (reset: real held-out context windows): largest error {worst[1]:.2e} "
        f"({worst[0]}); sampled tokens {'identical' if tokens == 0 else f'differ (max id gap {tokens:.0f})'}; "
        f"frames within {frames:.0f} grey level(s).",
        "",
    ]


def vector_parity_section(par: dict) -> list[str]:
    worst = max(par.items(), key=lambda kv: kv[1] if not kv[0].endswith("frame") else -1)
    return [
        "## Export parity",
        "",
        f"torch vs onnxruntime on random states, actions and noise: largest error {worst[1]:.2e} "
        f"({worst[0]}); frames within {par.get('render.frame', 0):.0f} grey level(s).",
        "",
    ]


def _family(name: str):
    """The family record, or None for a family this installation does not know (a vector-style card then)."""
    from .families import get_family

    try:
        return get_family(name)
    except KeyError:
        return None


POLICY_WORDS = {
    "bundle": "the bundled policy driving",
    "cycle": "each dream holding one action for 8 steps, then the next (the dreams start on different ones)",
    "random": "random actions",
}


def make_preview(out, steps: int = 60, policy: str = "bundle") -> None:
    """preview.gif for the model card, made with `dreamgym record` (the same code path as the CLI);
    `policy` as `dreamgym record --policy` takes it."""

    from dreamgym.record import record

    from .exporter import finalize, staged

    with staged(out, copy=True) as folder:
        man = Manifest.read(folder / MANIFEST)
        cmd = f"dreamgym record {man.id} -o preview.gif --steps {steps} --num-envs 4 --policy {policy} --scale 1"
        record(folder, folder / "preview.gif", steps=steps, num_envs=4, policy=policy, scale=1, progress=False)
        man.replace(preview=Preview("preview.gif", cmd)).write(folder / MANIFEST)
        finalize(folder, model_card)


def parallel_card(m: Manifest) -> str:
    """The model card of a multi-agent bundle: its agents, per-agent fidelity, how to open it."""
    from .evaluate_joint import card_fidelity

    met, model = m.metrics, m.model
    fam = _family(m.family)
    txt = fam.card_text if fam else LATENT_TEXT
    names = [a.name for a in m.agents]
    lines = [
        f"# {m.id}",
        "",
        m.description,
        "",
        f"Family **{m.family}** · source env `{m.source.env_id}` · format v{m.format_version} · "
        f"license {m.license or '—'} · agents {', '.join(f'`{a}`' for a in names)}",
        "",
        "```python",
        "import dreamgym",
        f'env = dreamgym.make_parallel("{m.id}", render_mode="rgb_array")   # PettingZoo ParallelEnv',
        f'games = dreamgym.make_batched("{m.id}", num_games=1024)            # per-agent arrays, one call per step',
        f'env1 = dreamgym.make_agent_env("{m.id}", agent="{names[0]}")  # one agent as a Gymnasium env',
        "```",
        "",
        "## Agents",
        "",
        "| agent | observation space | action space | keys in `dreamgym play` |",
        "|---|---|---|---|",
    ]
    for a in m.agents:
        km = a.keymap or {}
        keys = ", ".join(f"{k}→{v}" for k, v in km.get("push", {}).items())
        who = f"player {km['player']}: {keys}" if km.get("player") else "its policy"
        lines.append(
            f"| `{a.name}` | `{json.dumps(space_to_json(a.observation_space))}` | "
            f"`{json.dumps(space_to_json(a.action_space))}` | {who} |"
        )
    lines += [
        "",
        f"Each agent observes in the real env's own space for that agent: {txt['obs']}. {txt['action']}",
        "",
        "## Rewards",
        "",
        txt["reward"],
        "",
        "## Episode End",
        "",
        f"{txt['term']}; truncation after {m.max_episode_steps} steps, all agents together. A reset draws one of "
        f"{m.contexts.windows} real context windows of C = {m.context_length} steps from held-out games (the "
        "same window for every agent) and filters it.",
        "",
        "## Model",
        "",
        f"- parameters: {model.parameters} ({model.step_parameters} in the step graph)",
        f"- multiply-adds per game-step: {model.step_macs}",
        f"- frames: {m.source.frames or 'rendered by the bundle'}",
        f"- config: `{json.dumps(dict(model.config))}`",
        "",
    ]
    if m.preview:
        lines += ["## Preview", "", f"![imagined games]({m.preview.file})", "", f"Made by `{m.preview.command}`.", ""]
    if "data" in met:
        lines += ["## Data", "", met["data"].get("text", ""), ""]
    lines += card_fidelity(m)
    if "parity" in met:
        worst = max(met["parity"].values())
        lines += [f"Export parity: torch and onnxruntime agree within {worst:.1e} on every output.", ""]
    if "recipe" in met:
        r = met["recipe"]
        lines += [
            "## Rebuilding",
            "",
            f"`{r.get('command')}` — measured wall time on {r.get('machine')}: {r.get('wall_time_text')}.",
            "",
        ]
        lines += rebuild_stages(r)
    lines += history_section(m)
    return "\n".join(lines)

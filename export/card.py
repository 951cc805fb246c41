"""The model card (bundle README.md), generated from the manifest in Gymnasium's docstring sections."""

from __future__ import annotations

import json

from dreamgym.export.families import LATENT_TEXT, Evaluator, get_family, load_evaluator
from dreamgym.manifest import MANIFEST, Manifest, Preview
from dreamgym.spaces import space_to_json

VECTOR_EVALUATOR = "dreamgym.export.measure.vector:VectorEvaluator"
"""the evaluator whose sections a card of a family this installation does not know is written with"""


def fmt(x, nd=3) -> str:
    """A figure as a card prints it: floats to `nd` places, a missing one as a dash."""
    return "—" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


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
    evaluator = _evaluator(fam)
    lines += evaluator.card_fidelity(m)
    if "parity" in met:
        lines += evaluator.card_parity(met["parity"])
    lines += uncertainty_section(m)
    lines += termination_section(m)
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
    if "horizon_rule" in u:
        lines += [
            f"A learner's dreams are `max_episode_steps={d.max_episode_steps}` steps long: {u['horizon_rule']}. "
            "These defaults come from one rule for every env, applied to this env's data (its two constants were calibrated once, on HalfCheetah); nothing was tuned for this env.",
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


def termination_section(m: Manifest) -> list[str]:
    """How well the dream ends where reality does (`metrics.termination`, `measure.termination`)."""
    t = m.metrics.get("termination", {})
    if not t or not t.get("real_terminations"):
        return []
    o, f = t["one_step"], t.get("falls")
    lines = [
        "## Termination (held-out episodes)",
        "",
        f"A predicted end counts when a real one is within ±{t['tolerance_steps']} steps of it. One step from every "
        f"real state ({o['transitions']} transitions, {o['real']} real ends): precision **{o['precision']:.2f}**, "
        f"recall **{o['recall']:.2f}**.",
    ]
    if f:
        lines[-1] += (
            f" Falls: from {t['lead_steps']} steps before each of {f['falls']} real ends, imagining under the recorded "
            f"actions, the dream ends within ±{t['tolerance_steps']} steps of reality in {f['found']} "
            f"(recall **{f['recall']:.2f}**, precision **{f['precision']:.2f}** counting {f['early']} early ends and "
            f"{f['false_ends_in_calm_windows']} false ends in {f['calm_windows']} windows far from any real end)."
        )
    if t.get("lengths"):
        L = t["lengths"]
        who = {"random": "random actions", "bundle": "the bundled policy"}
        parts = [
            f"{who[k]} {L[k]['real_mean']:.0f} real against {L[k]['dream_mean']:.0f} dreamt steps "
            f"({100 * L[k]['real_ended']:.0f} % and {100 * L[k]['dream_ended']:.0f} % of the episodes ended)"
            for k in ("random", "bundle")
            if k in L
        ]
        lines[-1] += (
            f" Whole episodes from the same {L['episodes']} real starts (a random member per step, at most "
            f"{L['max_steps']} steps): " + "; ".join(parts) + "."
        )
    return [*lines, ""]


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


def _evaluator(fam) -> Evaluator:
    """The evaluator that writes a family's fidelity and parity sections (a vector one for an unknown family):
    named by the family record and imported here only by that name, so the card imports no evaluator."""
    return load_evaluator(fam.evaluator if fam else VECTOR_EVALUATOR)


def _family(name: str):
    """The family record, or None for a family this installation does not know (a vector-style card then)."""
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

    from dreamgym.export.exporter import finalize, staged
    from dreamgym.record import record

    with staged(out, copy=True) as folder:
        man = Manifest.read(folder / MANIFEST)
        cmd = f"dreamgym record {man.id} -o preview.gif --steps {steps} --num-envs 4 --policy {policy} --scale 1"
        record(folder, folder / "preview.gif", steps=steps, num_envs=4, policy=policy, scale=1, progress=False)
        man.replace(preview=Preview("preview.gif", cmd)).write(folder / MANIFEST)
        finalize(folder, model_card)


def parallel_card(m: Manifest) -> str:
    """The model card of a multi-agent bundle: its agents, per-agent fidelity, how to open it."""
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
    lines += _evaluator(fam).card_fidelity(m)
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

"""The model families `dreamgym.export` knows, and what a family is.

A family is one module of this package (`rssm.py`, `tssm.py`, `rem.py`, `genie.py`, `joint.py`, `ensemble.py`)
holding its config dataclass, its model and, at the bottom, `FAMILY`: the `Family` record that training,
export, evaluation and the model card read. The shared pieces sit beside them: `layers.py` (blocks and
losses), `retnet.py`, `tokenizer.py`. A family imports no measuring code: its record names its evaluator
("module:Class" under `dreamgym.export.measure`), which `load_evaluator` imports for whoever measures.
`FAMILIES` names the modules (importing none of them, so the registry costs no torch import);
`get_family(name)` imports one. Tools outside a family reach it through here without knowing it:
`model_from_bundle` rebuilds a bundle's torch model from the manifest's config and the weights inside its
graphs (the exporter keeps every weight under its parameter name), which `dreamgym bench` runs in torch
eager through `torch_step`.

Adding a family: write its module (config, blocks, model with `loss` and the `WorldModel` surface,
`FAMILY`), name it in `FAMILIES`, give it a recipe in `train/recipes/`, and test it with
`dreamgym.export.testing.check_family`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dreamgym.manifest import Manifest, NoiseSpec, TensorSpec

FAMILIES: dict[str, str] = {
    "rssm": "dreamgym.export.families.rssm",
    "tssm": "dreamgym.export.families.tssm",
    "rem": "dreamgym.export.families.rem",
    "joint-rssm": "dreamgym.export.families.joint",
    "joint-gru": "dreamgym.export.families.joint_gru",
    "joint-mlp": "dreamgym.export.families.joint_mlp",
    "genie": "dreamgym.export.families.genie",
    "step-ensemble": "dreamgym.export.families.ensemble",
}
"""family name (the manifest's `family`) -> the module whose `FAMILY` describes it (or "module:RECORD" when
a module holds more than one family)"""


class WorldModel(Protocol):
    """What a family's model (a torch `nn.Module`) offers training and the exporter."""

    family: str
    """the family's name, written into the manifest"""
    cfg: Any
    """its config dataclass (serialised with `asdict` into the manifest)"""
    frame_decoder: Any
    """the outboard renderer trained apart (an empty module where the step draws its own frames)"""
    latent_dim: int
    """size of the `latent` output"""

    def loss(self, *batch) -> tuple[Any, dict[str, float]]: ...  # training: (loss tensor, logs)
    def graph_functions(self) -> dict[str, Callable]: ...  # reset, step, render; arguments in io_names order
    # optional: `export_functions()`, the same functions in the form traced into the graphs (faster to
    # run, the same outputs); `graph_functions` stays the reference that parity is measured against
    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict[str, dict]: ...
    def state_spec(self) -> tuple[TensorSpec, ...]: ...  # the state tensors, batch axis implied
    def noise_spec(self, context_length: int) -> tuple[NoiseSpec, ...]: ...  # the noise inputs of reset and step
    def step_macs(self) -> int: ...  # multiply-adds of one env-step

    # optional: `output_spec() -> tuple[OutputSpec, ...]`, per-step outputs the step graph gives after the
    # contract's own (e.g. `uncertainty`); the exporter writes them into the manifest's `outputs`


class Evaluator(Protocol):
    """How a family's dreams are measured against reality, and how the measurement reads in a model card."""

    def heldout(self, bundle, episodes: int, seed: int, out: Path, max_steps: int) -> None:
        """Collect `episodes` fresh held-out episodes of a `dreamgym.Bundle`'s source env into `out`."""

    def load(self, folder: str | Path) -> list[dict]:
        """Held-out episodes from a folder, aligned as the runtime's contexts (`prev_act[t]` before `obs[t]`)."""

    def evaluate(self, bundle_path, episodes: list[dict], samples: bool = False) -> dict:
        """Fidelity metrics (with a `summary` for the manifest and a `curve` for the plot)."""

    def card_fidelity(self, m: Manifest) -> list[str]:
        """The model card's fidelity section from `m.metrics` (empty when there is none)."""

    def card_parity(self, parity: dict[str, float]) -> list[str]:
        """The model card's export-parity sentence."""


@dataclass(frozen=True)
class Family:
    """Everything training, export, evaluation and the model card need to know about one family: the record
    a family module fills in at its bottom as `FAMILY`."""

    name: str
    """the manifest's `family`"""
    description: str
    """one line for listings"""
    config: type
    """the config dataclass"""
    model: type
    """the model class (a `WorldModel`), built as `model(config)`"""
    evaluator: str
    """the `Evaluator` that measures its dreams and writes that into the card, as "module:Class" (a name, so
    that no family module imports measuring code; `load_evaluator` imports it)"""
    card_text: Mapping[str, str]
    """the card's family-specific sentences: action, obs, reward, reset, term (see `card.model_card`); optional:
    action_space, and mean / samples (what the vector evaluator's noise_scale 0 / 1 imagine)"""
    spaces: Callable[[Any], tuple[Any, Any]]
    """config -> (observation space, action space) of a bundle of it"""
    example_batch: Callable[[Any, int, np.random.Generator], tuple]
    """(config, batch, rng) -> the arguments of the model's `loss`"""
    agents: Callable[[Any], tuple] | None = None
    """config -> the manifest's `AgentSpec`s, for a multi-agent family (whose `spaces` gives (None, None))"""

    def build(self, config) -> WorldModel:
        return self.model(config)

    def config_from_dict(self, d: Mapping[str, Any]):
        """The config from a manifest's `model.config`; keys an older config had and this one lacks are dropped."""
        names = {f.name for f in dataclasses.fields(self.config)}
        return self.config(**{k: v for k, v in d.items() if k in names})


def load_evaluator(path: str) -> Evaluator:
    """An evaluator from its "module:Class" name (a `Family.evaluator`)."""
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)()


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise KeyError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}")
    module, _, record = FAMILIES[name].partition(":")  # "module" (its FAMILY) or "module:RECORD"
    return getattr(importlib.import_module(module), record or "FAMILY")


def family_of(config) -> Family:
    """The family whose config dataclass `config` is (the exact class first: a joint config is an RSSM one)."""
    for name in FAMILIES:
        fam = get_family(name)
        if type(config) is fam.config:
            return fam
    for name in FAMILIES:
        fam = get_family(name)
        if isinstance(config, fam.config):
            return fam
    raise TypeError(f"{type(config).__name__} is no family's config; known families: {sorted(FAMILIES)}")


# -- the shared pieces of the vector families ---------------------------------------------------------
LATENT_TEXT = {
    "action": "Continuous actions outside it are clipped; non-finite actions raise `dreamgym.ActionError`.",
    "obs": "decoded by the model in the real env's own space",
    "reward": "Predicted by the model's reward head from the latent state (regression on the real reward).",
    "reset": "filters it with the posterior",
    "term": "Termination from the continue head",
}


def vector_spaces(cfg) -> tuple[Any, Any]:
    from gymnasium import spaces

    return (spaces.Box(-np.inf, np.inf, (cfg.obs_dim,), np.float64), spaces.Box(-1.0, 1.0, (cfg.act_dim,), np.float32))


def vector_batch(cfg, batch: int, rng: np.random.Generator, length: int = 12) -> tuple:
    """A random batch in the vector families' `loss` layout: obs, prev_act, reward, cont, mask."""
    import torch

    f = lambda *s: torch.from_numpy(rng.standard_normal(s).astype(np.float32))  # noqa: E731
    act = torch.from_numpy(rng.uniform(-1, 1, (batch, length, cfg.act_dim)).astype(np.float32))
    return f(batch, length, cfg.obs_dim), act, f(batch, length), torch.ones(batch, length), torch.ones(batch, length)


# -- tools on bundles ---------------------------------------------------------------------------------
def model_from_bundle(bundle):
    """The torch model behind a bundle's graphs, its weights read from the step graph and then from the
    reset and render graphs (what no graph holds — an RSSM's frame decoder, which the step does not use —
    stays untrained; so does what the exporter folds into other constants: an RSSM ensemble's `reward_std`
    reads back as 1, and a caller that trains the ensemble again sets it from the data)."""
    import onnx
    import torch
    from onnx import numpy_helper

    fam = get_family(bundle.family)
    model = fam.build(fam.config_from_dict(bundle.manifest.model.config))
    sd = model.state_dict()
    loaded = set()
    for graph in ("step", "reset", "render"):
        for init in onnx.load(str(bundle.graph_file(graph))).graph.initializer:
            key = init.name.split(".", 1)[1] if init.name.startswith("model.") else None
            if key in sd and key not in loaded:
                sd[key] = torch.from_numpy(numpy_helper.to_array(init).copy())
                loaded.add(key)
    if not loaded:
        raise ValueError(f"{bundle.graph_file('step').name} keeps no weights under parameter names; re-export it")
    model.load_state_dict(sd)
    return model.eval()


def torch_step(bundle) -> Callable[[dict[str, np.ndarray]], tuple]:
    """A function taking the step graph's feeds (numpy) and running the same model in torch eager."""
    import torch

    model = model_from_bundle(bundle)
    fn = model.graph_functions()["step"]
    names = bundle.expected_io("step")[0]

    def step(feeds):
        with torch.inference_mode():
            return fn(*(torch.from_numpy(feeds[k]) for k in names))

    return step

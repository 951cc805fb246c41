"""The model families `dreamgym.export` knows, by the manifest's `family` name.

Tools outside a family reach it through here without knowing it: `model_from_bundle` rebuilds a
bundle's torch model from the manifest's config and the weights inside its step graph (the exporter
keeps every weight under its parameter name), which `dreamgym bench` runs in torch eager.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def family_classes() -> dict:
    from .rssm import RSSM, RSSMConfig
    from .rem import REM, REMConfig
    from .tssm import TSSM, TSSMConfig

    return {"rssm": (RSSM, RSSMConfig), "tssm": (TSSM, TSSMConfig), "rem": (REM, REMConfig)}


def model_from_bundle(bundle):
    """The torch model behind a bundle's graphs, its weights read from the step graph and then from the
    reset and render graphs (what no graph holds — an RSSM's frame decoder, which the step does not use —
    stays untrained)."""
    import dataclasses

    import onnx
    import torch
    from onnx import numpy_helper

    classes = family_classes()
    if bundle.family not in classes:
        raise KeyError(f"no torch model for family {bundle.family!r}; known: {sorted(classes)}")
    cls, cfg_cls = classes[bundle.family]
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    model = cls(cfg_cls(**{k: v for k, v in bundle.manifest.model.config.items() if k in names}))
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

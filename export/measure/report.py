"""Measured figures into a bundle: its manifest's metrics, the fidelity plot and the model card, written
atomically (the bundle as it was, or with every new figure)."""

from __future__ import annotations

from pathlib import Path

from dreamgym.export.card import model_card
from dreamgym.export.exporter import finalize, staged
from dreamgym.export.measure.fidelity import plot
from dreamgym.export.measure.joint import plot as plot_agents
from dreamgym.manifest import MANIFEST, Manifest, Summary


def write_metrics(bundle_path: Path, metrics: dict, extra: dict | None = None) -> None:
    """Fidelity `metrics` (with their `summary`, which becomes the manifest's) and `extra` metrics into the
    bundle's manifest, the fidelity plot and the model card."""
    metrics = dict(metrics)
    summary = metrics.pop("summary", None)
    with staged(bundle_path, copy=True) as folder:  # the bundle as it was, or with every new figure
        mpath = folder / MANIFEST
        man = Manifest.read(mpath)
        man = man.replace(
            metrics={**man.metrics, "fidelity": metrics, **(extra or {})},
            summary=Summary(**summary) if summary else man.summary,
        )
        man.write(mpath)
        if man.agents:
            plot_agents(metrics, folder / "fidelity.png", f"{man.id}: held-out fidelity per agent")
        else:
            plot(metrics, folder / "fidelity.png", f"{man.id}: held-out fidelity")
        finalize(folder, model_card)

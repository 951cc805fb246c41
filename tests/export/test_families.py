"""The registry and the Family records; the model card, generated per family, for every shipped bundle."""

from pathlib import Path

import pytest

pytest.importorskip("torch")

from dreamgym.export.families import FAMILIES, family_of, get_family, load_evaluator  # noqa: E402
from dreamgym.manifest import Manifest  # noqa: E402

ASSETS = sorted(p for p in (Path(__file__).parents[2] / "assets").iterdir() if (p / "dreamgym.json").exists())


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_has_its_record(name):
    fam = get_family(name)
    assert fam.name == name and fam.model.family == name and family_of(fam.config()) is fam
    needed = {"action", "obs", "reward", "reset", "term"}
    # optional wording: action_space; mean and samples, what noise_scale 0 and 1 imagine (vector evaluator)
    assert needed <= set(fam.card_text) <= needed | {"action_space", "mean", "samples"}
    # the evaluator is named, not imported, by the family ("module:Class" under dreamgym.export.measure)
    assert isinstance(fam.evaluator, str) and fam.evaluator.startswith("dreamgym.export.measure."), fam.evaluator
    evaluator = load_evaluator(fam.evaluator)
    for method in ("heldout", "load", "evaluate", "card_fidelity", "card_parity"):
        assert callable(getattr(evaluator, method))


def test_unknown_family_is_named():
    with pytest.raises(KeyError, match="known"):
        get_family("nope")


@pytest.mark.parametrize("bundle", ASSETS, ids=[p.name for p in ASSETS])
def test_model_card_of_every_shipped_bundle_regenerates_unchanged(bundle):
    """The card's family-specific text and fidelity section come from the family; the shipped cards are what
    the generator writes for them."""
    from dreamgym.export.card import model_card

    assert model_card(Manifest.read(bundle / "dreamgym.json")) == (bundle / "README.md").read_text()


def test_the_version_history_keeps_earlier_figures():
    """A bundle rebuilt by a new recipe keeps what its earlier versions measured (metrics.history, oldest
    first); one without a history is a first release."""
    from dreamgym.export.card import history_section

    bundle = next(p for p in ASSETS if p.name == "pong-rem")
    man = Manifest.read(bundle / "dreamgym.json")
    first = man.replace(metrics={k: v for k, v in man.metrics.items() if k != "history"})
    assert history_section(first) == ["## Version History", "", "- v0: first release.", ""]
    two = man.replace(
        metrics={**man.metrics, "history": [{"version": "v0", "text": "a"}, {"version": "v1", "text": "b"}]}
    )
    assert history_section(two)[2:4] == ["- v0: a", "- v1: b"]

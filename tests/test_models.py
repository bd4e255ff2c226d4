"""The models that ship inside the package: present, small, loadable, and used by default."""

from pathlib import Path

import numpy as np
import pytest

import deepexpose
from deepexpose.methods import load_method

MODELS = Path(deepexpose.__file__).parent / "models"
MAX_BYTES = 5 * 1024 * 1024


@pytest.mark.parametrize("name", ["agent", "classifier", "histogram", "cgan"])
def test_bundled_model_is_small_and_complete(name):
    path = MODELS / f"{name}.safetensors"
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert path.stat().st_size + path.with_suffix(".json").stat().st_size <= MAX_BYTES


@pytest.mark.parametrize("name", ["agent", "classifier", "histogram", "cgan"])
def test_bundled_model_is_the_default_and_corrects(name):
    method = load_method(name)  # no model given: the bundled one
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64] / 64
    dark = np.stack([0.25 * x + 0.05, 0.2 * y + 0.05, 0.1 * (x + y) + 0.03], 2)
    pixels = (np.clip(dark + rng.normal(0, 0.01, dark.shape), 0, 1) * 255).round().astype(np.uint8)
    out = method.plan(pixels).render(pixels, 1.0)
    assert out.shape == pixels.shape and out.dtype == np.uint8


def test_agent_model_records_how_it_was_made():
    from deepexpose.agents.policy import load_agent

    agent = load_agent()
    trained = agent.meta["trained"]
    assert trained["config"]["data"] == "library" and "kphotoalbum" not in trained["config"]["library_packages"]
    assert set(trained["config"]["holdout"].split(",")) >= {"coffee", "chelsea", "motorcycle"}
    assert "train_default_model.py" in agent.meta["note"]


def test_agent_model_was_made_by_the_recipe_s_defaults():
    """``scripts/train_default_model.py`` with no options makes the bundled agent's kind of model."""
    from conftest import load_script
    from deepexpose.agents.policy import load_agent

    recipe = load_script("train_default_model.py")
    meta = load_agent().meta
    trained = meta["trained"]
    made = recipe.default_config(12.0, "runs/default-model", trained["config"]["library_packages"].split(","))
    for field in ("algo", "scheme", "pool_size", "colour_stats", "deadzone", "chroma", "validation", "eval_every"):
        assert trained["config"][field] == getattr(made, field), field
    assert trained["config"]["keep_evaluated"] and meta["model"]["chroma"]  # --choose-on-photos, --chroma
    assert trained["chosen"]["by"] == recipe.CHOSEN_ON_PHOTOS and trained["chosen"]["step"] == trained["step"]
    steps = [h["step"] for h in trained["history"]]
    assert trained["step"] in steps and trained["best"]["step"] in steps and max(steps) >= trained["step"]
    assert set(meta["consensus"]) == {"crop", "shrink"}


def test_first_quick_start_command_uses_the_bundled_agent(tmp_path, capsys):
    import json

    from deepexpose.cli import main

    assert main(["demo", "-o", str(tmp_path / "demo"), "--overwrite", "--no-progress"]) == 0
    scores = json.loads((tmp_path / "demo" / "scores.json").read_text())
    side = json.loads((tmp_path / "demo" / "enhanced" / "coffee_dark.png.json").read_text())
    assert side["method"] == "agent" and side["model"] == "bundled default"
    dark = next(s for s in scores if s["sample"] == "coffee_dark")
    assert dark["after_psnr"] > dark["before_psnr"] + 3  # the agent brightens the underexposed sample

"""Shared by the tests of ``scripts/``: a tiny trained agent, and running a script as ``python SCRIPT ARGS``."""

import json
import runpy
import sys
from pathlib import Path

import pytest

from deepexpose.agents.train import TrainConfig, train

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="session")
def tiny_agent(tmp_path_factory) -> Path:
    """The checkpoint of a 64-step agent on the demo photos (coffee held out, one scene group validating)."""
    import warnings

    out = tmp_path_factory.mktemp("tiny-agent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the six demo photos are too few, as train warns
        train(TrainConfig(data="demo", holdout="coffee", steps=64, batch=8, workers=1, pool_size=16, eval_size=4,
                          view=16, k=2, eval_every=0, checkpoint_every=0, validation=0.2, out=str(out),
                          progress=False))
    return out / "checkpoint.safetensors"


@pytest.fixture
def run_script(monkeypatch, capsys):
    """``run_script(NAME, ARGS)`` runs ``scripts/NAME`` with the command line ``ARGS``; it must exit 0 after
    printing a JSON report, which is returned."""
    def run(name: str, args: list[str]) -> dict:
        monkeypatch.setattr(sys, "argv", [name, *args])
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(SCRIPTS / name), run_name="__main__")
        assert done.value.code == 0
        text = capsys.readouterr().out
        return json.loads(text[text.index("{"):])
    return run

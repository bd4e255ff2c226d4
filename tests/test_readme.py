"""The README's commands name scripts that exist and options that their parsers know."""

import argparse
import re
from pathlib import Path

import pytest

from conftest import load_script
from deepexpose.cli import TRAIN_METHODS, build_parser

README = Path(__file__).resolve().parent.parent / "README.md"
COMMAND = re.compile(r"\.venv/bin/(?:python scripts/(?P<script>[a-z_]+)\.py|deepexpose (?P<cmd>[a-z]+))"
                     r"(?P<args>[^`|\n]*)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def readme_commands() -> list[tuple[str, str, list[str]]]:
    """``(kind, name, flags)`` of every command in the README: ``kind`` is script or cli."""
    found = []
    for m in COMMAND.finditer(README.read_text(encoding="utf-8")):
        args = m["args"].split("#")[0]  # a shell comment is not part of the command
        kind, name = ("script", m["script"]) if m["script"] else ("cli", m["cmd"])
        found.append((kind, name, FLAG.findall(args)))
    return found


class _Parsed(Exception):
    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def script_options(name: str, monkeypatch) -> set[str]:
    """The options of ``scripts/NAME.py``: its ``main()`` is stopped when it parses its arguments."""
    module = load_script(f"{name}.py")

    def capture(parser, args=None, namespace=None):
        raise _Parsed(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(_Parsed) as parsed:
        module.main()
    monkeypatch.undo()
    return _options(parsed.value.parser)


def cli_options(command: str) -> set[str]:
    """The options of ``deepexpose COMMAND``; for train, those of every ``--method`` (the README loops over them)."""
    options = set()
    for method in TRAIN_METHODS if command == "train" else (None,):
        sub = next(a for a in build_parser(method)._actions if isinstance(a, argparse._SubParsersAction))
        options |= _options(sub.choices[command])
    return options


def test_the_readme_has_commands():
    commands = readme_commands()
    assert len(commands) > 30
    assert ("cli", "demo", ["--overwrite"]) in commands  # the quick start's main job


def test_every_readme_command_names_a_real_script_and_real_options(monkeypatch):
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    known: dict[tuple[str, str], set[str]] = {}
    unknown = []
    for kind, name, flags in readme_commands():
        if kind == "script":
            assert (scripts / f"{name}.py").is_file(), f"README names scripts/{name}.py, which does not exist"
        if (kind, name) not in known:
            known[(kind, name)] = script_options(name, monkeypatch) if kind == "script" else cli_options(name)
        unknown += [f"{name} {flag}" for flag in flags if flag not in known[(kind, name)]]
    assert unknown == []

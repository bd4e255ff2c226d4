"""Dataclass configs whose field docstrings are the ``--help`` (cleanrl style), with JSON round trips."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (``x: int = 1`` then ``\"\"\"doc\"\"\"``), the
    fields of dataclass bases included (a subclass's own docstring wins)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            docs.update(_own_field_docs(base))
    return docs


def _own_field_docs(cls: type) -> dict[str, str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, short: dict[str, str] | None = None) -> None:
    """One ``--field-name`` option per field, typed from the default, helped by the field's docstring (its
    reStructuredText ````code```` marks dropped; "(default: ...)" added unless the docstring names the default
    itself); ``short`` adds short flags (``{"out": "-o"}``)."""
    docs = field_docs(cls)
    short = short or {}
    for f in dataclasses.fields(cls):
        flags = [short[f.name]] if f.name in short else []
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        doc = docs.get(f.name, "").replace("``", "").replace("%", "%%")  # argparse formats help strings with %
        said = "default:" in doc
        if isinstance(default, bool):
            parser.add_argument(*flags, flag, action=argparse.BooleanOptionalAction, default=default,
                                help=doc if said else f"{doc} (default: {default})")
        else:
            kind = type(default) if default is not None else _optional_type(cls, f.name)
            parser.add_argument(*flags, flag, type=kind, default=default,
                                help=doc if said else f"{doc} (default: {default!r})")


def _optional_type(cls: type, name: str) -> type:
    """The ``T`` of a field annotated ``T | None`` (a default of ``None`` says nothing of the type)."""
    kinds = [t for t in typing.get_args(typing.get_type_hints(cls)[name]) if t is not type(None)]
    if len(kinds) != 1:
        raise TypeError(f"{cls.__name__}.{name}: a None default needs an annotation T | None")
    return kinds[0]


def from_namespace(cls: type[T], args: argparse.Namespace) -> T:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a JSON dict, refusing unknown keys (a config from another version says so clearly)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
    return cls(**data)

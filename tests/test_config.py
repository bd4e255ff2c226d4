import argparse
import re
from dataclasses import dataclass

import pytest

from deepexpose.config import add_dataclass_arguments, field_docs, from_dict, from_namespace


@dataclass
class Cfg:
    lr: float = 0.1
    """learning rate of the thing"""
    name: str = "x"
    """what it is called"""
    fast: bool = False
    count: int = 3
    """how many"""


def test_field_docs_and_help():
    assert field_docs(Cfg) == {"lr": "learning rate of the thing", "name": "what it is called", "count": "how many"}
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Cfg)
    assert "learning rate of the thing" in p.format_help()
    args = p.parse_args(["--lr", "0.5", "--fast", "--count", "7"])
    assert from_namespace(Cfg, args) == Cfg(lr=0.5, name="x", fast=True, count=7)
    assert from_namespace(Cfg, p.parse_args(["--no-fast"])).fast is False


def test_from_dict_rejects_unknown():
    assert from_dict(Cfg, {"lr": 1.0}) == Cfg(lr=1.0)
    with pytest.raises(ValueError, match="bogus"):
        from_dict(Cfg, {"bogus": 1})


def test_percent_in_field_docs_is_escaped():
    import argparse
    from dataclasses import dataclass

    from deepexpose.config import add_dataclass_arguments

    @dataclass
    class C:
        share: float = 0.5
        """share in % of the photos"""

    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, C)
    assert "share in % of the photos" in p.format_help()


def test_help_drops_code_marks_and_does_not_repeat_a_default_the_doc_names():
    @dataclass
    class C:
        model: str = ""
        """model file (default: the bundled model); see ``deepexpose enhance``"""
        size: int = 3

    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, C)
    text = " ".join(p.format_help().split())
    assert "model file (default: the bundled model); see deepexpose enhance" in text
    assert "(default: '')" not in text and "``" not in text
    assert "(default: 3)" in text  # a field without a doc still shows its default


@dataclass
class _Optional:
    count: int | None = None
    """how many (default: as many as there are)"""


@dataclass
class _Ambiguous:
    value: int | str | None = None
    """either"""


def test_a_none_default_takes_its_type_from_the_annotation():
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, _Optional)
    assert p.parse_args(["--count", "3"]).count == 3 and p.parse_args([]).count is None
    with pytest.raises(SystemExit):
        p.parse_args(["--count", "x"])
    with pytest.raises(TypeError, match=re.escape("needs an annotation T | None")):
        add_dataclass_arguments(argparse.ArgumentParser(), _Ambiguous)

"""The project's own Python files keep to its line length (120 characters)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE = 120
SOURCES = ("deepexpose", "agents", "envs", "scripts", "tests")


def long_lines(root: Path = ROOT) -> list[str]:
    """``path:line (length)`` of every line over :data:`MAX_LINE` characters in the project's Python files."""
    found = []
    for folder in SOURCES:
        for path in sorted((root / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if len(line) > MAX_LINE:
                    found.append(f"{path.relative_to(root)}:{number} ({len(line)})")
    return found


def test_no_line_is_longer_than_120_characters():
    assert long_lines() == []


def test_a_line_of_121_characters_is_found_and_one_of_120_is_not(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "x.py").write_text("x = '" + "a" * 114 + "'\n" + "y = '" + "a" * 115 + "'\n",
                                               encoding="utf-8")
    assert long_lines(tmp_path) == ["scripts/x.py:2 (121)"]

"""docs/tensor.md's reference tables cannot drift from the code: every public name of
`scanaot.tensor` has a row, every row names something that exists, and each row
states its gradient and targets in the table's words."""
from __future__ import annotations

import re
import types
from pathlib import Path

import scanaot.tensor as at

DOC = Path(__file__).resolve().parents[1] / "docs" / "tensor.md"
GRADIENT = {"yes", "no", "-"}


def _rows() -> list[tuple[str, list[str]]]:
    text = DOC.read_text()
    reference = text[text.index("## Reference"):]
    rows = []
    for line in reference.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("name", "---") or set(cells[0]) <= {"-"}:
            continue
        names = re.findall(r"`([^`]+)`", cells[0]) or [cells[0]]
        for name in names:
            rows.append((name, cells))
    return rows


def _public_names() -> set[str]:
    return {n for n, v in vars(at).items()
            if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"}


def _resolve(name: str):
    value = at
    for part in name.split("."):
        value = getattr(value, part)
    return value


def test_every_public_name_has_a_row():
    documented = {name for name, _ in _rows()}
    missing = sorted(_public_names() - documented)
    assert not missing, f"scanaot.tensor exports names docs/tensor.md's reference does not list: {missing}"


def test_every_row_names_something_that_exists():
    for name, _ in _rows():
        _resolve(name)


def test_every_row_states_gradient_and_targets():
    for name, cells in _rows():
        assert len(cells) == 6, f"{name}: expected 6 columns, got {cells}"
        assert cells[3] in GRADIENT, f"{name}: gradient column {cells[3]!r} is not one of {sorted(GRADIENT)}"
        assert cells[4], f"{name}: no targets"

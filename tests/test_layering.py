"""The layering of docs/architecture.md, as import rules read from the source (ast), so they stay true.

    contract/  ◄── app/        (serving: FastAPI + ONNX Runtime, never torch)
               ◄── training/   (PyTorch)
               ◄── bench/      (benchmarks, proofs, evaluations; never tests/)

`contract` is the train↔serve contract; it imports only the standard library, numpy, OpenCV and
pydantic, so both sides can share it without either importing the other.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"app", "contract", "training", "bench", "tests"}
CONTRACT_THIRD_PARTY = {"numpy", "cv2", "pydantic"}


def top_level_imports(path: Path) -> set[str]:
    """The top-level package of every absolute import in one file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def imports_of(package: str) -> dict[Path, set[str]]:
    return {path: top_level_imports(path) for path in sorted((ROOT / package).rglob("*.py"))}


def test_contract_imports_only_numpy_opencv_pydantic_and_the_standard_library() -> None:
    allowed = CONTRACT_THIRD_PARTY | {"contract"} | set(sys.stdlib_module_names)
    for path, names in imports_of("contract").items():
        assert names <= allowed, f"{path.relative_to(ROOT)} imports {sorted(names - allowed)}"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("app", {"torch", "training", "bench", "tests"}),
        ("training", {"app", "bench", "tests"}),
        ("bench", {"tests"}),
    ],
)
def test_one_way_flow(package: str, forbidden: set[str]) -> None:
    for path, names in imports_of(package).items():
        assert not names & forbidden, f"{path.relative_to(ROOT)} imports {sorted(names & forbidden)}"


def test_every_first_party_package_is_covered() -> None:
    # A new top-level package must be placed in the layering above, not slip past it.
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= FIRST_PARTY, sorted(packages - FIRST_PARTY)

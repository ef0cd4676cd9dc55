"""The import rules of docs/architecture.md at run time: no torch and no `training` in app/, no web
framework in the contract and the pure service modules. Checked in a fresh interpreter, since this
test process has imported plenty."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import app

APP_DIR = Path(app.__file__).parent
PURE = [
    "contract",
    "contract.preprocessing",
    "contract.postprocessing",
    "contract.manifest",
    "contract.graphemes",
    "contract.writer_manifest",
    "app.service.images",
    "app.runtime.inference",
    "app.errors",
    "app.service.preview",
    "app.service.segmentation",
    "app.service.reading",
    "app.runtime.embedder",
    "app.service.writer_matching",
    "app.runtime.writer_store",
    "app.service.writer_images",
]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_app_never_imports_torch_or_training():
    for path in APP_DIR.rglob("*.py"):
        assert not imported_modules(path) & {"torch", "training"}, path


def loaded_after_import(modules: list[str]) -> set[str]:
    code = f"import sys; {'; '.join(f'import {m}' for m in modules)}; print(' '.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in result.stdout.split()}


def test_pure_modules_load_no_web_framework():
    assert not loaded_after_import(PURE) & {"fastapi", "starlette", "uvicorn", "torch", "training"}


def test_the_whole_app_loads_no_torch():
    assert not loaded_after_import(["app.main", "app.__main__"]) & {"torch", "training"}

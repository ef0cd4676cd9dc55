"""DESIGN.md's one-way flow: training may use exactly two service modules, the preprocessing and the manifest."""

import ast
from pathlib import Path

import training

ALLOWED = {"app.preprocessing", "app.manifest"}


def test_training_imports_only_the_preprocessing_and_the_manifest_from_app():
    for path in Path(training.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "app":
                assert node.module in ALLOWED, f"{path}: from {node.module} import …"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] != "app" or alias.name in ALLOWED, f"{path}: {alias.name}"

"""DESIGN.md's one-way flow: training uses only the service's pure contract modules.

Besides the preprocessing and the manifest, the grapheme composition rules: renders are made from the
very strings the service composes its answers from (one implementation, no label skew).
"""

import ast
from pathlib import Path

import training

ALLOWED = {"app.preprocessing", "app.manifest", "app.graphemes"}


def test_training_imports_only_the_contract_modules_from_app():
    for path in Path(training.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "app":
                assert node.module in ALLOWED, f"{path}: from {node.module} import …"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] != "app" or alias.name in ALLOWED, f"{path}: {alias.name}"

"""The layering of docs/architecture.md, as import rules read from the source (ast), so they stay true.

    contract/  ◄── app/        (serving: FastAPI + ONNX Runtime, never torch)
               ◄── training/   (PyTorch)
               ◄── bench/      (benchmarks, proofs, evaluations; never tests/)

Inside bench/, three packages share the top-level modules (the server on a free port, the command
lines' parts, the upload set and photo test set) and never import one another:

    bench.perf    the benchmark, A/B runs, stage timings
    bench.proofs  hardening proofs, and the checks that a change keeps answers identical
    bench.eval    the models evaluated through the service's path

`contract` is the train↔serve contract; it imports only the standard library, numpy, OpenCV and
pydantic, so both sides can share it without either importing the other.

The same rules are also checked at run time, in a fresh interpreter (this test process has imported
plenty): what importing the pure modules, and the whole app, actually loads.

Inside app/, a request flows http → api → service → runtime, with schemas beside them:

    app.http     middlewares, the model-route table, uploads   (never api or service)
    app.api      thin routes, one module per resource           (never another route module)
    app.service  decode_upload, the pipeline, reading, writers  (no web framework; never api or http)
    app.runtime  registry, ONNX sessions, batching, compute     (no web framework; never api, http, service)
    app.schemas  request and response bodies                    (no web framework; pydantic and numpy)
"""

from __future__ import annotations

import ast
import subprocess
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


BENCH_PACKAGES = {"perf", "proofs", "eval"}


def dotted_imports(path: Path) -> set[str]:
    """Every absolute module a file imports, dotted in full (`from app.x import y` gives `app.x`
    and `app.x.y`, since y may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def within(name: str, packages: set[str]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


WEB = {"fastapi", "starlette", "uvicorn", "python_multipart"}
APP_LAYERS = [
    ("app/http", {"app.api", "app.service"}),
    ("app/service", WEB | {"app.api", "app.http"}),
    ("app/runtime", (WEB - {"uvicorn"}) | {"app.api", "app.http", "app.service"}),
    ("app/schemas", WEB | {"app.api", "app.http", "app.service", "app.runtime"}),
]


@pytest.mark.parametrize(("folder", "forbidden"), APP_LAYERS, ids=[folder for folder, _ in APP_LAYERS])
def test_app_layers(folder: str, forbidden: set[str]) -> None:
    for path in sorted((ROOT / folder).rglob("*.py")):
        bad = sorted(name for name in dotted_imports(path) if within(name, forbidden))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_shared_top_level_modules_import_no_layer_above_runtime() -> None:
    for name in ("config", "errors", "logs", "metrics"):
        path = ROOT / "app" / f"{name}.py"
        bad = sorted(
            n for n in dotted_imports(path) if within(n, {"app.api", "app.http", "app.service"} | WEB)
        )
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_no_route_module_imports_another() -> None:
    # Routes share only their dependencies (app.api.deps); the work they share is in app.service.
    for path in sorted((ROOT / "app" / "api").glob("*.py")):
        others = {f"app.api.{p.stem}" for p in path.parent.glob("*.py")} - {
            "app.api.deps",
            f"app.api.{path.stem}",
        }
        bad = sorted(name for name in dotted_imports(path) if within(name, others))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_app_has_a_handful_of_top_level_modules() -> None:
    # New code finds its layer; the top level keeps the entry points and what every layer shares.
    top = {p.stem for p in (ROOT / "app").glob("*.py")}
    assert top <= {"__init__", "__main__", "main", "config", "errors", "logs", "metrics"}, sorted(top)


@pytest.mark.parametrize("package", sorted(BENCH_PACKAGES))
def test_bench_packages_import_only_the_shared_modules_of_bench(package: str) -> None:
    others = {f"bench.{other}" for other in BENCH_PACKAGES - {package}}
    for path in sorted((ROOT / "bench" / package).rglob("*.py")):
        bad = sorted(name for name in dotted_imports(path) if within(name, others))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_shared_modules_of_bench_import_none_of_its_packages() -> None:
    packages = {f"bench.{package}" for package in BENCH_PACKAGES}
    for path in sorted((ROOT / "bench").glob("*.py")):
        bad = sorted(name for name in dotted_imports(path) if within(name, packages))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_every_bench_package_is_covered() -> None:
    # A new package under bench/ must be placed in the rules above.
    packages = {p.name for p in (ROOT / "bench").iterdir() if (p / "__init__.py").is_file()}
    assert packages == BENCH_PACKAGES, sorted(packages ^ BENCH_PACKAGES)


def test_every_first_party_package_is_covered() -> None:
    # A new top-level package must be placed in the layering above, not slip past it.
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= FIRST_PARTY, sorted(packages - FIRST_PARTY)


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


def loaded_after_import(modules: list[str]) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing `modules`."""
    code = f"import sys; {'; '.join(f'import {m}' for m in modules)}; print(' '.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in result.stdout.split()}


def test_pure_modules_load_no_web_framework():
    assert not loaded_after_import(PURE) & {"fastapi", "starlette", "uvicorn", "torch", "training"}


def test_the_whole_app_loads_no_torch():
    assert not loaded_after_import(["app.main", "app.__main__"]) & {"torch", "training"}

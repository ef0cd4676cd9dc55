"""The dependency declarations: hash-pinned lock files that agree with pyproject.toml, exact pins
for the tools whose releases change CI's verdict, and extras that install what their code imports.

Offline: the lock files are parsed, not resolved; `make lock` recompiles them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
FLAVOURS = {"cpu": "onnxruntime", "gpu": "onnxruntime-gpu"}
# The two images' interpreters: python:3.11-slim (Dockerfile) and Ubuntu 24.04's 3.12 (Dockerfile.gpu).
PYTHONS = ("3.11", "3.12")


def lock_entries(flavour: str) -> list[tuple[Requirement, list[str]]]:
    """(name==version ; marker, hashes) per package of requirements/serve-<flavour>.txt."""
    text = (ROOT / "requirements" / f"serve-{flavour}.txt").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", text)
    entries = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        requirement = Requirement(re.sub(r"\s*--hash=\S+", "", line))
        entries.append((requirement, hashes))
    return entries


def linux(python: str, extra: str = "") -> dict[str, str]:
    """Marker variables of CPython `python` on Linux x86_64, the images' platform."""
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "extra": extra,
    }


def extra_requirements(requirement: Requirement) -> list[Requirement]:
    """What `requirement`'s extras add, read from the installed distribution's metadata."""
    if not requirement.extras:
        return []
    added = []
    for text in importlib.metadata.requires(requirement.name) or []:
        needed = Requirement(text)
        if needed.marker is None or needed.marker.evaluate({"extra": ""}):
            continue  # not behind an extra
        if any(needed.marker.evaluate({"extra": extra}) for extra in requirement.extras):
            added.append(needed)
    return added


def pins_for(flavour: str, python: str) -> dict[str, Version]:
    """The version each package gets on Linux x86_64 CPython `python` from that lock file."""
    pins: dict[str, Version] = {}
    for requirement, _ in lock_entries(flavour):
        if requirement.marker is None or requirement.marker.evaluate(linux(python)):
            name = canonicalize_name(requirement.name)
            assert name not in pins, f"{name} pinned twice for Python {python}"
            (specifier,) = requirement.specifier
            pins[name] = Version(specifier.version)
    return pins


def serving_requirements(flavour: str) -> list[Requirement]:
    optional = PROJECT["optional-dependencies"]
    return [Requirement(r) for r in PROJECT["dependencies"] + optional[flavour] + optional["postgres"]]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_lock_files_pin_every_package_to_one_version_with_hashes(flavour: str) -> None:
    entries = lock_entries(flavour)
    assert len(entries) > 20
    for requirement, hashes in entries:
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", requirement
        assert hashes, f"{requirement} has no hash: pip --require-hashes would refuse the file"


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_lock_files_satisfy_pyproject(flavour: str, python: str) -> None:
    """Every serving requirement of pyproject.toml, extras' packages included, is pinned within its
    range: a changed range without `make lock` fails here, not in the image build."""
    pins = pins_for(flavour, python)
    for requirement in serving_requirements(flavour):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} missing from requirements/serve-{flavour}.txt: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
        for extra_requirement in extra_requirements(requirement):
            # psycopg[binary,pool] → psycopg-binary, psycopg-pool; uvicorn[standard] → uvloop, …
            if extra_requirement.marker is None or extra_requirement.marker.evaluate(linux(python)):
                assert canonicalize_name(extra_requirement.name) in pins, (
                    f"{requirement}: {extra_requirement}"
                )
    assert not {"torch", "torchvision", "onnx"} & set(pins)
    other = FLAVOURS["gpu" if flavour == "cpu" else "cpu"]
    assert FLAVOURS[flavour] in pins and other not in pins, "one ONNX Runtime build, never both"


def test_linters_and_type_checker_are_pinned_exactly() -> None:
    dev = {
        canonicalize_name(Requirement(r).name): Requirement(r)
        for r in PROJECT["optional-dependencies"]["dev"]
    }
    for tool in ("ruff", "mypy"):
        (specifier,) = dev[tool].specifier
        assert specifier.operator == "==", f"{tool} must be pinned exactly in the dev extra"


def imported_distributions(package: str) -> set[str]:
    """The installed distributions providing the third-party modules `package` imports, anywhere in
    its code (imports inside functions included)."""
    modules: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    first_party = {"app", "contract", "training", "bench", "tests"}
    third_party = {m for m in modules if m not in sys.stdlib_module_names and m not in first_party}
    providers = importlib.metadata.packages_distributions()
    missing = sorted(m for m in third_party if m not in providers)
    assert not missing, f"{package} imports modules no installed distribution provides: {missing}"
    return {canonicalize_name(d) for m in third_party for d in providers[m]}


def declared(*extras: str) -> set[str]:
    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        requirements += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    names = set()
    for requirement in requirements:
        names.add(canonicalize_name(requirement.name))
        names |= {canonicalize_name(r.name) for r in extra_requirements(requirement)}
    return names


@pytest.mark.parametrize(
    ("package", "extras"),
    [("contract", ()), ("app", ("cpu", "postgres")), ("training", ("train",))],
)
def test_each_install_declares_what_its_code_imports(package: str, extras: tuple[str, ...]) -> None:
    """`pip install '.[train]'` alone must be able to export (ONNX Runtime), and the service must not
    lean on what another package happens to pull (anyio and Starlette through FastAPI)."""
    undeclared = imported_distributions(package) - declared(*extras)
    assert not undeclared, f"{package} imports {sorted(undeclared)}, not declared for {extras or 'core'}"


def test_the_train_extra_brings_the_cpu_onnx_runtime_never_the_gpu_one() -> None:
    train = {canonicalize_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["train"]}
    assert "onnxruntime" in train and "onnxruntime-gpu" not in train


def test_marker_evaluation_is_what_the_lock_reader_assumes() -> None:
    # numpy may be pinned per Python version; the reader above must pick exactly one pin for each.
    assert Marker("python_full_version >= '3.12'").evaluate({"python_full_version": "3.12.0"})

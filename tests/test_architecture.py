"""The house rules: every import is declared, and the core never names a concrete plugin."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "histobench"
# Import names whose distribution name differs and that packages_distributions() may miss.
ALIASES = {"PIL": "pillow", "sklearn": "scikit-learn", "skimage": "scikit-image", "yaml": "pyyaml"}


def _requirement_names(requirements: list[str]) -> set[str]:
    names: set[str] = set()
    for req in requirements:
        head = re.split(r"[\s<>=!~;]", req.strip(), maxsplit=1)[0]
        base, _, extras = head.partition("[")
        names.add(_normal(base))
        # "dask[distributed]" brings the distribution "distributed" too.
        names |= {_normal(e) for e in extras.rstrip("]").split(",") if e.strip()}
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def undeclared_imports(src: Path, pyproject: Path) -> dict[str, str]:
    """Top-level modules imported under ``src`` whose distribution ``pyproject`` does not list
    (as a dependency or in an extra), mapped to the first file importing them."""
    project = tomllib.loads(pyproject.read_text())["project"]
    declared = _requirement_names(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        declared |= _requirement_names(extra)
    own = {p.name for p in src.iterdir() if p.is_dir()}
    distributions = metadata.packages_distributions()
    missing: dict[str, str] = {}
    for path in sorted(src.rglob("*.py")):
        for top in sorted(_imports(ast.parse(path.read_text(encoding="utf-8")))):
            if top in sys.stdlib_module_names or top in own or top == "__future__":
                continue
            candidates = {_normal(d) for d in distributions.get(top, [])} | {_normal(top)}
            if top in ALIASES:
                candidates.add(ALIASES[top])
            if not candidates & declared:
                missing.setdefault(top, str(path.relative_to(src)))
    return missing


def test_every_import_in_src_is_a_declared_distribution() -> None:
    missing = undeclared_imports(SRC, REPO / "pyproject.toml")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_dependency_check_catches_an_undeclared_import(tmp_path: Path) -> None:
    src = tmp_path / "src" / "pkg"
    src.mkdir(parents=True)
    (src / "mod.py").write_text("import numpy\nimport pandas\nfrom scipy import stats\nimport os\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "pkg"\ndependencies = ["numpy>=1"]\n'
        '[project.optional-dependencies]\nextra = ["scipy"]\n'
    )
    assert undeclared_imports(tmp_path / "src", pyproject) == {"pandas": "pkg/mod.py"}


# The built-in plugins' names: the core (engine, statistics, plugin API, leaderboard) must work
# for any plugin, so none of these strings may appear in its code.
def _builtin_names() -> list[str]:
    from histobench.plugins.manager import get_plugins

    plugins = get_plugins()
    libraries = metadata.packages_distributions()  # "timm" names a library as well as a plugin
    names = []
    for registry in (plugins.extractors, plugins.tasks, plugins.datasets):
        names += [
            e.spec.name
            for e in registry.entries()
            if e.distribution.startswith("histobench") and e.spec.name not in libraries
        ]
    return names


def _strings(tree: ast.AST) -> list[str]:
    """The string constants of a module's code and comments-free text: docstrings excluded."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def named_plugins(path: Path, names: list[str]) -> list[str]:
    """Built-in plugin names that a module's code spells out (in a string: a lookup by name)."""
    strings = _strings(ast.parse(path.read_text(encoding="utf-8")))
    return sorted(
        {
            name
            for name in names
            for s in strings
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", s)
        }
    )


@pytest.mark.parametrize("layer", ["benchmark", "statistics", "plugins", "leaderboard"])
def test_the_core_names_no_concrete_plugin(layer: str) -> None:
    names = _builtin_names()
    assert "crc-tissue" in names and "effnet-lite0" in names  # the check has something to find
    offenders = [
        f"{path.relative_to(PACKAGE)}: {', '.join(found)}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        if (found := named_plugins(path, names))
    ]
    assert not offenders, offenders


def test_the_plugin_name_check_finds_a_lookup_by_name(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Mentions crc-tissue in prose: fine."""\nspec = get("crc-tissue")\n')
    assert named_plugins(module, ["crc-tissue", "ftx"]) == ["crc-tissue"]

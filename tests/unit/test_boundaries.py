"""Where the package's layers end: MLflow only behind the registry boundary, Airflow never in the domain
package, and the plugins folder loading nothing it should not."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

SHIPPED = ("dags", "plugins", "include", "scripts")
# Packages of the plugins folder that the plugin loader must not import file by file (plugins/.airflowignore).
PLUGIN_PACKAGES = ("retrain_operators", "retrain_ui")
REGISTRY_BOUNDARY = REPO / "include" / "retrain" / "registry"


def python_files(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (REPO / root).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def importers_of(package: str, files: list[Path]) -> list[str]:
    return [
        str(p.relative_to(REPO))
        for p in files
        if any(m == package or m.startswith(package + ".") for m in imported_modules(p))
    ]


def test_no_file_outside_the_registry_boundary_imports_mlflow():
    outside = [p for p in python_files(*SHIPPED) if REGISTRY_BOUNDARY not in p.parents]
    assert importers_of("mlflow", outside) == []
    # The check sees imports: the boundary itself is found by it.
    assert importers_of("mlflow", python_files("include/retrain/registry"))


def test_the_domain_package_never_imports_airflow():
    assert importers_of("airflow", python_files("include/retrain")) == []


LOAD_PLUGINS = """
import json, sys
from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory
before = set(sys.modules)
plugins, errors = _load_plugins_from_plugin_directory(sys.argv[1], ignore_file_syntax="glob")
print(json.dumps({"plugins": [p.name for p in plugins], "errors": errors, "new": sorted(set(sys.modules) - before)}))
"""


def test_loading_the_plugins_folder_logs_no_import_error_and_shadows_no_package():
    """Airflow imports each file of the plugins folder as a top-level module named after the file: an
    operator module named `kubernetes.py` hid the Kubernetes client ("'kubernetes' is not a package"),
    and every operator module ran twice under two names. Only plugin files may be loaded that way."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD_PLUGINS, str(REPO / "plugins")],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO / "include")])},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    for package in PLUGIN_PACKAGES:
        package_modules = {p.stem for p in (REPO / "plugins" / package).glob("*.py")}
        assert package_modules & set(result["new"]) == set(), package
    # The one plugin file is loaded; the fleet app behind it is not built outside the API server.
    assert result["plugins"] == ["retrain"]
    assert "retrain_ui.app" not in result["new"] and "fastapi" not in result["new"]


@pytest.mark.parametrize("module", ["kubernetes", "common", "base", "hooks"])
def test_no_plugin_module_is_named_like_a_package_it_could_hide(module):
    assert not (REPO / "plugins" / f"{module}.py").exists()


def test_test_modules_have_unique_basenames():
    """The test folders are not packages: pytest imports each module by its basename, and a second module of
    the same name in another layer stops the whole run at collection ("import file mismatch")."""
    names = [path.name for path in (REPO / "tests").rglob("test_*.py")]
    assert sorted(name for name in set(names) if names.count(name) > 1) == []

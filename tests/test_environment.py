"""pyproject.toml and environment.yml declare the same packages (conda = pip users)."""

from __future__ import annotations

import re
import tomllib

import yaml

from recsys_kit.paths import REPO_ROOT

CONDA_NAMES = {"torch": "pytorch"}  # pip name -> conda package name
CONDA_ONLY = {"python", "pip", "cpuonly"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, f"cannot parse requirement {req!r}"
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    reqs = meta["dependencies"] + extras["instructor"] + extras["dev"] + extras["cluster"]
    return dict(_split(r) for r in reqs)


def _environment() -> dict[str, str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    found: dict[str, str] = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            name, spec = _split(str(item))
            found[name] = spec
    return found


def test_environment_yml_matches_pyproject():
    pip = _pyproject()
    conda = _environment()
    missing = {n for n in pip if CONDA_NAMES.get(n, n) not in conda}
    extra = {
        n for n in conda if n not in CONDA_ONLY and n not in {CONDA_NAMES.get(p, p) for p in pip}
    }
    assert not missing, f"in pyproject.toml but not environment.yml: {sorted(missing)}"
    assert not extra, f"in environment.yml but not pyproject.toml: {sorted(extra)}"
    differ = {
        n: (spec, conda[CONDA_NAMES.get(n, n)])
        for n, spec in pip.items()
        if conda[CONDA_NAMES.get(n, n)] != spec
    }
    assert not differ, f"version specs differ (pyproject, environment.yml): {differ}"


def test_torch_is_the_local_cpu_wheel_on_course_machines():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "TORCH_SPEC ?= torch==2.13.0" in makefile

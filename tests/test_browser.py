"""Real-browser tests: JupyterLab and the formgrader in headless Chromium, driven by Selenium.

* the search explorer renders and answers queries (a copy of ``notebooks/search_explorer.ipynb``:
  Run All from the *Run* menu, wait for the query box, type queries, check the result cards'
  departments and that no slider label is cut off);
* a student opens Module 0 from the student export, in the export's own environment installed
  by its Makefile (``student_env`` in conftest.py), and its first code cell loads the data;
* an instructor opens the formgrader on a freshly graded course (no error banner) and scores a
  written answer, which lands in the gradebook and the report.

Each starts JupyterLab on a free localhost port (token, throw-away root/config/settings folders,
no browser of its own). Needs (skipped with the reason otherwise): Debian's ``chromium`` and
``chromium-driver`` (``apt-get install -y chromium chromium-driver``) and ``pip install
selenium``. Paths can be overridden with ``$RECSYS_CHROMIUM`` / ``$RECSYS_CHROMEDRIVER``.
Screenshots go to pytest's ``tmp_path`` (the path is printed; ``-s`` shows it) and, when
``$RECSYS_SCREENSHOT_DIR`` is set, there too (a CI artifact); ``failure.png`` on failure.

Run them with ``pytest -m browser tests/test_browser.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "search_explorer.ipynb"
#: Longest single wait (server start, Lab load, explorer build, one search), in seconds.
WAIT_S = float(os.environ.get("RECSYS_BROWSER_WAIT", "120"))
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",  # /dev/shm is tiny in containers
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
)


def _find(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env] if Path(os.environ[env]).is_file() else None
    return next((p for n in names if (p := shutil.which(n))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 40) -> str:
    if not path.is_file():
        return f"({path.name} missing)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture
def browser_tools() -> tuple[Any, str, str]:
    """Selenium's webdriver module and the chromium / chromedriver paths, or a skip."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    chromium = _find("RECSYS_CHROMIUM", "chromium", "chromium-browser")
    driver = _find("RECSYS_CHROMEDRIVER", "chromedriver")
    if chromium is None:
        pytest.skip("chromium not found (apt-get install -y chromium, or set $RECSYS_CHROMIUM)")
    if driver is None:
        pytest.skip(
            "chromedriver not found (apt-get install -y chromium-driver, or set "
            "$RECSYS_CHROMEDRIVER)"
        )
    return webdriver, chromium, driver


@contextlib.contextmanager
def lab_server(
    tmp_path: Path, root: Path, python: str | Path = sys.executable, cwd: Path | None = None
) -> Iterator[tuple[str, str, Path]]:
    """A JupyterLab server over ``root``, started by ``python`` (its environment's kernels).

    Yields:
        ``(base_url, token, server_log_path)``; the server and its kernels are stopped afterwards.
    """
    port, token = _free_port(), os.urandom(16).hex()
    env = {k: v for k, v in os.environ.items() if k != "RECSYS_COURSE_ROOT"}
    # Fresh Jupyter config/runtime folders: no user settings, workspaces or extensions config
    # leak in (system-wide data such as the widgets lab extension in sys.prefix still loads).
    for var, sub in (("JUPYTER_CONFIG_DIR", "jconfig"), ("JUPYTER_RUNTIME_DIR", "jruntime"),
                     ("IPYTHONDIR", "ipython")):  # fmt: skip
        env[var] = str(tmp_path / sub)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    # No "get notified about Jupyter news?" toast over the page (and no request for news).
    notify = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True, exist_ok=True)
    (notify / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    # Start the notebook's own kernel without the "Select Kernel" dialog that Lab otherwise
    # shows when the page races the session's start-up.
    tracker = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"autoStartDefaultKernel": true}')
    log = tmp_path / "jupyter.log"
    cmd = [
        str(python), "-m", "jupyterlab",
        "--no-browser", "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI containers run as root; Jupyter refuses that unless told
        cmd.append("--ServerApp.allow_root=True")
    with open(log, "wb") as out:
        # A session of its own, so the server and the kernels it spawned stop together.
        proc = subprocess.Popen(
            cmd, cwd=cwd or root, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab not up after {WAIT_S:.0f} s:\n{_tail(log)}")
            time.sleep(0.5)
        yield base, token, log
    finally:
        _stop(proc)


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server over a temporary root holding the demo notebook.

    Yields:
        ``(notebook_url, server_log_path)``; the server and its kernels are stopped afterwards.
    """
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    with lab_server(tmp_path, root) as (base, token, log):
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", log


@contextlib.contextmanager
def chrome(browser_tools: tuple[Any, str, str], tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by Selenium (quit afterwards)."""
    webdriver, chromium, chromedriver = browser_tools
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = chromium
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chrome-profile'}")
    service = Service(chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (kernels included), SIGKILL it if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftover kernels, if any
    proc.wait(timeout=15)


def _wait(driver: Any, what: str, cond: Callable[[Any], Any], timeout: float = WAIT_S) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    # The widget re-renders its cards while we read them: a stale element means "look again".
    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.25, ignored_exceptions=(StaleElementReferenceException,)
    )
    try:
        return wait.until(cond)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None


def _css(selector: str) -> Callable[[Any], list[Any]]:
    """A wait condition: the (non-empty) list of elements matching ``selector``."""
    from selenium.webdriver.common.by import By

    return lambda d: d.find_elements(By.CSS_SELECTOR, selector)


def _results(driver: Any) -> tuple[str, list[str]]:
    """(query shown in the status line, department of each result card, in order)."""
    from selenium.webdriver.common.by import By

    status = driver.find_elements(By.CSS_SELECTOR, ".recsys-explorer .recsys-status-query")
    depts = driver.find_elements(By.CSS_SELECTOR, ".recsys-result .recsys-department")
    return (status[0].text if status else ""), [d.text.strip() for d in depts]


def _search(driver: Any, query: str, department: str, n_top: int = 3) -> list[str]:
    """Type ``query`` + Enter in the explorer; wait until the top ``n_top`` are ``department``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, ".recsys-explorer .recsys-query input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(query, Keys.ENTER)  # continuous_update=False: Enter sends the value

    def answered(d: Any) -> list[str] | None:
        shown, depts = _results(d)
        ok = shown == query and len(depts) >= n_top and depts[:n_top] == [department] * n_top
        return depts if ok else None

    try:
        return _wait(driver, f"{department} results for {query!r}", answered)
    except AssertionError as err:
        shown, depts = _wait(driver, "the result cards", _results)
        raise AssertionError(f"{err}; status shows {shown!r}, cards {depts}") from None


def _wait_kernel_settled(driver: Any, hold: float = 3.0) -> None:
    """Wait until the toolbar's kernel indicator has said "idle" for ``hold`` seconds.

    On a fresh page it goes initializing -> idle -> connecting -> idle: a Run All issued during
    the first, premature "idle" is silently dropped (seen with JupyterLab 4.6), so one
    "idle" is not enough.
    """
    indicator = ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']"
    idle = _css(indicator)
    since: list[float] = []

    def settled(d: Any) -> bool:
        if not idle(d):
            since.clear()
        elif not since:
            since.append(time.monotonic())
        return bool(since) and time.monotonic() - since[0] >= hold

    _wait(driver, f"the kernel to stay idle for {hold:.0f} s", settled)


def _prompts(driver: Any) -> list[str]:
    """The input prompts of the code cells: ``[ ]:`` not run, ``[*]:`` running, ``[3]:`` done."""
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt")
    return [c.text.strip() for c in cells]


def _run_all_cells(driver: Any, tries: int = 3) -> None:
    """Run > Run All Cells (found by the labels a student sees) and wait until every cell ran.

    Should a click still race the kernel's connection, it is dropped (prompts stay ``[ ]:``)
    or turns into a "Select Kernel" dialog: accept the dialog's default (the notebook's
    Python 3 kernel) and click again, at most ``tries`` times.
    """
    from selenium.webdriver.common.by import By

    menu = "//li[contains(@class,'lm-MenuBar-item')][.//div[normalize-space()='Run']]"
    item = "//li[contains(@class,'lm-Menu-item')][.//div[normalize-space()='Run All Cells']]"

    def started_or_dialog(d: Any) -> str | None:
        if d.find_elements(By.CSS_SELECTOR, ".jp-Dialog"):
            return "dialog"
        prompts = _prompts(d)
        return "started" if prompts and prompts[0] not in ("", "[ ]:") else None

    def no_dialog(d: Any) -> bool:
        return not d.find_elements(By.CSS_SELECTOR, ".jp-Dialog")

    def accept_dialog(d: Any) -> None:
        for button in d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"):
            button.click()

    for _ in range(tries):
        _wait(driver, "the Run menu", lambda d: d.find_elements(By.XPATH, menu))[0].click()
        _wait(driver, "Run All Cells", lambda d: d.find_elements(By.XPATH, item))[0].click()
        try:
            state = _wait(driver, "the first cell to start", started_or_dialog, timeout=15)
        except AssertionError:
            continue  # the click was dropped: the kernel was not connected yet
        if state == "dialog":
            accept_dialog(driver)
            _wait(driver, "the dialog to close", no_dialog, timeout=30)
        if started_or_dialog(driver) == "started":
            break
    else:
        raise AssertionError(f"Run All Cells did not start; prompts {_prompts(driver)}")

    # Every code cell numbered: the whole notebook ran (building the explorer encodes 300
    # product titles on the first run; the vectors are cached after that).
    def all_done(d: Any) -> bool:
        accept_dialog(d)  # a late "Select Kernel" dialog would hold the remaining cells
        prompts = _prompts(d)
        return bool(prompts) and all(p[1:-2].isdigit() for p in prompts)

    try:
        _wait(driver, "every cell to run", all_done)
    except AssertionError as err:
        raise AssertionError(f"{err}; prompts {_prompts(driver)}") from None


def _screenshot(driver: Any, path: Path) -> Path:
    driver.save_screenshot(str(path))
    if os.environ.get("RECSYS_SCREENSHOT_DIR"):
        extra = Path(os.environ["RECSYS_SCREENSHOT_DIR"])
        extra.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, extra / path.name)
    print(f"screenshot: {path}")
    return path


@contextlib.contextmanager
def evidence(driver: Any, tmp_path: Path, server_log: Path) -> Iterator[None]:
    """On failure: a screenshot and the tail of the server's log."""
    try:
        yield
    except BaseException:
        shot = _screenshot(driver, tmp_path / "failure.png")
        print(f"failure screenshot: {shot}\n--- jupyter log ---\n{_tail(server_log)}")
        raise


def _cut_labels(driver: Any, scope: str) -> list[str]:
    """Widget labels under ``scope`` whose text does not fit their box (shown cut off)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' .widget-label'))"
        ".filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.textContent);",
        scope,
    )


def test_explorer_answers_queries_in_jupyterlab(browser_tools, jupyter_lab, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, server_log = jupyter_lab
    with chrome(browser_tools, tmp_path) as driver, evidence(driver, tmp_path, server_log):
        driver.get(url)
        _wait(driver, "the notebook's first cell", _css(".jp-NotebookPanel .jp-Cell"))
        _wait_kernel_settled(driver)
        _run_all_cells(driver)
        _wait(driver, "the explorer's query box", _css(".recsys-explorer .recsys-query input"))
        # the sliders' labels ("popularity weight") are shown in full
        assert not _cut_labels(driver, ".recsys-explorer")

        beauty = _search(driver, "美妆推荐", "beauty")
        boots = _search(driver, "black ankle boots", "footwear")
        assert len(boots) == 10, boots  # the default k

        # Switching the ranker re-runs the search without pressing Enter again.
        ranker = Select(driver.find_element(By.CSS_SELECTOR, ".recsys-ranker select"))
        ranker.select_by_visible_text("BM25 (lexical)")  # options carry the labels
        _wait(
            driver,
            "the BM25 status line",
            lambda d: "BM25" in d.find_element(By.CSS_SELECTOR, ".recsys-status").text,
        )

        def first_card_ready(d: Any) -> Any:
            # a footwear card with a picture (or its placeholder) and the contribution table
            cards = d.find_elements(By.CSS_SELECTOR, ".recsys-result")
            if not cards:
                return None
            dept = cards[0].find_elements(By.CSS_SELECTOR, ".recsys-department")
            ok = (
                dept
                and dept[0].text.strip() == "footwear"
                and cards[0].find_elements(By.CSS_SELECTOR, "img, .recsys-no-image")
                and cards[0].find_elements(By.CSS_SELECTOR, ".recsys-contrib table")
            )
            return cards[0] if ok else None

        _wait(driver, "a complete first BM25 card (footwear)", first_card_ready)

        explorer = driver.find_element(By.CSS_SELECTOR, ".recsys-explorer")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", explorer)
        _screenshot(driver, tmp_path / "explorer.png")
        print(f"beauty query departments: {beauty}")


def test_student_opens_module_0_from_the_export(browser_tools, student_env, tmp_path):
    """The student's first step: the export's own environment (installed by its Makefile, see
    conftest.py) opens Module 0 in JupyterLab, and its first code cell loads the data."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    dest, bin_dir, _ = student_env
    first = "course/00_orientation/00_orientation.ipynb"
    with (
        lab_server(tmp_path, dest, python=bin_dir / "python") as (base, token, log),
        chrome(browser_tools, tmp_path) as driver,
        evidence(driver, tmp_path, log),
    ):
        driver.get(f"{base}/lab/tree/{first}?token={token}")
        title = _wait(driver, "Module 0's title", _css(".jp-NotebookPanel .jp-RenderedMarkdown h1"))
        assert "Module 0" in title[0].text
        _wait_kernel_settled(driver)
        code = _wait(driver, "the first code cell", _css(".jp-NotebookPanel .jp-CodeCell"))[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", code)
        code.find_element(By.CSS_SELECTOR, ".jp-InputArea-editor").click()
        code.send_keys(Keys.SHIFT, Keys.ENTER)

        def printed(d: Any) -> str | None:
            cell = d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell")[0]
            text = " ".join(o.text for o in cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea"))
            return text if "products" in text or "Error" in text else None

        out = _wait(driver, "the first cell's output", printed)
        assert re.search(r"\d+ products, \d+ queries", out), out
        _screenshot(driver, tmp_path / "student_module0.png")


@pytest.fixture
def graded_course(tmp_path: Path) -> tuple[Path, int]:
    """A copy of the course (repository layout) where the sample ``perfect`` was autograded:
    (repository folder, id of the submitted notebook in the gradebook)."""
    from coursecopy import A, copy_course, sample_text, submit
    from nbgrader.api import Gradebook

    from recsys_grader.autograde import autograde
    from recsys_grader.layout import CourseLayout
    from recsys_grader.release import release
    from recsys_grader.roster import Student, write_roster
    from recsys_grader.sandbox import Limits, sandbox_support

    repo = tmp_path / "repo"
    root = copy_course(repo)
    shutil.copy(REPO / "nbgrader_config.py", repo / "nbgrader_config.py")
    release(root=str(root))
    write_roster(CourseLayout.load(root), [Student("perfect", "Pat", "Perfect")])
    submit(root, "perfect", sample_text("perfect"))
    limits = Limits(cell_timeout=30, notebook_timeout=300)
    insecure = not sandbox_support()[0]  # the course's own sample: safe without a sandbox
    (result,) = autograde([A], ["perfect"], limits, 1, str(root), lambda _: None, insecure)
    assert result.status == "needs_manual", result
    layout = CourseLayout.load(root)
    with Gradebook(layout.db_url, layout.course_id) as gb:
        return repo, gb.find_submission_notebook(A, A, "perfect").id


def test_instructor_grades_a_written_answer_in_the_formgrader(
    browser_tools, graded_course, tmp_path
):
    """The formgrader on a course fresh from `recsys-course`: no error banner, and a TA's score
    for a written answer lands in the gradebook (the report then counts it)."""
    from nbgrader.api import Gradebook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from recsys_grader.layout import CourseLayout

    repo, submission_id = graded_course
    layout = CourseLayout.load(repo / "grading")
    with (
        lab_server(tmp_path / "lab", repo, cwd=repo) as (base, token, log),
        chrome(browser_tools, tmp_path) as driver,
        evidence(driver, tmp_path, log),
    ):
        driver.get(f"{base}/formgrader/manage_assignments?token={token}")
        row = "//tr[.//td[contains(normalize-space(), '00_orientation')]]"
        _wait(driver, "the assignment's row", lambda d: d.find_elements(By.XPATH, row))
        banners = driver.find_elements(By.CSS_SELECTOR, ".alert-warning, .alert-danger")
        assert not [b.text for b in banners if b.is_displayed()], [b.text for b in banners]

        driver.get(f"{base}/formgrader/submissions/{submission_id}/?token={token}")
        box = _wait(driver, "the written answer's score box",
                    _css("input.score[id='00_metric_answer']"))[0]  # fmt: skip
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
        box.click()
        box.send_keys("2", Keys.TAB)  # the formgrader saves on change

        def saved(_d: Any) -> bool:
            with Gradebook(layout.db_url, layout.course_id) as gb:
                grade = gb.find_grade("00_metric_answer", "00_orientation", "00_orientation",
                                      "perfect")  # fmt: skip
                return grade.manual_score == 2.0

        _wait(driver, "the manual score in the gradebook", saved)
        _screenshot(driver, tmp_path / "formgrader.png")
    from recsys_grader.report import collect

    (row_,) = [r for r in collect(layout) if r.student == "perfect"]
    assert (row_.status, row_.score) == ("graded", 13.0)

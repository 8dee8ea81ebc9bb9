"""Issue 12, item 2: what a student's notebook shows never runs in a grader's or TA's browser.

A hostile submission puts script in HTML outputs, JavaScript outputs, markdown outputs, SVG,
image metadata, a markdown cell, a raw cell and its written answer. The autograded notebook
(what the formgrader shows), the formgrader's own rendering, the feedback page and the report
must carry none of it live; a headless Chromium opens the feedback page and the formgrader page
and proves that nothing ran (the payloads would set ``document.title`` and add an element with
id ``pwned``), against a control page rendered without the sanitiser, where they do run.
"""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from recsys_grader import safe_html
from recsys_grader.feedback import feedback
from recsys_grader.layout import CourseLayout
from recsys_grader.report import report

from .payloads import M0, MARK

STUDENT = "a_hostile_html"


class _Live(HTMLParser):
    """What of a page can run: script bodies, event handlers, javascript: URLs, frames."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        if tag in ("iframe", "object", "embed", "frame", "form", "base", "meta"):
            self.found.append(f"<{tag} {attrs}>") if tag != "meta" or MARK in str(attrs) else None
        self._script = tag == "script"
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") or value.startswith(("javascript:", "vbscript:")):
                self.found.append(f"<{tag} {name}={value[:60]}>")
            svg = value.startswith("data:") and "svg" in value
            if name in ("src", "href") and svg and tag != "img":
                self.found.append(f"<{tag} {name}=data:svg>")

    def handle_endtag(self, tag):
        self._script = False

    def handle_data(self, data):
        if self._script and MARK in data:
            self.found.append(f"<script>{data[:80]}")


def live_parts(html: str) -> list[str]:
    """Script, handlers, javascript: URLs and frames of the student's in a page."""
    parser = _Live()
    parser.feed(html)
    return [f for f in parser.found if MARK in f or "javascript" in f or "<iframe" in f]


# --- the sanitiser itself ----------------------------------------------------------------------


def test_clean_removes_every_way_to_run_script():
    dirty = (
        "<script>alert(1)</script><img src=x onerror=alert(1)><a href='javascript:alert(1)'>a</a>"
        "<a href=' JaVaScRiPt:alert(1)'>b</a><iframe src='javascript:alert(1)'></iframe>"
        "<svg onload=alert(1)><circle/></svg><style>*{display:none}</style><form><input></form>"
        "<a href='/api/contents'>relative</a><img src='https://tracker.example/p.png'>"
        "<math><mi xlink:href='javascript:alert(1)'>x</mi></math><object data=x></object>"
        "<b style='position:fixed'>kept</b>"
        "<table class='dataframe evil'><tr><td>1</td></tr></table>"
    )
    out = safe_html.clean(dirty)
    assert live_parts(out.replace("alert", MARK)) == []
    for gone in ("<script", "onerror", "javascript", "<iframe", "<svg", "<style", "<form", "/api/",
                 "tracker.example", "<object", "style="):  # fmt: skip
        assert gone not in out.lower(), (gone, out)
    assert "<b>kept</b>" in out and 'class="dataframe"' in out and "evil" not in out


def test_outputs_keep_what_is_safe_and_drop_the_rest():
    png = "iVBORw0KGgo="

    def shown(data, metadata=None):
        return {"output_type": "display_data", "data": data, "metadata": metadata or {}}

    outputs = [
        shown({"application/javascript": "alert(1)"}),
        shown(
            {"text/html": "<b onclick=x>b</b>", "text/plain": "b"}, {"text/html": {"isolated": 1}}
        ),
        shown({"image/png": png}, {"image/png": {"width": 3}}),
        shown({"image/png": '" onerror="x'}),
        shown({"text/markdown": "[a](javascript:x) **b**"}),
        shown({"image/svg+xml": "<svg onload=x></svg>"}),
        shown({"application/vnd.jupyter.widget-view+json": {}}),
        {"output_type": "stream", "name": "evil", "text": "<script>x</script>"},
    ]
    safe = [safe_html.safe_output(nbformat.from_dict(o)) for o in outputs]
    assert safe[0].data == {"text/plain": safe_html._REMOVED}
    assert safe[1].data == {"text/html": "<b>b</b>", "text/plain": "b"} and safe[1].metadata == {}
    assert safe[2].data == {"image/png": png} and safe[2].metadata == {"image/png": {"width": 3}}
    assert "image/png" not in safe[3].data
    assert safe[4].data["text/html"].strip() == (
        '<p><a rel="noopener noreferrer nofollow">a</a> <strong>b</strong></p>'
    )
    assert (
        safe[5].data["text/html"].startswith('<img alt="SVG image" src="data:image/svg+xml;base64,')
    )
    assert safe[6].data == {"text/plain": safe_html._REMOVED}
    assert safe[7].name == "stdout" and safe[7].text == "<script>x</script>"  # escaped when shown


def test_markdown_cells_become_one_inert_html_block():
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    source = (
        "# Title\n\n*it* <script>x()</script>\n\n```\n<b>code</b>\n\nline\n```\n\n[l](javascript:x)"
    )
    block = safe_html.safe_markdown(source)
    assert "\n" not in block and "<script" not in block and "javascript" not in block
    rendered = markdown2html_mistune(block)
    assert rendered.strip() == block  # passed through unchanged by the markdown renderer
    assert "<em>it</em>" in block and "&lt;b&gt;code&lt;/b&gt;&#10;&#10;line" in block


# --- through the pipeline ------------------------------------------------------------------------


@pytest.mark.notebooks
def test_the_autograded_notebook_stores_no_live_html(m0):
    nb = m0.notebook(STUDENT)
    assert "widgets" not in nb.metadata
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            assert set(data) <= set(safe_html.KEPT_MIMETYPES), data.keys()
            assert live_parts(str(data.get("text/html", ""))) == []
            assert set(out.get("metadata", {})) <= {"image/png", "image/jpeg", "image/gif"} | {
                "recsys_course_instructor_only"
            }
    shown = "".join(str(o.get("data", {})) for c in nb.cells for o in c.get("outputs", []))
    assert f"{MARK}-bold" in shown and f"{MARK}-md" in shown, "the harmless parts are kept"
    # its written answer (hostile too) awaits a TA: needs_manual, no automatic point
    assert m0.results[STUDENT].score == 0 and m0.results[STUDENT].status == "needs_manual"


def _formgrader_page(root: Path, student: str) -> str:
    """The page the formgrader renders for a submission (its exporter, the course's config)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers

    config = CourseLayout.load(root).nbgrader_config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {
        "assignment_id": M0,
        "notebook_id": M0,
        "submission_id": "s",
        "index": 0,
        "total": 1,
        "base_url": "",
        "student": student,
        "last_name": "",
        "first_name": "",
        "notebook_path": "x",
    }
    path = root / "autograded" / student / M0 / f"{M0}.ipynb"
    html, _ = HTMLExporter(config=config).from_filename(str(path), resources=resources)
    return html


@pytest.fixture(scope="module")
def pages(m0, tmp_path_factory) -> dict[str, Path]:
    """The feedback page, the formgrader page and the report; plus an unsanitised control."""
    out = tmp_path_factory.mktemp("pages")
    outcomes = feedback([M0], [STUDENT], root=str(m0.root))
    assert outcomes and outcomes[0].path is not None, outcomes
    pages = {"feedback": outcomes[0].path, "formgrader": out / "formgrader.html"}
    pages["formgrader"].write_text(_formgrader_page(m0.root, STUDENT), encoding="utf-8")
    report(str(m0.root))
    pages["report"] = m0.root / "reports" / "report.html"
    # control: the same submission's markdown cell, rendered by nbconvert without the cleaner
    from nbconvert.exporters import HTMLExporter

    raw = nbformat.read(m0.root / "submitted" / STUDENT / M0 / f"{M0}.ipynb", as_version=4)
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(raw)
    pages["control"] = out / "control.html"
    pages["control"].write_text(html, encoding="utf-8")
    return pages


@pytest.mark.notebooks
@pytest.mark.parametrize("page", ["feedback", "formgrader", "report"])
def test_pages_hold_no_live_part_of_the_students(pages, page):
    html = pages[page].read_text(encoding="utf-8")
    assert live_parts(html) == [], live_parts(html)[:5]
    if page != "report":
        assert f"{MARK}-bold" in html, "the student's harmless output is still shown"
    assert live_parts(pages["control"].read_text(encoding="utf-8")), "control: the checker sees"


def _chromium():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    chromium = os.environ.get("RECSYS_CHROMIUM") or shutil.which("chromium")
    driver = os.environ.get("RECSYS_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium / chromedriver not found (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_page_load_timeout(60)
    return browser


@pytest.mark.browser
@pytest.mark.notebooks
def test_nothing_runs_when_a_browser_opens_the_pages(pages):
    browser = _chromium()
    try:
        seen = {}
        for name in ("control", "feedback", "formgrader", "report"):
            browser.get(pages[name].as_uri())
            browser.execute_script("return document.readyState")
            seen[name] = browser.execute_script(
                "return [document.title, !!document.getElementById('pwned'),"
                " document.querySelectorAll('[id=pwned]').length]"
            )
        assert MARK in seen["control"][0] or seen["control"][1], "control: the payload runs"
        for name in ("feedback", "formgrader", "report"):
            title, pwned, count = seen[name]
            assert MARK not in title and not pwned and count == 0, (name, seen[name])
    finally:
        browser.quit()

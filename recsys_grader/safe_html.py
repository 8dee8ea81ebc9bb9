"""What a student's notebook shows, made safe to open: outputs, markdown and raw cells (nh3).

A submission controls its cells' outputs (``display(HTML(...))``, ``Javascript``, SVG, markdown,
widgets, image metadata), its markdown cells and its raw cells. Shown unfiltered, the feedback
page, the formgrader (which runs with the instructor's Jupyter session) or the grade report
would run the student's script. Everything student-controlled goes through
`nh3 <https://nh3.readthedocs.io>`_ (the Ammonia sanitiser):

* HTML keeps Ammonia's default tags and attributes: no script, style, iframe, form, SVG or
  event handler; links only to ``http(s)``, ``mailto`` or ``#fragments`` (no ``javascript:``,
  no relative URL that would reach the Jupyter server), images only as ``data:image/...``
  (nothing is fetched when the page opens), tables keep pandas' ``dataframe`` class;
* outputs keep only plain text, HTML (cleaned), PNG/JPEG/GIF (valid base64), markdown and SVG
  (turned into cleaned HTML and a ``data:`` image); JavaScript, widgets, LaTeX and the rest are
  dropped, and output metadata keeps only numeric image sizes;
* markdown cells are rendered as nbconvert renders them, cleaned, and stored back as one HTML
  block that every markdown renderer passes through unchanged; raw cells are cleaned.

:func:`sanitize_outputs` cleans the outputs a sandbox sent back before anything stores them
(the autograded notebook); :class:`SafeNotebook` (an nbconvert preprocessor, configured for the
formgrader and the feedback in ``grading/nbgrader_config.py``) cleans every cell when a page is
rendered. :func:`clean` serves the grade report.

Example:
    >>> clean('<b onclick="x()">bold</b><script>alert(1)</script>')
    '<b>bold</b>'
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import nbformat
import nh3
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode

#: Output types kept (after cleaning); markdown and SVG become HTML, everything else is dropped.
KEPT_MIMETYPES = ("text/plain", "text/html", "image/png", "image/jpeg", "image/gif")
_IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z")
_LINK = re.compile(r"(https?://|mailto:|#)", re.IGNORECASE)
_REMOVED = "[output removed by the grader: it could not be shown safely]"


def _attribute(element: str, attribute: str, value: str) -> str | None:
    """Ammonia's attribute filter: images from data only, links to the web or the page."""
    if attribute == "src":
        return value if element == "img" and _IMAGE_DATA.match(value) else None
    if attribute == "href":
        return value if _LINK.match(value.strip()) else None
    if attribute in ("cite", "longdesc"):
        return None
    return value


#: Classes kept: pandas tables and nbconvert's heading anchors (hidden by the page's CSS).
CLASSES = {"table": {"dataframe"}, "a": {"anchor-link"}}


def clean(html: str, classes: dict[str, set[str]] | None = None) -> str:
    """Sanitise an HTML fragment written by a student.

    Args:
        html: the fragment.
        classes: CSS classes kept per tag (default :data:`CLASSES`).

    Returns:
        The fragment without script, style, frames, forms, event handlers, foreign URLs.
    """
    attributes = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}
    for heading in ("h1", "h2", "h3", "h4", "h5", "h6"):
        attributes[heading] = {"id"}  # prefixed: never the id of one of the page's own nodes
    return nh3.clean(
        str(html),
        attributes=attributes,
        attribute_filter=_attribute,
        url_schemes={"http", "https", "mailto", "data"},
        allowed_classes=CLASSES if classes is None else classes,
        link_rel="noopener noreferrer nofollow",
        id_prefix="student-",
    )


def markdown_html(source: str) -> str:
    """Markdown rendered as nbconvert renders it (raw HTML passes through: clean it after)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(str(source))


def safe_markdown(source: str) -> str:
    """A markdown cell's source rewritten as one cleaned HTML block.

    The block is a single line (newlines become ``&#10;``, the same text to an HTML parser), so
    every CommonMark renderer takes it as one HTML block and adds nothing to it.
    """
    html = clean(markdown_html(source)).strip().replace("\r", "").replace("\n", "&#10;")
    return f'<div class="recsys-student-markdown">{html}</div>' if html else ""


def _base64(text: Any) -> str | None:
    if isinstance(text, list):
        text = "".join(map(str, text))
    if not isinstance(text, str):
        return None
    compact = re.sub(r"\s+", "", text)
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None
    return compact


def _text(value: Any) -> str:
    return "".join(map(str, value)) if isinstance(value, list) else str(value)


def _image_size(meta: Any) -> dict:
    if not isinstance(meta, dict):
        return {}
    return {k: int(v) for k, v in meta.items() if k in ("width", "height") and type(v) is int}


def safe_output(output: Any, keep: tuple[str, ...] = ()) -> NotebookNode | None:
    """A cleaned copy of one output, or None when nothing of it can be shown.

    Args:
        output: an nbformat output (as the kernel, i.e. the student, made it).
        keep: output-metadata flags to keep (the grader's own, e.g. instructor-only).
    """
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return nbformat.v4.new_output("stream", name=name, text=_text(output.get("text", "")))
    if kind == "error":
        trace = output.get("traceback")
        return nbformat.v4.new_output(
            "error",
            ename=_text(output.get("ename", ""))[:300],
            evalue=_text(output.get("evalue", "")),
            traceback=[_text(t) for t in trace] if isinstance(trace, list) else [],
        )
    if kind not in ("display_data", "execute_result"):
        return None
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    meta = output.get("metadata") if isinstance(output.get("metadata"), dict) else {}
    safe: dict[str, str] = {}
    if "text/plain" in data:
        safe["text/plain"] = _text(data["text/plain"])
    if "text/html" in data:
        safe["text/html"] = clean(_text(data["text/html"]))
    elif "text/markdown" in data:
        safe["text/html"] = clean(markdown_html(_text(data["text/markdown"])))
    elif "image/svg+xml" in data:  # an SVG inside <img> runs no script and loads nothing
        svg = base64.b64encode(_text(data["image/svg+xml"]).encode()).decode()
        safe["text/html"] = clean(f'<img alt="SVG image" src="data:image/svg+xml;base64,{svg}">')
    sizes = {}
    for mime in ("image/png", "image/jpeg", "image/gif"):
        encoded = _base64(data.get(mime))
        if encoded is not None:
            safe[mime] = encoded
            sizes[mime] = _image_size(meta.get(mime))
    if not safe:
        safe["text/plain"] = _REMOVED
    metadata = {m: s for m, s in sizes.items() if s}
    metadata.update({flag: True for flag in keep if meta.get(flag) is True})
    if kind == "execute_result":
        count = output.get("execution_count")
        return nbformat.v4.new_output(
            kind,
            data=safe,
            metadata=metadata,
            execution_count=count if type(count) is int else None,
        )
    return nbformat.v4.new_output(kind, data=safe, metadata=metadata)


def sanitize_outputs(nb: NotebookNode, keep: tuple[str, ...] = ()) -> NotebookNode:
    """Clean every code cell's outputs in place (and drop the widget state the kernel left).

    Args:
        nb: a notebook whose outputs a student's kernel produced.
        keep: output-metadata flags to keep.

    Returns:
        ``nb``.
    """
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            outputs = [safe_output(o, keep) for o in cell.get("outputs", [])]
            cell.outputs = [o for o in outputs if o is not None]
    return nb


def _inline_attachments(cell: NotebookNode) -> str:
    """A markdown cell's source with its attached images as ``data:`` URLs."""
    source = _text(cell.get("source", ""))
    attachments = cell.get("attachments")
    for name, bundle in (attachments if isinstance(attachments, dict) else {}).items():
        for mime in ("image/png", "image/jpeg", "image/gif"):
            data = _base64(bundle.get(mime)) if isinstance(bundle, dict) else None
            if data is not None:
                source = source.replace(f"attachment:{name}", f"data:{mime};base64,{data}")
                break
    return source


class SafeNotebook(Preprocessor):
    """nbconvert preprocessor: every cell of a student's notebook made safe to render (the
    formgrader, feedback pages). Grading metadata (nbgrader) is kept: a written answer stays a
    markdown cell the formgrader can score."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        """Clean outputs, markdown and raw cells."""
        from recsys_grader.judge import INSTRUCTOR_ONLY

        sanitize_outputs(nb, keep=(INSTRUCTOR_ONLY,))
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = safe_markdown(_inline_attachments(cell))
                cell.pop("attachments", None)
            elif cell.cell_type == "raw":
                cell.source = clean(cell.source)
        return nb, resources

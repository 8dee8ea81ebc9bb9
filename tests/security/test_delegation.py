"""Issue 11: the "implement it yourself" check cannot be evaded.

The static reading of the student's cells (:mod:`recsys_grader.codecheck`) is checked on every
evasion we know of, without a sandbox; the evasions that solve Module 2's ``topk_indices``
through the kit are then graded through the real pipeline, where the sandbox's own runtime trap
is switched off by the same trick (only the trusted static check is left).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_grader.codecheck import code_problems
from recsys_kit import ranking

from . import payloads

#: (evasion, code): each reaches ranking.topk (or hides what it reaches) in a way a static
#: reader could miss; each must be reported.
STATIC_EVASIONS = {
    "plain call": "def f(s, k):\n    return ranking.topk(s, s, k)",
    "default argument": "def f(s, k, _t=ranking.topk):\n    return _t(s, s, k)",
    "sibling": "def f(s, k):\n    return ranking.topk_with_stats(s, s, k)",
    "module alias in a function": (
        "def f(s, k):\n    import recsys_kit.ranking as r\n    return r.topk(s, s, k)"
    ),
    "helper of the module": "def f(s, k):\n    return ranking._topk_impl(s, s, k)",
    "getsource + exec": "import inspect\n_g = {}\nexec(inspect.getsource(ranking), _g)",
    "patching the grader": "import recsys_grader.testing as _t\n_t.references_disabled = None",
    "computed getattr": "_t = getattr(ranking, 'to' + 'pk')",
    "getattr passed around": "import functools\n_t = functools.reduce(getattr, ['topk'], ranking)",
    "literal getattr of sys.modules": (
        "import sys\n_t = getattr(sys, 'modules')['recsys_kit.ranking'].topk"
    ),
    "pydoc.locate": "import pydoc\n_t = pydoc.locate('recsys_kit.ranking.topk')",
    "pkgutil.resolve_name": "import pkgutil\n_t = pkgutil.resolve_name('recsys_kit.ranking:topk')",
    "typing.get_type_hints": (
        "import typing\ndef _h(x: 'ranking.topk'): pass\n_t = typing.get_type_hints(_h)['x']"
    ),
    "string.Formatter": (
        "import string, sys\n"
        "_t = string.Formatter().get_field('0.modules[recsys_kit.ranking].topk', (sys,), {})"
    ),
    "pandas eval": "_t = pd.eval('ranking.topk', engine='python')",
    "DataFrame.eval with @": "_t = pd.DataFrame({'a': [1]}).eval('@ranking.topk')",
    "unpickling numpy": "_t = np.load('/tmp/x.npy', allow_pickle=True)[()]",
    "unpickling torch": "import torch\n_t = torch.load('/tmp/x.pt', weights_only=False)",
    "unittest.mock importer": (
        "from unittest import mock\n_t = mock._importer('recsys_kit.ranking').topk"
    ),
    "logging.config resolver": (
        "import logging.config\n"
        "_t = logging.config.BaseConfigurator({}).resolve('recsys_kit.ranking.topk')"
    ),
    "timeit runs a string": "import timeit\ntimeit.timeit('import recsys_kit', number=1)",
    "cProfile runs a string": "import cProfile\ncProfile.run('x = 1')",
    "private importer": (
        "import _frozen_importlib\n"
        "_m = _frozen_importlib._bootstrap._gcd_import('recsys_kit.ranking')"
    ),
    "__main__ module": "import __main__\n_t = __main__.ranking.topk",
    "code objects": "import types\n_f = types.FunctionType",
    "frames of a traceback": (
        "import sys\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    _g = sys.exc_info()[2].tb_frame.f_globals"
    ),
    "frame attribute on anything": (
        "def f(e):\n    return e.__traceback__.tb_frame.f_globals['ranking']"
    ),
    "subprocess with the kit": (
        "import asyncio\nasyncio.create_subprocess_exec('python', '-c', 'import recsys_kit')"
    ),
    "shell": "import os\nos.system('python -c \"import recsys_kit\"')",
    "IPython magic": "get_ipython().run_line_magic('run', '-m recsys_kit.ranking')",
    "dunder globals": "def f():\n    return f.__globals__['ranking']",
}

HONEST = [
    "from __future__ import annotations\nimport math\nfrom typing import Optional\n\n"
    "def f(s: np.ndarray, k: int) -> Optional[np.ndarray]:\n"
    "    order = np.argsort(-s, axis=1, kind='stable')\n    return order[:, :k]",
    "def g(df):\n    return df.query('price > 10').groupby('department').size()",
    "import torch\n\ndef h(model, x):\n    model.eval()\n    return np.load('/tmp/a.npy')",
]


@pytest.mark.parametrize("name", sorted(STATIC_EVASIONS))
def test_static_check_reports_every_known_evasion(name):
    namespace = {"ranking": ranking, "np": np, "pd": pd}
    problems = code_problems([("cell 3", STATIC_EVASIONS[name])], [ranking.topk], namespace)
    assert problems, f"{name}: not reported"
    assert all(p.startswith("cell 3, line ") for p in problems)


def test_static_check_accepts_honest_code():
    namespace = {"ranking": ranking, "np": np, "pd": pd}
    for code in HONEST:
        assert code_problems([("cell 3", code)], [ranking.topk], namespace) == [], code


@pytest.mark.notebooks
@pytest.mark.parametrize("student", sorted(payloads.EVASIONS))
def test_evasions_get_no_hidden_point(m2, student):
    """Each evasion's topk_indices works (its visible test passes: the kit is right), yet the
    hidden test, which requires the student's own implementation, gives nothing."""
    result = m2.results[student]
    assert result.status == "graded", result.detail
    assert m2.points(student, "02_topk_tests") == 1.0, "control: the delegating answer works"
    assert m2.points(student, "02_topk_hidden") == 0.0
    assert result.score == 1.0, result.cells
    verdict = next(
        c
        for c in m2.notebook(student).cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "02_topk_hidden"
    )
    shown = "".join(o.get("text", "") for o in verdict.outputs)
    assert "implement it yourself" in shown, shown


@pytest.mark.notebooks
def test_the_honest_solution_still_gets_full_marks(m2):
    result = m2.results["z_victim_right"]
    auto = [c for c in result.cells.values() if c["status"] not in ("manual", "no_response")]
    assert result.score == sum(c["max"] for c in auto) > 0, result.cells


def test_module5_metrics_through_the_kit_are_reported():
    """Module 6's evaluate_run (whose hidden test checks delegation) done by metrics.evaluate,
    directly, through one of its helpers, or disguised."""
    from recsys_kit import metrics

    namespace = {"metrics": metrics, "np": np, "pd": pd}
    answers = [
        "def evaluate_run(qrels, run, k=10):\n    return metrics.evaluate(qrels, run, ['ndcg@10'])",
        "def evaluate_run(qrels, run, k=10):\n"
        "    return metrics._ndcg(metrics._flatten(qrels, run), k)",
        "import pydoc\n_e = pydoc.locate('recsys_kit.metrics.evaluate')",
    ]
    for code in answers:
        assert code_problems([("cell 9", code)], [metrics.evaluate], namespace), code


@pytest.mark.notebooks
@pytest.mark.parametrize("student", sorted(payloads.M5_EVASIONS))
def test_module5_metrics_by_the_kit_get_no_hidden_point(m5, student):
    """Every metric exercise of Module 6 answered by metrics.evaluate (directly, by a default
    argument, by its private kernels, or resolved from a string with the sandbox's trap switched
    off): the visible tests pass (the kit is right), every hidden test gives nothing."""
    result = m5.results[student]
    assert result.status == "graded", result.detail
    for grade_id, (visible, hidden) in payloads.M5_METRICS.items():
        assert m5.points(student, visible) == 1.0, (grade_id, "control: the kit's answer works")
        assert m5.points(student, hidden) == 0.0, (grade_id, result.cells)
        verdict = next(
            c
            for c in m5.notebook(student).cells
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == hidden
        )
        shown = "".join(o.get("text", "") + o.get("evalue", "") for o in verdict.outputs)
        assert "yourself" in shown, (hidden, shown)


@pytest.mark.notebooks
def test_module5_honest_metrics_get_every_point(m5):
    result = m5.results["z_victim_right"]
    assert result.status == "graded", result.detail
    for visible, hidden in payloads.M5_METRICS.values():
        assert result.cells[visible]["points"] == result.cells[visible]["max"] > 0, result.cells
        assert result.cells[hidden]["points"] == result.cells[hidden]["max"] > 0, result.cells


def test_the_student_package_ships_no_delegation_detector():
    """recsys_kit.testing (the detector students could read and patch) is gone from the kit;
    the checks live in recsys_grader, whose sandbox-side copy the judge never trusts."""
    import importlib.util

    assert importlib.util.find_spec("recsys_kit.testing") is None
    from recsys_kit.paths import REPO_ROOT

    kit = REPO_ROOT / "recsys_kit"
    assert not [p for p in kit.rglob("*.py") if "assert_does_not_delegate" in p.read_text("utf-8")]


# --- "the function must not read X" (names_used_by): what a reading of the function may miss ---

#: Names Module 6's re-ranker must not read (its hidden test's list, abridged).
LABELS = {"sim", "truth", "judged", "qrels", "shop_truth", "evaluate", "load_qrels"}
_R = "def rerank_for_shoppers(run, products):\n    return "
#: (evasion, cells): each makes rerank_for_shoppers read the labels without naming them in its
#: own body; each must show the labels among what it reads, or a problem.
HIDDEN_READS = {
    "module alias": "_t = shop_truth\n" + _R + "_t",
    "lambda": "rerank_for_shoppers = lambda run, products: shop_truth",
    "factory": "def _mk(t):\n    def f(run, products):\n        return t\n    return f\n"
    "rerank_for_shoppers = _mk(shop_truth)",
    "class with __new__": "class rerank_for_shoppers:\n    def __new__(cls, run, products):\n"
    "        return shop_truth",
    "decorated": "def _d(f):\n    return lambda run, products: shop_truth\n@_d\n" + _R + "run",
    "rebound after the def": _R + "run\nrerank_for_shoppers = (lambda f: lambda r, p: qrels)(0)",
    "filled in place": "_c = {}\n_c.update(shop_truth)\n" + _R + "_c",
    "nested item set": "_c = {'a': {}}\n_c['a']['b'] = shop_truth\n" + _R + "_c",
    "set by a global statement": "def _s():\n    global _c\n    _c = shop_truth\n_s()\n"
    + _R
    + "_c",
    "for-loop target": "for _t in [shop_truth]:\n    pass\n" + _R + "_t",
    "walrus": "print((_t := shop_truth) is None)\n" + _R + "_t",
    "attribute of a module": "import numpy as np\nnp.zz = shop_truth\n" + _R + "np.zz",
    "class attribute": "class _K:\n    t = shop_truth\n" + _R + "_K.t",
    "helper reading state": "def _h():\n    return _t\n_t = shop_truth\n" + _R + "_h()",
    "default argument": "def rerank_for_shoppers(run, products, _t=shop_truth):\n    return _t",
    "a file": "import json\njson.dump(shop_truth, open('/tmp/t', 'w'))\n"
    + _R
    + "json.load(open('/tmp/t'))",
    "the environment": "import os\nos.environ['T'] = str(shop_truth)\n" + _R + "os.environ['T']",
    "builtins": "import builtins\nbuiltins.zz = shop_truth\n" + _R + "zz",
    "the kernel's namespace": _R + "get_ipython().user_ns['shop_truth']",
    "globals()": _R + "globals()['shop_' + 'truth']",
    "setattr": "import numpy as np\nsetattr(np, 'zz', shop_truth)\n" + _R + "np.zz",
}

#: Honest re-rankers beside exploration that does touch the labels.
HONEST_READS = [
    "import numpy as np\n_W = 0.2\ndef _v(p):\n    return p[C.COL_RATING]\n"
    "def rerank_for_shoppers(run, products):\n"
    "    return with_prior(run, dict(zip(products[C.COL_PRODUCT_ID], _v(products))), _W)\n"
    "_mine = rerank_for_shoppers(shop_run, shop_products)\n"
    "print(evaluate(shop_truth, _mine, 'ndcg@10'), sim.expected_outcomes(_mine, shop_qids))\n"
    "np.random.seed(0)",
    # a parameter named like a notebook variable built from the labels
    "run = {q: shop_truth[q] for q in shop_qids}\n"
    "def rerank_for_shoppers(run, products):\n    return with_prior(run, {}, 0.2)",
]


@pytest.mark.parametrize("name", sorted(HIDDEN_READS))
def test_a_hidden_read_of_the_labels_is_seen(name):
    from recsys_grader.codecheck import names_in_function

    names, problems = names_in_function([("cell 7", HIDDEN_READS[name])], "rerank_for_shoppers")
    assert names & LABELS or problems, name


def test_honest_readers_read_no_label():
    from recsys_grader.codecheck import names_in_function

    for code in HONEST_READS:
        names, problems = names_in_function([("cell 7", code)], "rerank_for_shoppers")
        assert not names & LABELS and problems == [], (code, names & LABELS, problems)


@pytest.mark.notebooks
@pytest.mark.parametrize("student", sorted(payloads.M5_LABEL_READERS))
def test_a_reranker_reading_the_labels_gets_no_hidden_point(m5, student):
    """Each behaves exactly like the solution here; only what it reads differs."""
    result = m5.results[student]
    assert result.status == "graded", result.detail
    assert m5.points(student, "06_rerank_tests") == 1.0, "control: it re-ranks like the solution"
    assert m5.points(student, "06_rerank_hidden") == 0.0, result.cells
    assert m5.points("z_victim_right", "06_rerank_hidden") == 3.0, m5.results["z_victim_right"]

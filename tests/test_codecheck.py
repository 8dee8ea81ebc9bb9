"""The grader's static reading of student code: delegation evasions caught, honest code passes."""

from __future__ import annotations

import numpy as np
import pytest

import recsys_kit
from recsys_grader.codecheck import code_problems, implementation_of
from recsys_kit import hybrid, metrics, ranking

NS = {"ranking": ranking, "np": np, "hybrid": hybrid, "recsys_kit": recsys_kit, "metrics": metrics}
FORBIDDEN = [ranking.topk]


def problems(*sources: str, forbidden=FORBIDDEN) -> list[str]:
    cells = [(f"cell {i}", s) for i, s in enumerate(sources)]
    return code_problems(cells, forbidden, NS)


HONEST = [
    "def topk_indices(s, k):\n    p = np.argpartition(-s, k - 1, axis=1)\n    return p[:, :k]",
    "import math\nfrom collections import Counter\n\ndef f(x):\n    return Counter(x), math.pi",
    "%timeit ranking.topk(q, x, k=5)\ns, i = ranking.topk(q, x, k=5)  # exploring the kit is fine",
    'def g(q, r):\n    return metrics.evaluate(q, r, ["ndcg@10"])  # unrelated kit code is fine',
    "import functools\n\n@functools.lru_cache\ndef h(n):\n    return n * 2",
    "class Box:\n    def __init__(self, v):\n        self.v = v\n\n    def __len__(self):\n"
    "        return 1",
    "from recsys_kit import constants as C\n\ndef cols():\n    return C.COL_QUERY_ID",
    "%matplotlib inline\nx = getattr(np, 'float32')",
]


@pytest.mark.parametrize("source", HONEST)
def test_honest_code_is_not_flagged(source):
    assert problems(source) == []


EVASIONS = {
    "direct call in the function": "def f(s, k):\n    return ranking.topk(s, s, k)",
    "sibling built on it": "def f(s, k):\n    return ranking.topk_with_stats(s, s, k)",
    "class built on it": "def f(x):\n    return ranking.Index(x)",
    "alias at top level": "t = ranking.topk\n\ndef f(s, k):\n    return t(s, s, k)",
    "module alias": "r = ranking\n\ndef f(s, k):\n    return r.topk(s, s, k)",
    "package path": "def f(s, k):\n    return recsys_kit.ranking.topk(s, s, k)",
    "from-import": "from recsys_kit.ranking import topk as t\ndef f(s, k):\n    return t(s, s, k)",
    "default argument": "def f(s, k, t=ranking.topk):\n    return t(s, s, k)",
    "literal getattr": "def f(s, k):\n    return getattr(ranking, 'topk')(s, s, k)",
    "computed getattr": "def f(s, k):\n    return getattr(ranking, 'to' + 'pk')(s, s, k)",
    "lambda": "f = lambda s, k: ranking.topk(s, s, k)",
    "passed as a value": "import functools\nf = functools.partial(ranking.topk, k=3)",
    "exec": "exec('def f(s, k): return 1')",
    "eval": "def f(s, k):\n    return eval('ranking').topk(s, s, k)",
    "importlib": "import importlib\n\ndef f(s, k):\n    return importlib.import_module('x')",
    "dunder import": "def f(s, k):\n    return __import__('recsys_kit.ranking')",
    "inspect + exec": "import inspect\nsrc = inspect.getsource(ranking)",
    "globals": "def f(s, k):\n    return globals()['ranking'].topk(s, s, k)",
    "dunder attribute": "def f(s, k):\n    return f.__globals__['ranking']",
    "sys.modules": "import sys\n\ndef f(s, k):\n    return sys.modules['recsys_kit.ranking']",
    "shell escape": "!pip download something",
    "run magic": "%run other_notebook.ipynb",
    "own module": "import my_helpers\n\ndef f(s, k):\n    return my_helpers.f(s, k)",
    "monkeypatching a module": "np.sorted_by_kit = ranking.topk",
    "grader import": "import recsys_grader.agent",
    "IPython hook": "get_ipython().set_custom_exc((Exception,), lambda *a: None)",
    "subprocess": "import subprocess\ndef f(s, k):\n    return subprocess.check_output(['py'])",
    "operator.attrgetter": "from operator import attrgetter\nf = attrgetter('topk')",
}


@pytest.mark.parametrize("name", sorted(EVASIONS))
def test_evasions_are_reported_with_their_line(name):
    found = problems("x = 1", EVASIONS[name])
    assert found, f"{name} was not caught"
    assert all(p.startswith("cell 1") for p in found), found


def test_instructor_helper_that_calls_the_reference_is_caught():
    def naive_topk(s, k):  # an instructor's exploration helper built on the kit
        return ranking.topk(s, s, k)

    cells = [("cell 1", "def f(s, k):\n    return naive_topk(s, k)")]
    assert code_problems(cells, FORBIDDEN, {**NS, "naive_topk": naive_topk})


def test_forbidden_set_includes_the_helpers_it_is_built_on():
    names = {f.__name__ for f in implementation_of([ranking.topk])}
    assert {"topk", "_topk_impl"} <= names
    assert "l2_normalize" not in names  # an unrelated sibling stays allowed


def test_other_exercises_forbidden_sets_are_independent():
    code = "def rrf_fuse(runs, k=60):\n    return hybrid.rrf(runs, k=k)"
    assert problems(code) == []  # topk is forbidden, not rrf
    assert problems(code, forbidden=[hybrid.rrf])


def test_syntax_errors_are_reported_not_crashing():
    assert problems("def f(:\n    pass")

"""Matrix factorisation for implicit feedback: ALS (Hu, Koren & Volinsky 2008) and BPR.

Both learn a ``factors``-dimensional vector per user (``user_factors``, rows ``x_u``) and per
item (``item_factors``, rows ``y_i``) and score ``x_u . y_i``.

**ALS** (weighted matrix factorisation). Every (user, item) cell is a target: preference
``p_ui = 1`` if the user interacted, else 0, trusted with confidence ``c_ui = 1 + alpha r_ui``
(``r_ui`` = the confidence weight from :func:`~recsys_kit.cf.build_matrix`). It minimises

    sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization (||X||^2 + ||Y||^2)

by alternating exact least-squares solves: with ``Y`` fixed each user's vector is

    x_u = (Y^T Y + Y^T (C_u - I) Y + lambda I)^-1  Y^T C_u p_u

``Y^T Y`` is shared by all users (the "Y^T Y trick"), so only the items a user touched cost
anything. ``solver="exact"`` does that solve for blocks of users at once (batched
``numpy.linalg.solve`` in float64; the readable reference); ``solver="cg"`` (default) runs a few
conjugate-gradient steps for *all* users simultaneously, warm-started from the last iteration
(Takacs et al. 2011, what the ``implicit`` library does), in float32 with torch's sparse
kernels: one GEMM with ``Y^T Y``, one sampled GEMM on the stored cells and one sparse x dense
product per step, never an (n x f x f) or (nnz x f) array. Faster than ``implicit``'s C++ on
one thread (``bench/bench_cf.py``), same optimum.

**BPR** (Rendle et al. 2009) learns only the *order*: for a user ``u``, an item ``i`` they
interacted with and a random item ``j`` they did not, it maximises ``log sigmoid(s_ui - s_uj)``
with Rendle's stochastic gradient updates (scores ``s_ui = x_u . y_i + b_i`` with an item bias,
regularised like the factors): one triple at a time in a loop compiled by numba
(:mod:`recsys_kit.cf.bpr_sgd`, optional), or a mini-batch at a time in torch.

:class:`ImplicitALS` wraps the fast C++ ``implicit`` library (optional dependency) behind the
same interface and the same objective, so the course can compare it with the reference.

Example:
    >>> import scipy.sparse as sp
    >>> X = sp.random(50, 40, density=0.1, random_state=0, format="csr")
    >>> als = ALS(factors=8, iterations=5, seed=0).fit(X)
    >>> als.user_factors.shape, als.item_factors.shape
    ((50, 8), (40, 8))

The module is over 600 lines because ALS, BPR and the ``implicit`` wrapper share one factor model,
its solvers and its loss; split them only together.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from recsys_kit.cf.base import Recommender, check_matrix
from recsys_kit.constants import SEED
from recsys_kit.device import get_device
from recsys_kit.progress import progress
from recsys_kit.threads import check_threads, thread_limit

__all__ = [
    "SOLVERS",
    "EXACT_BLOCK_BYTES",
    "init_factors",
    "als_solve_exact",
    "CGSide",
    "als_solve_cg",
    "als_loss",
    "ALS",
    "BPR_ENGINES",
    "BPR",
    "implicit_available",
    "ImplicitALS",
]

SOLVERS = ("cg", "exact")
BPR_ENGINES = ("auto", "numba", "torch")
#: Bytes of (nnz, factors, factors) outer products the exact solver builds per block of users.
EXACT_BLOCK_BYTES = 64 * 2**20


def init_factors(n: int, factors: int, rng: np.random.Generator) -> np.ndarray:
    """Small random starting factors (float64), shared by ALS and the ``implicit`` adapter."""
    return rng.standard_normal((n, factors)) * 0.01


def _gram(y: np.ndarray, regularization: float) -> np.ndarray:
    return y.T @ y + regularization * np.eye(y.shape[1])


def als_solve_exact(conf: sp.csr_matrix, y: np.ndarray, regularization: float) -> np.ndarray:
    """Closed-form least squares for every row of ``conf`` given the other side's factors.

    Args:
        conf: (n_rows, n_other) CSR of confidences ``c = 1 + alpha r`` on the observed cells.
        y: (n_other, f) factors held fixed.
        regularization: the L2 penalty ``lambda``.

    Returns:
        (n_rows, f) float64 factors.
    """
    f = y.shape[1]
    out = np.zeros((conf.shape[0], f))
    base = _gram(y, regularization)
    rhs = np.asarray(conf @ y)  # Y^T C_u p_u: p_u is 1 exactly on the stored cells
    budget = max(1, EXACT_BLOCK_BYTES // (8 * f * f))
    indptr = conf.indptr
    start = 0
    while start < conf.shape[0]:
        end = int(np.searchsorted(indptr, indptr[start] + budget, side="right")) - 1
        end = min(max(end, start + 1), conf.shape[0])
        lo, hi = indptr[start], indptr[end]
        yi = y[conf.indices[lo:hi]]
        outer = (yi[:, :, None] * yi[:, None, :]).reshape(hi - lo, f * f)
        # Sum the (c - 1) y_i y_i^T of each row: a sparse (rows x nnz) matrix times the outers.
        pick = sp.csr_matrix(
            (conf.data[lo:hi] - 1.0, np.arange(hi - lo), indptr[start : end + 1] - lo),
            shape=(end - start, hi - lo),
        )
        a = base[None] + np.asarray(pick @ outer).reshape(end - start, f, f)
        out[start:end] = np.linalg.solve(a, rhs[start:end, :, None])[:, :, 0]
        start = end
    return out


def _csr_tensor(m: sp.csr_matrix, values: np.ndarray, device: torch.device) -> torch.Tensor:
    """A torch CSR tensor with ``m``'s pattern and the given values (float32)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what we need
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(np.asarray(values, dtype=np.float32)),
            size=m.shape,
            check_invariants=False,  # check_matrix already sorted and validated the pattern
        ).to(device)


class CGSide:
    """One side of the ALS problem for :func:`als_solve_cg`, as torch CSR tensors.

    ``conf`` holds ``c = 1 + alpha r`` (the right-hand side ``Y^T C_u p_u`` is ``conf @ Y``),
    ``weight`` the same pattern with ``c - 1`` (the only cells that differ from the shared
    ``Y^T Y``). Built once per fit; memory ``O(nnz)``.
    """

    def __init__(self, conf: sp.csr_matrix, device: torch.device) -> None:
        self.conf = _csr_tensor(conf, conf.data, device)
        self.weight = _csr_tensor(conf, conf.data - 1.0, device)
        self.weight_values = self.weight.values()

    def weighted_dots(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """CSR tensor of ``(c_ui - 1) (p_u . y_i)`` on the stored cells (one sampled GEMM)."""
        dots = torch.sparse.sampled_addmm(self.weight, p, y.T, beta=0.0)
        return torch.sparse_csr_tensor(
            self.weight.crow_indices(),
            self.weight.col_indices(),
            dots.values().mul_(self.weight_values),
            size=self.weight.shape,
            check_invariants=False,
        )


def als_solve_cg(
    side: CGSide, y: torch.Tensor, x: torch.Tensor, regularization: float, steps: int = 3
) -> torch.Tensor:
    """A few conjugate-gradient steps on every row's normal equations at once.

    Same system as :func:`als_solve_exact`, never forming the (f x f) matrices: ``A x`` is
    ``x (Y^T Y + lambda I) + sum_i (c_ui - 1)(x . y_i) y_i``: a dense GEMM with the shared
    Gram matrix, a sampled GEMM (only the stored cells) and a sparse x dense product, for all
    rows together, in float32 like ``implicit``. Memory: ``O(nnz + rows x f)``.

    Args:
        side: the confidence matrix of this side (:class:`CGSide`).
        y: (n_other, f) fixed factors (float32 tensor).
        x: (n_rows, f) current factors (the warm start); updated in place and returned.
        regularization: the L2 penalty.
        steps: CG iterations (3 is plenty with the warm start, as in ``implicit``).

    Returns:
        (n_rows, f) float32 updated factors.
    """
    gram = y.T @ y
    gram.diagonal().add_(regularization)

    def matvec(p: torch.Tensor) -> torch.Tensor:
        return torch.addmm(side.weighted_dots(p, y) @ y, p, gram)

    r = (side.conf @ y).sub_(matvec(x))
    p = r.clone()
    rs_old = torch.linalg.vecdot(r, r)
    for _ in range(steps):
        ap = matvec(p)
        pap = torch.linalg.vecdot(p, ap)
        step = torch.where(pap > 0, rs_old / pap, torch.zeros_like(pap))[:, None]
        x.addcmul_(step, p)
        r.addcmul_(step, ap, value=-1.0)
        rs_new = torch.linalg.vecdot(r, r)
        if float(rs_new.max()) < 1e-20:
            break
        beta = torch.where(rs_old > 0, rs_new / rs_old, torch.zeros_like(rs_new))[:, None]
        p.mul_(beta).add_(r)
        rs_old = rs_new
    return x


def als_loss(conf: sp.csr_matrix, x: np.ndarray, y: np.ndarray, regularization: float) -> float:
    """The weighted squared loss of ALS over *all* cells, computed without densifying.

    ``sum_all s^2`` (every cell, preference 0, confidence 1) is ``<X^T X, Y^T Y>``; the stored
    cells then swap their ``s^2`` for ``c (1 - s)^2``.
    """
    rows = np.repeat(np.arange(conf.shape[0]), np.diff(conf.indptr))
    s = np.einsum("nf,nf->n", x[rows], y[conf.indices])
    total = float(np.sum((x.T @ x) * (y.T @ y)))
    total += float(np.sum(conf.data * (1.0 - s) ** 2 - s**2))
    return total + regularization * float(np.sum(x * x) + np.sum(y * y))


def _als_loss_torch(side: CGSide, x: torch.Tensor, y: torch.Tensor, regularization: float) -> float:
    """:func:`als_loss` on the torch route: one sampled GEMM, sums in float64."""
    s = torch.sparse.sampled_addmm(side.conf, x, y.T, beta=0.0).values().double()
    c = side.conf.values().double()
    total = float(((x.T @ x).double() * (y.T @ y).double()).sum())
    total += float((c * (1.0 - s) ** 2 - s**2).sum())
    return total + regularization * float(x.double().square().sum() + y.double().square().sum())


class _FactorModel(Recommender):
    """Scores are ``user_factors @ item_factors.T`` (+ ``item_bias`` when present)."""

    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    item_bias: np.ndarray | None = None

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = self.user_factors[users] @ self.item_factors.T
        return scores if self.item_bias is None else scores + self.item_bias


class ALS(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008): the kit's own, in numpy and torch.

    Args:
        factors: latent dimension.
        regularization: L2 penalty ``lambda`` on all factors.
        alpha: confidence slope: ``c_ui = 1 + alpha r_ui``. With 0/1 feedback (the Amazon
            loader's default) this is the ``alpha`` of the papers and of ``implicit``.
        iterations: alternating sweeps (users then items).
        seed: seeds the random starting factors; same seed, same result (on one machine).
        solver: ``"cg"`` (fast, default: float32 torch sparse kernels) or ``"exact"`` (batched
            float64 closed form in numpy, the reference).
        cg_steps: conjugate-gradient steps per sweep (``solver="cg"`` only).
        device: where the ``"cg"`` solver runs; ``None`` asks
            :func:`recsys_kit.device.get_device` (Apple's MPS has no sparse kernels: CPU).
        num_threads: torch/BLAS threads while fitting and recommending: 1 by default
            (:attr:`Recommender.num_threads` says why), ``None`` for the libraries' defaults.
        show_progress: ``False`` hides the bar; ``None``/``True`` follow the kit-wide switch
            (:mod:`recsys_kit.progress`).

    Attributes:
        user_factors, item_factors: float32 (n_users, factors) and (n_items, factors).
        loss_history: the training loss after each iteration (it never increases for
            ``"exact"``; plot it to see ALS converge).

    Example:
        >>> import scipy.sparse as sp
        >>> X = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))))  # two taste groups
        >>> als = ALS(factors=2, regularization=0.01, iterations=10, seed=0).fit(X)
        >>> als.recommend([0], k=3, exclude_seen=False)[1].tolist()
        [[0, 1, 2]]
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 10.0,
        iterations: int = 15,
        seed: int = SEED,
        solver: str = "cg",
        cg_steps: int = 3,
        device: str | torch.device | None = None,
        num_threads: int | None = 1,
        show_progress: bool | None = None,
    ) -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        for name, value in (
            ("factors", factors),
            ("iterations", iterations),
            ("cg_steps", cg_steps),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if regularization < 0 or alpha < 0:
            raise ValueError(
                f"regularization and alpha must be >= 0, got {regularization} and {alpha}"
            )
        self.factors, self.regularization, self.alpha = factors, float(regularization), float(alpha)
        self.iterations, self.seed, self.solver, self.cg_steps = iterations, seed, solver, cg_steps
        self.device, self.num_threads = device, check_threads(num_threads)
        self.show_progress = show_progress
        self.loss_history: list[float] = []

    def __repr__(self) -> str:
        return (
            f"ALS(factors={self.factors}, regularization={self.regularization}, "
            f"alpha={self.alpha}, iterations={self.iterations}, seed={self.seed}, "
            f"solver={self.solver!r})"
        )

    def confidence(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """``c = 1 + alpha r`` on the stored cells (float64 CSR, same pattern)."""
        conf = matrix.astype(np.float64)
        conf.data = 1.0 + self.alpha * conf.data
        return conf

    def _fit(self, matrix: sp.csr_matrix) -> None:
        rng = np.random.default_rng(self.seed)
        x = init_factors(matrix.shape[0], self.factors, rng)
        y = init_factors(matrix.shape[1], self.factors, rng)
        self._sweeps(matrix, x, y)

    def fit_from(self, matrix: sp.spmatrix, x: np.ndarray, y: np.ndarray) -> ALS:
        """Run the ALS sweeps from given starting factors (used to compare with ``implicit``)."""
        matrix = check_matrix(matrix)
        self.train_matrix = matrix
        with thread_limit(self.num_threads):
            self._sweeps(matrix, x, y)
        return self

    def _sweeps(self, matrix: sp.csr_matrix, x: np.ndarray, y: np.ndarray) -> None:
        cui = self.confidence(matrix)
        ciu = cui.T.tocsr()
        bar = progress(range(self.iterations), "ALS iterations", self.show_progress is False)
        self.loss_history = []
        if self.solver == "exact":
            x, y = np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)
            for _ in bar:
                x = als_solve_exact(cui, y, self.regularization)
                y = als_solve_exact(ciu, x, self.regularization)
                self.loss_history.append(als_loss(cui, x, y, self.regularization))
            self.user_factors, self.item_factors = x.astype(np.float32), y.astype(np.float32)
            return
        device = get_device(self.device)
        if device.type == "mps":  # no sparse CSR kernels there
            device = torch.device("cpu")
        users, items = CGSide(cui, device), CGSide(ciu, device)
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(device)
        yt = torch.as_tensor(np.asarray(y, dtype=np.float32)).to(device)
        with torch.inference_mode():
            for _ in bar:
                xt = als_solve_cg(users, yt, xt, self.regularization, self.cg_steps)
                yt = als_solve_cg(items, xt, yt, self.regularization, self.cg_steps)
                self.loss_history.append(_als_loss_torch(users, xt, yt, self.regularization))
        self.user_factors = xt.cpu().numpy().astype(np.float32)
        self.item_factors = yt.cpu().numpy().astype(np.float32)


class BPR(_FactorModel):
    """Bayesian Personalised Ranking (Rendle et al. 2009): compiled per-sample SGD or torch.

    Each epoch draws one (user, positive item, negative item) triple per stored cell of the
    matrix (values are ignored: BPR is binary), with negatives drawn uniformly among the items
    the user did not touch, in a random order, and takes plain SGD steps on
    ``-log sigmoid(s_ui - s_uj)`` with scores ``s_ui = x_u . y_i + b_i``: Rendle's update
    ``theta += lr (g dtheta - regularization theta)`` on every vector a triple touches, **the
    item biases included** (an unregularised bias grows with popularity until the lists are
    the best-sellers for everybody).

    Two engines compute that update. ``"numba"`` (:mod:`recsys_kit.cf.bpr_sgd`) is Rendle's
    own loop, one triple at a time, compiled: as fast as the ``implicit`` library on one
    thread; the first fit in a process compiles it (about 1 s here, then cached on disk).
    ``"torch"`` is the readable, vectorised lesson and the GPU path: a mini-batch of triples at
    a time, gradients written out and applied with ``index_add_`` (one for the factors, user
    rows then item rows in one table, one per side for the item biases).

    Args:
        factors: latent dimension.
        lr: SGD learning rate (per triple).
        epochs: passes over the positive cells (the defaults converge on Amazon-5-core-sized
            data: ``bench/RESULTS.md``; watch ``loss_history`` flatten).
        seed: seeds the initial factors and the sampling; same seed, same result on CPU.
        regularization: weight decay per update (factors and biases).
        batch_size: triples per step of the torch engine (larger is faster per epoch,
            staler within a batch); the numba engine steps one triple at a time.
        device: ``None`` asks :func:`recsys_kit.device.get_device`. The numba engine runs on
            the CPU: ``engine="numba"`` with an accelerator named here is an error.
        num_threads: torch threads while fitting and recommending: 1 by default (its
            mini-batch operations are too small to share between threads), ``None`` for
            torch's default. The numba loop is always one thread (deterministic).
        show_progress: ``False`` hides the bar; ``None``/``True`` follow the kit-wide switch.
        engine: ``"auto"`` (numba when it is installed and the device is the CPU, else
            torch), ``"numba"`` or ``"torch"``.

    Attributes:
        user_factors, item_factors, item_bias: float32 numpy arrays after :meth:`fit`.
        loss_history: mean ``-log sigmoid(s_ui - s_uj)`` per epoch (before regularisation).
        engine_used: the engine the last :meth:`fit` ran (``"numba"`` or ``"torch"``).

    Raises:
        ImportError: at :meth:`fit`, ``engine="numba"`` without numba (with the pip command).

    Example:
        >>> import scipy.sparse as sp
        >>> X = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))))
        >>> bpr = BPR(factors=4, epochs=30, lr=0.05, device="cpu").fit(X)
        >>> len(bpr.loss_history)
        30
    """

    def __init__(
        self,
        factors: int = 64,
        lr: float = 0.1,
        epochs: int = 100,
        seed: int = SEED,
        regularization: float = 0.01,
        batch_size: int = 4096,
        device: str | torch.device | None = None,
        num_threads: int | None = 1,
        show_progress: bool | None = None,
        engine: str = "auto",
    ) -> None:
        if engine not in BPR_ENGINES:
            raise ValueError(f"engine must be one of {BPR_ENGINES}, got {engine!r}")
        for name, value in (("factors", factors), ("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if lr <= 0 or regularization < 0:
            raise ValueError(f"need lr > 0 and regularization >= 0, got {lr} and {regularization}")
        self.factors, self.lr, self.epochs, self.seed = factors, float(lr), epochs, seed
        self.regularization, self.batch_size = float(regularization), batch_size
        self.device, self.num_threads = device, check_threads(num_threads)
        self.show_progress, self.engine = show_progress, engine
        self.engine_used: str | None = None
        self.loss_history: list[float] = []

    def __repr__(self) -> str:
        return (
            f"BPR(factors={self.factors}, lr={self.lr}, epochs={self.epochs}, seed={self.seed}, "
            f"regularization={self.regularization}, batch_size={self.batch_size}, "
            f"engine={self.engine!r})"
        )

    @staticmethod
    def sample_negatives(
        users: np.ndarray, positive_keys: np.ndarray, n_items: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Uniform random items, redrawn (up to 20 rounds) where the user already had them.

        Args:
            users: user row of each triple; when sorted (CSR order), the draws are sorted
                within each user too, so the look-ups walk the keys in order (several times
                faster than random look-ups; which negative goes with which positive of the
                same user does not matter, every draw is uniform and independent).
            positive_keys: sorted ``user * n_items + item`` of every stored cell.
            n_items: number of items.
            rng: the generator (seeded by the model).
        """
        keys = users * n_items + rng.integers(0, n_items, size=len(users))
        if len(users) > 1 and (users[1:] >= users[:-1]).all():
            keys.sort()
        todo = np.arange(len(users))
        for _ in range(20):
            pos = np.searchsorted(positive_keys, keys[todo]).clip(max=len(positive_keys) - 1)
            todo = todo[positive_keys[pos] == keys[todo]]
            if not len(todo):
                break
            keys[todo] = users[todo] * n_items + rng.integers(0, n_items, size=len(todo))
        return keys - users * n_items

    def _resolve_engine(self, device: torch.device) -> str:
        """The engine a fit runs on ``device`` (see ``engine`` in the class docstring)."""
        from recsys_kit.cf.bpr_sgd import INSTALL_HINT, numba_available

        if self.engine == "torch" or (self.engine == "auto" and device.type != "cpu"):
            return "torch"
        if self.engine == "numba" and device.type != "cpu":
            raise ValueError(f"engine='numba' runs on the CPU, not on {device}: use engine='torch'")
        if numba_available():
            return "numba"
        if self.engine == "numba":
            raise ImportError(f"BPR(engine='numba') needs numba: {INSTALL_HINT}")
        return "torch"

    def _fit(self, matrix: sp.csr_matrix) -> None:
        device = get_device(self.device)
        if matrix.shape[1] < 2 or matrix.nnz == 0:
            raise ValueError("BPR needs at least 2 items and 1 interaction to form pairs")
        self.engine_used = self._resolve_engine(device)
        if self.engine_used == "numba":
            self._fit_numba(matrix)
        else:
            self._fit_torch(matrix, device)

    def _fit_numba(self, matrix: sp.csr_matrix) -> None:
        from recsys_kit.cf.bpr_sgd import bpr_sgd_fit

        rng = np.random.default_rng(self.seed)
        # Uniform with the torch engine's standard deviation 0.1 / sqrt(f): 5x faster to draw
        # than normals, a visible share of a short fit (implicit starts uniform too).
        half = np.float32(3**0.5 * 0.1 / self.factors**0.5)
        x, y = (
            (rng.random((n, self.factors), dtype=np.float32) - np.float32(0.5)) * (2 * half)
            for n in matrix.shape
        )
        bias = np.zeros(matrix.shape[1], dtype=np.float32)
        bar = progress(range(self.epochs), "BPR epochs", self.show_progress is False)
        seed = int(rng.integers(2**63))
        self.loss_history = bpr_sgd_fit(matrix, x, y, bias, self.lr, self.regularization, bar, seed)
        self.user_factors, self.item_factors, self.item_bias = x, y, bias

    def _fit_torch(self, matrix: sp.csr_matrix, device: torch.device) -> None:
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        n_users, n_items = matrix.shape
        users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(matrix.indptr))
        items = matrix.indices.astype(np.int64)
        keys = users * n_items + items  # sorted: CSR rows in order, columns sorted

        f, nnz = self.factors, len(keys)
        n_batches = -(-nnz // self.batch_size)
        bs = nnz if n_batches == 1 else 2 * self.batch_size  # room for a batch above average
        # One table, user rows then item rows (one gather and one scatter per batch).
        table = (torch.randn(n_users + n_items, f, generator=gen) * (0.1 / f**0.5)).to(device)
        bias = torch.zeros(n_items, device=device)
        work = _BPRBuffers(bs, f, device)
        lr, decay = self.lr, self.lr * self.regularization
        self.loss_history = []
        with torch.inference_mode():
            for _ in progress(range(self.epochs), "BPR epochs", self.show_progress is False):
                neg = self.sample_negatives(users, keys, n_items, rng)  # users sorted: fast
                # Every triple joins a random mini-batch; inside a batch (updated at once, so
                # its order is irrelevant) the triples stay in CSR order: the user rows are
                # gathered and scattered in ascending memory order (a stable radix sort).
                batch_of = rng.integers(0, n_batches, size=nnz, dtype=np.int16)
                order = np.argsort(batch_of, kind="stable")
                bounds = np.searchsorted(batch_of[order], np.arange(n_batches + 1))
                idx = np.empty((3, nnz), dtype=np.int64)
                idx[0], idx[1], idx[2] = users[order], items[order] + n_users, neg[order] + n_users
                idx_t = torch.from_numpy(idx).to(device)
                total = torch.zeros((), dtype=torch.float64, device=device)
                for start, end in zip(bounds[:-1], bounds[1:], strict=True):
                    if end > start:
                        batch = idx_t[:, start:end]
                        total += work.step(table, bias, batch, n_users, lr, decay)
                self.loss_history.append(float(total) / nnz)
        self.user_factors = table[:n_users].cpu().numpy().astype(np.float32)
        self.item_factors = table[n_users:].cpu().numpy().astype(np.float32)
        self.item_bias = bias.cpu().numpy().astype(np.float32)


class _BPRBuffers:
    """Reused work arrays of :class:`BPR` (fresh tensors per mini-batch cost more than the math)."""

    def __init__(self, batch_size: int, factors: int, device: torch.device) -> None:
        self.rows = torch.empty(3 * batch_size, factors, device=device)
        self.diff = torch.empty(batch_size, factors, device=device)
        self.gx = torch.empty(batch_size, factors, device=device)

    def step(
        self,
        table: torch.Tensor,
        bias: torch.Tensor,
        idx: torch.Tensor,
        n_users: int,
        lr: float,
        decay: float,
    ) -> torch.Tensor:
        """One mini-batch of Rendle's update; returns the batch's summed loss (a tensor).

        ``idx`` is (3, n): user rows, positive and negative item rows (offset by ``n_users``).
        """
        n = idx.shape[1]
        flat = idx.reshape(-1)
        rows = torch.index_select(table, 0, flat, out=self.rows[: 3 * n])
        xu, yi, yj = rows[:n], rows[n : 2 * n], rows[2 * n :]
        bi = bias.index_select(0, idx[1] - n_users)
        bj = bias.index_select(0, idx[2] - n_users)
        d = torch.sub(yi, yj, out=self.diff[:n])
        diff = torch.linalg.vecdot(xu, d).add_(bi).sub_(bj)  # s_ui - s_uj
        loss = torch.nn.functional.softplus(-diff).sum(dtype=torch.float64)  # -log sigmoid
        g = torch.sigmoid(diff.neg_()).mul_(lr)  # lr * d(log sigmoid)/d(diff)
        gx = torch.mul(xu, g[:, None], out=self.gx[:n])
        # In place over the gathered copies: each row becomes its own update.
        xu.mul_(-decay).addcmul_(g[:, None], d)  # users: g (y_i - y_j) - reg x_u
        torch.add(gx, yi, alpha=-decay, out=yi)  # positives: g x_u - reg y_i
        torch.add(gx, yj, alpha=decay, out=yj).neg_()  # negatives: -g x_u - reg y_j
        table.index_add_(0, flat, rows)
        bias.index_add_(0, idx[1] - n_users, g - decay * bi)  # the biases: regularised too
        bias.index_add_(0, idx[2] - n_users, -g - decay * bj)
        return loss


def implicit_available() -> bool:
    """Whether the optional ``implicit`` package imports here."""
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


class ImplicitALS(_FactorModel):
    """:class:`ALS` computed by the ``implicit`` library (C++, multi-threaded), same objective.

    ``implicit`` reads the matrix values as the confidences themselves, so the adapter passes
    ``1 + alpha r`` (and ``alpha=1`` to the library): the exact problem :class:`ALS` solves.
    Starting factors come from the same seeded generator as :class:`ALS`.

    Args:
        factors, regularization, alpha, iterations, seed: as in :class:`ALS`.
        use_cg: conjugate gradient (``implicit``'s default) or the exact Cholesky solve.
        num_threads: ``implicit``'s own threads (``None``: all cores, its default); BLAS is
            held to one thread during the fit (``implicit`` parallelises over users itself),
            and recommending uses ``num_threads`` like every kit model.

    Raises:
        ImportError: at :meth:`fit` when ``implicit`` is not installed, with the pip command.
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 10.0,
        iterations: int = 15,
        seed: int = SEED,
        use_cg: bool = True,
        num_threads: int | None = None,
    ) -> None:
        self.factors, self.regularization, self.alpha = factors, float(regularization), float(alpha)
        self.iterations, self.seed, self.use_cg = iterations, seed, use_cg
        self.num_threads = check_threads(num_threads)

    def __repr__(self) -> str:
        return (
            f"ImplicitALS(factors={self.factors}, regularization={self.regularization}, "
            f"alpha={self.alpha}, iterations={self.iterations}, seed={self.seed})"
        )

    def _fit(self, matrix: sp.csr_matrix) -> None:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
            from threadpoolctl import threadpool_limits
        except ImportError as err:
            raise ImportError(
                "ImplicitALS needs the `implicit` package: pip install implicit==0.7.3 "
                "(or use recsys_kit.cf.ALS, the numpy reference)"
            ) from err
        rng = np.random.default_rng(self.seed)
        conf = matrix.copy()
        conf.data = 1.0 + self.alpha * conf.data
        # implicit parallelises over users itself; BLAS threads on top only oversubscribe.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                use_cg=self.use_cg,
                random_state=self.seed,
                num_threads=self.num_threads or 0,  # 0: implicit's "all cores"
            )
            model.user_factors = init_factors(conf.shape[0], self.factors, rng).astype(np.float32)
            model.item_factors = init_factors(conf.shape[1], self.factors, rng).astype(np.float32)
            model.fit(conf, show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)

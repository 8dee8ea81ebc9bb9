# exercise: 06_ztest
# why: the p-value from statistics.NormalDist's CDF instead of math.erfc.
import math
from statistics import NormalDist


def two_proportion_ztest(successes_a, n_a, successes_b, n_b):
    if min(n_a, n_b) < 1:
        raise ValueError(f"both arms need at least one trial, got n_a={n_a}, n_b={n_b}")
    for x, n in ((successes_a, n_a), (successes_b, n_b)):
        if x < 0 or x > n:
            raise ValueError(f"successes {x} outside [0, {n}]")
    p = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (successes_b / n_b - successes_a / n_a) / se
    return z, 2 * (1 - NormalDist().cdf(abs(z)))

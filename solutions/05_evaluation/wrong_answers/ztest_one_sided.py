# exercise: 05_ztest
# why: a one-sided p-value (half the two-sided one): P(Z > |z|) instead of P(|Z| > |z|).
import math


def two_proportion_ztest(successes_a, n_a, successes_b, n_b):
    if n_a < 1 or n_b < 1:
        raise ValueError("n_a and n_b must be >= 1")
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValueError("successes must be between 0 and n")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (successes_b / n_b - successes_a / n_a) / se
    return float(z), float(0.5 * math.erfc(abs(z) / math.sqrt(2)))

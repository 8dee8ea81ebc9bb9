# exercise: 05_ztest
# why: validates successes against n but never n itself: an empty arm (n = 0, 0 successes)
#   passes the check and then divides by zero instead of raising ValueError.
import math


def two_proportion_ztest(successes_a, n_a, successes_b, n_b):
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValueError("successes must be between 0 and n")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (successes_b / n_b - successes_a / n_a) / se
    return float(z), float(math.erfc(abs(z) / math.sqrt(2)))

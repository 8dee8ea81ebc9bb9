# exercise: 05_ztest
# why: the unpooled standard error (each arm's own rate) instead of the pooled one the text asks
#   for.
import math


def two_proportion_ztest(successes_a, n_a, successes_b, n_b):
    if n_a < 1 or n_b < 1:
        raise ValueError("n_a and n_b must be >= 1")
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValueError("successes must be between 0 and n")
    pa, pb = successes_a / n_a, successes_b / n_b
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    if se == 0:
        return 0.0, 1.0
    z = (pb - pa) / se
    return float(z), float(math.erfc(abs(z) / math.sqrt(2)))

# exercise: 00_count_by_department
# why: a Counter over the raw column counts None and NaN like departments (no missing-value
#   handling), and an empty catalog is fine only by luck.
from collections import Counter


def count_by_department(catalog: pd.DataFrame) -> dict[str, int]:
    return dict(Counter(catalog[C.COL_DEPARTMENT]))

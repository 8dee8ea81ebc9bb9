# exercise: 00_count_by_department
# why: np.unique(..., return_counts=True) gives numpy str_ keys and numpy int64 counts, not the
#   plain Python ints the text asks for (they break json.dumps).
import numpy as np


def count_by_department(catalog: pd.DataFrame) -> dict[str, int]:
    departments = catalog[C.COL_DEPARTMENT].dropna().to_numpy(dtype=str)
    names, counts = np.unique(departments, return_counts=True)
    return dict(zip(names, counts))

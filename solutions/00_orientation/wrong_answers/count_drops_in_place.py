# exercise: 00_count_by_department
# why: drops the rows without a department from the caller's frame (inplace=True): the counts
#   are right but the input is changed.
def count_by_department(catalog: pd.DataFrame) -> dict[str, int]:
    catalog.dropna(subset=[C.COL_DEPARTMENT], inplace=True)
    counts = catalog.groupby(C.COL_DEPARTMENT).size()
    return {str(d): int(n) for d, n in counts.items()}

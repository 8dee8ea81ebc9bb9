# exercise: 08_router
# why: the same signal written differently: keep the words only when something matches and the
#   best match is strong (4 or more), as explicit early returns.
def should_rewrite(query, top_score, n_matches):
    if n_matches <= 0:
        return True
    return not top_score >= 4.0

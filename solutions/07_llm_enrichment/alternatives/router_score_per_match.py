# exercise: 07_router
# why: the same signal written differently: rewrite when nothing matches or the best match is
#   weak (below 4), as an explicit if/else.
def should_rewrite(query, top_score, n_matches):
    if n_matches <= 0:
        return True
    if top_score >= 4.0:
        return False
    return True

# exercise: 08_router
# why: always rewrites (the LLM "knows better"): no better than always rewriting, by definition.
def should_rewrite(query, top_score, n_matches):
    return True

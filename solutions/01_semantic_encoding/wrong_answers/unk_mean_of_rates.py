# exercise: 01_unk_rate
# why: averages the per-text rates instead of pooling the counts: a one-token text weighs as
#   much as a forty-token one.
def unk_rate(tokenizer, texts: list[str]) -> float:
    rates = []
    for text in texts:
        tokens = tokenizer.tokenize(text)
        if tokens:
            rates.append(sum(t == tokenizer.unk_token for t in tokens) / len(tokens))
    return float(sum(rates) / len(rates)) if rates else 0.0

# exercise: 01_unk_rate
# why: one flat list of tokens and list.count instead of two running totals.
def unk_rate(tokenizer, texts: list[str]) -> float:
    tokens = [t for text in texts for t in tokenizer.tokenize(text)]
    if not tokens:
        return 0.0
    return tokens.count(tokenizer.unk_token) / len(tokens)

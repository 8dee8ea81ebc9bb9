# exercise: 01_unk_rate
# why: guards against an empty list but not against texts that give no token at all
#   (["", ""]): ZeroDivisionError.
def unk_rate(tokenizer, texts: list[str]) -> float:
    if not texts:
        return 0.0
    tokens = [t for text in texts for t in tokenizer.tokenize(text)]
    return float(sum(t == tokenizer.unk_token for t in tokens) / len(tokens))

# exercise: 01_unk_rate
# why: hard-codes BERT's "[UNK]" instead of reading tokenizer.unk_token.
def unk_rate(tokenizer, texts: list[str]) -> float:
    tokens = [t for text in texts for t in tokenizer.tokenize(text)]
    return float(tokens.count("[UNK]") / len(tokens)) if tokens else 0.0

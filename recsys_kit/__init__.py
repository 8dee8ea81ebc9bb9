"""recsys_kit: the shared library of the LLM-powered e-commerce search and recommendation course.

Notebooks teach; this package computes. One module per concept, layers importing downward:

* foundations: ``constants``, ``paths``, ``device``, ``threads``, ``progress``, ``cache``,
  ``jit`` (numba, optional: compiled loops);
* data: ``datasets`` (loaders, splitters, shared samples), ``runs`` (the run type, its
  builders and the one tie rule);
* representations: ``encoders``, ``embedding_map``;
* retrieval and ranking: ``ranking`` (exact top-k; its engine
  ``topk_engine`` and compiled kernels ``topk_kernels``), ``lexical`` (BM25), ``retrieval``
  (first-stage runs), ``hybrid`` (fusion of runs), ``rerank`` (cross-encoder), ``scoring``
  (pair features, learned and multi-task rankers), ``fusion`` (cross-modal);
* recommendation: ``cf`` (collaborative filtering);
* evaluation: ``metrics``, ``abtest``, ``simulator`` (online shoppers with their own truth),
  ``ips`` (unbiased estimates from biased logs);
* domain adaptation: ``finetune`` (contrastive fine-tuning, LoRA, adapters; precomputed
  vectors in ``shipped_vectors``);
* language models: ``llm`` (also the knowledge base and the FAQ);
* serving: ``ann`` (FAISS HNSW/IVF against exact search), ``service`` (FastAPI search service
  and its load test), ``monitoring`` (after launch);
* tools: ``explorer`` (the search widget), ``cluster`` (Dask).

The grader is not part of it: it is the instructor-only package ``recsys_grader``, which
students never install.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"

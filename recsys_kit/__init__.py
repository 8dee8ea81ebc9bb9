"""recsys_kit: the shared library of the LLM-powered e-commerce search and recommendation course.

Notebooks teach; this package computes. One module per concept: ``constants``, ``paths``,
``device``, ``encoders``, ``datasets``, ``ranking``, ``lexical``, ``hybrid``, ``rerank``,
``metrics``, ``abtest``, ``simulator`` (online shoppers with their own truth), ``ips``
(unbiased estimates from biased logs), ``embedding_map``. The grader is not part of it: it is
the instructor-only package ``recsys_grader``, which students never install.
"""

__version__ = "0.1.0"

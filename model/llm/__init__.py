"""LLM pre-annotation: any OpenAI-compatible model, repaired, confident, cached and costed.

Public API: ``LLMConfig`` (``config``), ``LLMAnnotator``, ``LLMResult``, ``TokenTagging`` and
``BudgetExceeded`` (``annotator``). Modules: ``client`` (SDK + retries + cache + ledger),
``prompts`` (versioned templates), ``parse`` (tolerant parsing and repair), ``confidence``
(votes and logprobs), ``engine`` (batching, re-asks, thread pool), ``fewshot``, ``cache``,
``ledger``. Nothing here imports torch or Flask.
"""

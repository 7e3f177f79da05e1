"""The offline active-learning simulation: learning curves and equal-cost comparisons of policies.

``python -m model.simulation`` runs it (``loop``); ``python -m model.simulation.plan`` answers a
user's budget question from such runs. Modules, top-down: ``loop`` (arms, rounds, CLI) ->
``oracles`` (gold, LLM, pre-labels, routing purchases) -> ``data`` (data sets and the served
``LocalModel`` each round) and ``cost`` (cost model, LLM profiles, F1 at budgets) -> ``report``
(summary, CSV/JSON/PNG). Not imported by the backend.
"""

"""Machine-learning side of the backend: tokenization, local models, the LLM annotator,
agreement metrics, active-learning strategies and the offline simulation.

Nothing in this package knows about HTTP or Label Studio's transport; `backend/` calls into it.
"""

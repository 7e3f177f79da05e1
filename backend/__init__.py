"""HTTP side of the backend: Label Studio's ML protocol, jobs, the model store and the Label Studio client.

Data flow: Label Studio request -> ``app`` (auth, ``schemas``) -> ``ml.MLBackend`` (``predict``/``fit``)
-> ``model/`` -> Label Studio prediction JSON. Handlers never train; they enqueue (``queue``).
"""

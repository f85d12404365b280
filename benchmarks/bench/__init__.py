"""``foggen bench`` / ``make bench``: the card's table, calibration, tau sweep and speed, one run.

Modules: ``config`` (what to run), ``outcomes`` (edge and cloud passes over the questions),
``tables`` (the card-style table and calibration summaries), ``speed`` (latency, tokens/s,
cold start, memory, the transformers baseline), ``plots`` (PNG), ``markdown`` (the report),
``run`` (the orchestration and CLI), ``tau`` (``foggen tau recommend``).
"""

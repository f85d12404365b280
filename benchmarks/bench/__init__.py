"""``foggen bench`` / ``make bench``: the card's table, calibration, tau sweep and speed, one run.

Modules: ``config`` (what to run), ``outcomes`` (edge and cloud passes over the questions),
``calib`` (calibrators and taus chosen on the calib split, applied to eval), ``tables`` (the
card-style table and calibration summaries), ``signal_tables`` (the routing signals side by
side, RouteLLM's APGR/CPT, the hidden-state fit and its shuffled-label check), ``routellm``
(RouteLLM's metrics as numpy functions), ``speed`` (latency, tokens/s, cold start, memory),
``transformers_baseline`` (transformers ``generate`` on the same token ids, ``[train]`` extra),
``plots`` (PNG), ``md`` (Markdown cells and tables) and ``markdown`` (the report), ``run`` (the
orchestration and CLI), ``tau`` (``foggen tau recommend``).
"""

"""The kiosk HTTP service (``foggen serve``): one model behind a bounded queue, a local API.

Modules: ``config`` (ServiceConfig), ``app`` (the FastAPI app factory and routes),
``admission`` (the bounded queue in front of the model), ``decision_log`` (append-only JSONL),
``metrics`` (Prometheus), ``background`` (model loading and the outbox flusher), ``server``
(bind, run, drain), ``log_summary`` (reading the log). FastAPI, uvicorn and prometheus-client
come with the ``[serve]`` extra and are imported only by ``app``, ``metrics`` and ``server``.
"""

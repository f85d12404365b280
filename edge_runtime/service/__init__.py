"""The kiosk HTTP service (``foggen serve``): one model behind a bounded queue, a local API.

Modules: ``config`` (ServiceConfig), ``app`` (the FastAPI app factory, ``/v1/answer`` and the
health, readiness and metrics routes), ``chat_api`` (the OpenAI chat API: reading the MCQ,
shaping replies and errors) and ``chat_routes`` (its routes, through which one node is another's
cloud), ``idempotency`` (``Idempotency-Key`` replays, stored in SQLite), ``body`` (reading a
request body within its size limit), ``admission`` (the bounded queue in front of the model),
``state`` (Service: what one app owns, shared by the routes of ``app`` and ``chat_routes``),
``decision_log`` (append-only JSONL), ``log_summary`` (reading the log), ``metrics``
(Prometheus), ``background`` (model loading and the outbox flusher), ``server`` (bind, run,
drain), ``errors`` (HTTP status and ``error_kind`` per error). FastAPI (with pydantic), uvicorn
and prometheus-client come with the ``[serve]`` extra and are imported only by ``app``,
``chat_api``, ``chat_routes``, ``state``, ``body``, ``metrics`` and ``server``; the rest import
without it (``foggen log`` needs no extra).
"""

"""OpenAI-compatible cloud escalation client: not built yet.

Tracked in issue 5. Until then the edge runtime answers escalated questions locally and says so
in the decision record (``answer_source: edge_fallback``, ``escalation: unavailable``).
"""

"""``make fog``: three tiers on 127.0.0.1 (kiosk 270M -> gateway 1.5B -> simulated cloud),
each tier's per-question outcome collected once, the curves computed offline."""

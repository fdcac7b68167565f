"""The embedded HTTP endpoint (``/metrics``, ``/health``, ``/traces``) and the trace store it serves.

Serving depends on :mod:`llmtel.readers` (the Prometheus bridge renders the scrape), never the reverse.
"""

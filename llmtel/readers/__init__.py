"""Metric readers and exporters llmtel plugs into ``configure()``: the Prometheus bridge and the cloud backends."""

"""llmtel's private runtime: the recording API's implementation, the error policy, the fast path.

Nothing here is public: users import from :mod:`llmtel`, instrumentations from
:mod:`llmtel.instrumentation`. Modules here import the registry (:mod:`llmtel.semconv`)
and each other, never :mod:`llmtel.config`, :mod:`llmtel.serving` or :mod:`llmtel.cli`.
"""

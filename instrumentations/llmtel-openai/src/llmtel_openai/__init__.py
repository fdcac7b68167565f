"""llmtel instrumentation for the ``openai`` Python client.

::

    from llmtel_openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument()

or, with no code change, ``opentelemetry-instrument python app.py`` (entry point
``llmtel_openai``; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=llmtel_openai`` turns it off).

Chat completions (``create``, ``parse``, ``stream``), text completions,
embeddings and the Responses API (``create``, ``parse``, ``stream``), sync and
async, each recorded as one ``llmtel.instrumentation.llm_call``. When the contrib
``opentelemetry-instrumentation-openai-v2`` wrapper is applied to a method as
well, that method is left to contrib (see docs/instrumentations.md).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Collection
from typing import Any

from opentelemetry._logs import get_logger
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from llmtel_openai._wrappers import Settings, Target, make_wrapper

__all__ = ["TARGETS", "OpenAIInstrumentor", "__version__"]
__version__ = "0.1.0"

logger = logging.getLogger("llmtel_openai")

_instruments = ("openai >= 1.66.0, < 4",)

_CHAT = "openai.resources.chat.completions"
_RESPONSES = "openai.resources.responses"

#: Every method wrapped, where the installed ``openai`` has it.
TARGETS: tuple[Target, ...] = (
    Target(_CHAT, "Completions", "create", "chat", "chat"),
    Target(_CHAT, "AsyncCompletions", "create", "chat", "chat"),
    Target(_CHAT, "Completions", "parse", "chat", "chat"),
    Target(_CHAT, "AsyncCompletions", "parse", "chat", "chat"),
    # Before openai 1.92 the structured-output helper lived under beta.
    Target("openai.resources.beta.chat.completions", "Completions", "parse", "chat", "chat"),
    Target("openai.resources.beta.chat.completions", "AsyncCompletions", "parse", "chat", "chat"),
    Target("openai.resources.completions", "Completions", "create", "text_completion", "completion"),
    Target("openai.resources.completions", "AsyncCompletions", "create", "text_completion", "completion"),
    Target("openai.resources.embeddings", "Embeddings", "create", "embeddings", "embeddings"),
    Target("openai.resources.embeddings", "AsyncEmbeddings", "create", "embeddings", "embeddings"),
    Target(_RESPONSES, "Responses", "create", "chat", "responses"),
    Target(_RESPONSES, "AsyncResponses", "create", "chat", "responses"),
    Target(_RESPONSES, "Responses", "parse", "chat", "responses"),
    Target(_RESPONSES, "AsyncResponses", "parse", "chat", "responses"),
)


def _resolve(target: Target) -> Any:
    try:
        module = importlib.import_module(target.module)
    except ImportError:
        return None
    klass = getattr(module, target.cls, None)
    return klass if klass is not None and target.method in vars(klass) else None


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Records ``openai`` client calls through llmtel.

        ``instrument(logger_provider=...)`` picks the LoggerProvider for content
        events (default: the global one); content is only captured when
    XX
        ``capture_content`` is on. Spans and metrics go through llmtel's providers.
    """

    def __init__(self) -> None:
        self._wrapped: list[Any] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        import openai

        from llmtel_openai import _wrappers

        legacy = getattr(importlib.import_module("openai._legacy_response"), "LegacyAPIResponse", None)
        responses = importlib.import_module("openai._response")
        sync_response = getattr(responses, "APIResponse", None)
        async_response = getattr(responses, "AsyncAPIResponse", None)
        azure = tuple(t for t in (getattr(openai, "AzureOpenAI", None), getattr(openai, "AsyncAzureOpenAI", None)) if t)
        settings = Settings(
            event_logger=get_logger("llmtel_openai", __version__, logger_provider=kwargs.get("logger_provider")),
            legacy_response=(legacy,) if legacy is not None else (),
            api_response=(sync_response,) if sync_response is not None else (),
            async_api_response=(async_response,) if async_response is not None else (),
            stream_types=(openai.Stream, openai.AsyncStream),
            azure_types=azure,
        )
        self._wrapped = []
        for target in TARGETS:
            klass = _resolve(target)
            if klass is None:
                continue
            original = vars(klass)[target.method]
            if any(m.startswith(_wrappers.CONTRIB_MODULE) for m in _wrappers._wrapper_modules(original)):
                logger.info(
                    "llmtel_openai: %s.%s is instrumented by openai_v2; calls through it stay contrib's",
                    target.cls,
                    target.method,
                )
            is_async = inspect.iscoroutinefunction(inspect.unwrap(original))
            wrap_function_wrapper(klass, target.method, make_wrapper(target, is_async, settings))
            self._wrapped.append((klass, target.method))

    def _uninstrument(self, **kwargs: Any) -> None:
        for klass, method in self._wrapped:
            unwrap(klass, method)
        self._wrapped = []

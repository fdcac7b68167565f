"""Content capture modes: where prompts and completions may go, if anywhere.

The values are those of ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` as
the contrib GenAI instrumentations (opentelemetry-util-genai) read it, plus the
booleans llmtel's own ``capture_content`` option has always taken.
"""

from __future__ import annotations

import enum

__all__ = ["CaptureMode", "parse_capture_mode"]


class CaptureMode(enum.Enum):
    """Where captured content is recorded. Off (:attr:`NO_CONTENT`) unless the user opts in.

    Each mode says ``on_span``: content goes on span attributes (``gen_ai.input.messages`` ...),
    and ``as_event``: content goes in a ``gen_ai.client.inference.operation.details`` event (logs API).
    """

    NO_CONTENT = "no_content"
    SPAN_ONLY = "span_only"
    EVENT_ONLY = "event_only"
    SPAN_AND_EVENT = "span_and_event"

    def __init__(self, value: str) -> None:
        # Plain attributes, not properties: instrumentations read them on every call.
        self.on_span: bool = value in ("span_only", "span_and_event")
        self.as_event: bool = value in ("event_only", "span_and_event")

    def __bool__(self) -> bool:
        return self is not CaptureMode.NO_CONTENT

    @classmethod
    def parse(cls, value: object) -> CaptureMode:
        """The mode for a bool, a mode, or any spelling of ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``."""
        return parse_capture_mode(value)


_WORDS: dict[str, CaptureMode] = {
    **{word: CaptureMode.SPAN_AND_EVENT for word in ("true", "1", "yes", "on")},
    **{word: CaptureMode.NO_CONTENT for word in ("false", "0", "no", "off")},
    **{mode.value: mode for mode in CaptureMode},
}


def parse_capture_mode(value: object) -> CaptureMode:
    """A capture mode from a boolean, a :class:`CaptureMode` or any accepted word (case-insensitive).

    Raises ValueError listing the accepted words for anything else.
    """
    if isinstance(value, CaptureMode):
        return value
    if isinstance(value, bool):
        return CaptureMode.SPAN_AND_EVENT if value else CaptureMode.NO_CONTENT
    if isinstance(value, str) and value.strip().lower() in _WORDS:
        return _WORDS[value.strip().lower()]
    modes = ", ".join(mode.value for mode in CaptureMode)
    raise ValueError(f"expected true, false, {modes} (any case), got {value!r}")

"""Offline transcription of callback recordings with Vosk.

Public surface for the rest of the gateway:

- :func:`asr.worker_core.transcribe_recording` - legs in, :class:`TranscriptResult` out
  (synchronous, one process);
- :class:`asr.pool.AsrPool` - the same off the event loop, in a process pool;
- :class:`TranscriptionFailed` - every failure, with a ``reason`` code and ``retryable``;
- :mod:`asr.models` / :mod:`asr.cli` - the model registry and ``minyi asr``.

Importing this package does not import Vosk; only worker processes load it.
"""

from asr.errors import FailureReason, TranscriptionFailed
from asr.models import ModelRegistry, ModelSpec
from asr.transcript import Segment, TranscriptResult, Word

__all__ = [
    "FailureReason",
    "ModelRegistry",
    "ModelSpec",
    "Segment",
    "TranscriptResult",
    "TranscriptionFailed",
    "Word",
]

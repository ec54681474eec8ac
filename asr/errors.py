"""Why a recording could not be transcribed, as one typed exception with a reason code.

Every failure of the ASR path ends as a :class:`TranscriptionFailed`; the worker turns it
into a ``transcript.failed`` event carrying ``reason`` and ``detail``, and uses
``retryable`` to choose between "leave the job unacknowledged" and "dead-letter it".
The exception crosses process boundaries (it is raised in a pool worker and re-raised in
the event loop), so it pickles by its constructor arguments.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.privacy import mask_numbers


class FailureReason(StrEnum):
    """Reason codes carried by ``transcript.failed`` events; values are the wire form."""

    CORRUPT = "corrupt"  # not a readable audio file (bad header, truncated data)
    UNSUPPORTED_FORMAT = "unsupported_format"  # readable, but a codec we do not decode
    TOO_SHORT = "too_short"  # shorter than AudioLimits.min_duration_s
    TOO_LONG = "too_long"  # longer than AudioLimits.max_duration_s: refuse, never stall
    SILENT = "silent"  # no leg holds enough audio above the speech threshold
    MISSING = "missing"  # the recording file does not exist (yet)
    UNREADABLE = "unreadable"  # exists but the OS refuses to read it (permissions, I/O)
    DECODER_ERROR = "decoder_error"  # Vosk refused the audio
    MODEL_UNAVAILABLE = "model_unavailable"  # model files missing or failing to load
    WORKER_CRASHED = "worker_crashed"  # the pool process died under this job
    TIMEOUT = "timeout"  # the job ran past the pool's job timeout
    INTERNAL_ERROR = "internal_error"  # a bug in this package; logged with a traceback
    # Given by the stream worker (asr/worker.py) when it dead-letters a job:
    POISON = "poison"  # retryable failures (or killed workers) past the job's retry limit
    MALFORMED = "malformed"  # the stream entry is not a valid job


# Failures that say nothing about the recording itself: running the job again later (or
# on another host) can succeed. A recording that keeps failing this way is a poison file
# and is dead-lettered by the stream worker after its retry limit.
RETRYABLE_REASONS = frozenset(
    {
        FailureReason.MISSING,
        FailureReason.UNREADABLE,
        FailureReason.MODEL_UNAVAILABLE,
        FailureReason.WORKER_CRASHED,
        FailureReason.TIMEOUT,
        FailureReason.INTERNAL_ERROR,
    }
)


class TranscriptionFailed(Exception):
    """A recording (or one leg of it) could not be transcribed.

    ``reason`` is a :class:`FailureReason`; ``detail`` is one operator-facing line with
    phone numbers masked; ``leg`` names the leg at fault when there is one.
    """

    def __init__(self, reason: FailureReason | str, detail: str = "", leg: str | None = None):
        self.reason = FailureReason(reason)
        self.detail = mask_numbers(detail)
        self.leg = leg
        super().__init__(self.reason, self.detail, leg)

    def __reduce__(self) -> tuple[type[TranscriptionFailed], tuple[str, str, str | None]]:
        # Pickle by constructor arguments so subclasses survive the trip back from a
        # pool worker with their type intact.
        return (type(self), (self.reason.value, self.detail, self.leg))

    @property
    def retryable(self) -> bool:
        """True when the same job may succeed later; False for a fault in the recording."""
        return self.reason in RETRYABLE_REASONS

    def __str__(self) -> str:
        where = f" [{self.leg}]" if self.leg else ""
        return f"{self.reason.value}{where}: {self.detail}" if self.detail else self.reason.value


class AudioRejected(TranscriptionFailed):
    """Raised by :mod:`asr.audio` for input that is corrupt, unsupported, too short or silent."""

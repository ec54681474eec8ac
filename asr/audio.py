"""Reading the recordings Asterisk writes, and deciding whether they are worth decoding.

Formats (the ones Asterisk's ``MixMonitor``/``Monitor`` can write for a call leg):

- ``.wav``: RIFF/WAVE, 16-bit signed PCM, mono, 8 kHz (``wav``) or 16 kHz (``wav16``),
  as ``format_wav`` writes it; also 8-bit unsigned PCM, G.711 mu-law (format tag 7) and
  A-law (format tag 6), and WAVE_FORMAT_EXTENSIBLE wrapping any of those. More than one
  channel is mixed down (or one channel picked).
- raw ``.sln``/``.raw`` (signed linear 16-bit little-endian at 8 kHz) and its
  ``.sln16``/``.sln24``/.../``.sln192`` siblings, raw mu-law (``.ulaw .ul .mu .ulw
  .pcm``) and A-law (``.alaw .al .alw``) at 8 kHz: the extensions ``format_sln`` and
  ``format_pcm`` register.
- anything else (``.gsm``, ``.g722``, ``.wav49``/GSM-in-WAV, MP3...) is
  ``unsupported_format``.

Checks, in the order they run, each a :class:`~asr.errors.AudioRejected` with a reason:

1. ``missing``/``unreadable`` from the OS; ``corrupt`` when a WAV header is not one
   (no RIFF/WAVE magic, no ``fmt``/``data`` chunk, a ``data`` chunk longer than the
   file: a truncated recording); ``unsupported_format`` for codecs we do not decode.
2. ``too_short`` / ``too_long`` from the header's duration, before any sample is read.
3. ``silent`` from the samples: fewer than ``min_voiced_s`` seconds of 20 ms frames
   above ``silence_dbfs``. A leg that is only line noise or comfort noise never reaches
   the decoder (Vosk tends to hallucinate short words in noise).

Two lenient cases are deliberate: a ``data`` size of 0 or 0xFFFFFFFF followed by audio
means the writer died before it could patch the header (Asterisk writes the sizes on
close), so the audio up to the end of the file is used; a trailing partial frame is
dropped. Raw files have no header, so any bytes are "valid" samples; garbage there is
caught, at best, by the level check.

Samples are produced as ``array('h')`` blocks of mono 16-bit audio at the file's own
rate (:func:`iter_samples`); rate conversion lives in :mod:`asr.resample`.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from operator import mul
from pathlib import Path
from typing import BinaryIO

from asr.errors import AudioRejected, FailureReason


class Encoding(StrEnum):
    """Sample encodings we decode."""

    PCM_S16LE = "pcm_s16le"
    PCM_U8 = "pcm_u8"
    ULAW = "ulaw"  # ITU-T G.711 mu-law
    ALAW = "alaw"  # ITU-T G.711 A-law


# WAVE format tags (Microsoft RIFF spec; RFC 2361 appendix A).
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# Raw formats by extension, as Asterisk's format_sln.c and format_pcm.c register them.
RAW_FORMATS: dict[str, tuple[Encoding, int]] = {
    "sln": (Encoding.PCM_S16LE, 8000),
    "raw": (Encoding.PCM_S16LE, 8000),
    "sln12": (Encoding.PCM_S16LE, 12000),
    "sln16": (Encoding.PCM_S16LE, 16000),
    "sln24": (Encoding.PCM_S16LE, 24000),
    "sln32": (Encoding.PCM_S16LE, 32000),
    "sln44": (Encoding.PCM_S16LE, 44100),
    "sln48": (Encoding.PCM_S16LE, 48000),
    "sln96": (Encoding.PCM_S16LE, 96000),
    "sln192": (Encoding.PCM_S16LE, 192000),
    "ulaw": (Encoding.ULAW, 8000),
    "ul": (Encoding.ULAW, 8000),
    "mu": (Encoding.ULAW, 8000),
    "ulw": (Encoding.ULAW, 8000),
    "pcm": (Encoding.ULAW, 8000),
    "alaw": (Encoding.ALAW, 8000),
    "al": (Encoding.ALAW, 8000),
    "alw": (Encoding.ALAW, 8000),
}
WAV_EXTENSIONS = frozenset({"wav", "wav16"})

_HEADER_PROBE_BYTES = 1 << 16  # fmt and data chunks come first in every writer we know
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """Thresholds for rejecting a leg before decoding (defaults suit callback recordings)."""

    min_duration_s: float = 0.5  # a leg shorter than this cannot hold an answer
    max_duration_s: float = 2 * 3600.0  # a callback is minutes; hours means a runaway file
    silence_dbfs: float = -45.0  # frame RMS above this counts as voiced; line noise is lower
    min_voiced_s: float = 0.3  # at least one short word's worth of voiced frames
    frame_s: float = 0.02


DEFAULT_LIMITS = AudioLimits()


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """Where a recording's samples are and how they are encoded."""

    path: Path
    container: str  # "wav" or "raw"
    encoding: Encoding
    sample_rate: int
    channels: int
    data_offset: int
    data_bytes: int

    @property
    def bytes_per_frame(self) -> int:
        """Bytes per sample frame (all channels)."""
        width = 2 if self.encoding is Encoding.PCM_S16LE else 1
        return width * self.channels

    @property
    def frames(self) -> int:
        """Number of complete sample frames."""
        return self.data_bytes // self.bytes_per_frame

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sample_rate


@dataclass(frozen=True, slots=True)
class Levels:
    """Loudness summary of a leg, used for the silence decision and logged with it."""

    duration_s: float
    voiced_s: float
    peak_dbfs: float
    rms_dbfs: float


def _corrupt(path: Path, why: str) -> AudioRejected:
    return AudioRejected(FailureReason.CORRUPT, f"{path.name}: {why}")


def _unsupported(path: Path, why: str) -> AudioRejected:
    return AudioRejected(FailureReason.UNSUPPORTED_FORMAT, f"{path.name}: {why}")


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise AudioRejected(FailureReason.MISSING, f"{path.name}: no such file") from None
    except IsADirectoryError:
        raise _corrupt(path, "is a directory") from None
    except OSError as exc:
        raise AudioRejected(FailureReason.UNREADABLE, f"{path.name}: {exc.strerror}") from None


def probe(path: Path) -> AudioInfo:
    """Read a recording's header and say where its samples are; reject what we can't read."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    with _open(path) as f:
        size = _file_size(f)
        if suffix in WAV_EXTENSIONS:
            return _probe_wav(path, f, size)
    if suffix in RAW_FORMATS:
        encoding, rate = RAW_FORMATS[suffix]
        return AudioInfo(path, "raw", encoding, rate, 1, 0, size)
    raise _unsupported(path, f"unknown recording format {path.suffix or '(no extension)'!r}")


def _file_size(f: BinaryIO) -> int:
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    return size


def _probe_wav(path: Path, f: BinaryIO, size: int) -> AudioInfo:
    head = f.read(_HEADER_PROBE_BYTES)
    if len(head) < 12:
        raise _corrupt(path, f"{len(head)} bytes, too small for a WAV header")
    magic, _riff_size, wave = struct.unpack_from("<4sI4s", head)
    if magic in (b"RIFX", b"RF64") and wave == b"WAVE":
        raise _unsupported(path, f"{magic.decode()} WAV variant")
    if magic != b"RIFF" or wave != b"WAVE":
        raise _corrupt(path, "not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(head):
        chunk_id, chunk_size = struct.unpack_from("<4sI", head, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(path, head[body : body + chunk_size])
        elif chunk_id == b"data":
            if fmt is None:
                raise _corrupt(path, "data chunk before fmt chunk")
            available = size - body
            if chunk_size in _UNKNOWN_SIZES:
                chunk_size = available  # writer died before patching the header
            elif chunk_size > available:
                raise _corrupt(
                    path,
                    f"truncated: header declares {chunk_size} data bytes, file has {available}",
                )
            tag, channels, rate, bits, _ = fmt
            encoding = _wav_encoding(path, tag, bits)
            return AudioInfo(path, "wav", encoding, rate, channels, body, chunk_size)
        pos = body + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
    if fmt is None:
        raise _corrupt(path, "no fmt chunk")
    raise _corrupt(path, "no data chunk")


def _parse_fmt(path: Path, body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) < 16:
        raise _corrupt(path, f"fmt chunk of {len(body)} bytes")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 26:
            raise _corrupt(path, "WAVE_FORMAT_EXTENSIBLE without its extension")
        # The sub-format GUID starts with the classic format tag.
        (tag,) = struct.unpack_from("<H", body, 24)
    if channels < 1 or rate < 1 or block_align < 1:
        raise _corrupt(path, f"fmt chunk says {channels} channels at {rate} Hz")
    return tag, channels, rate, bits, block_align


def _wav_encoding(path: Path, tag: int, bits: int) -> Encoding:
    if tag == WAVE_FORMAT_PCM and bits == 16:
        return Encoding.PCM_S16LE
    if tag == WAVE_FORMAT_PCM and bits == 8:
        return Encoding.PCM_U8
    if tag == WAVE_FORMAT_MULAW and bits == 8:
        return Encoding.ULAW
    if tag == WAVE_FORMAT_ALAW and bits == 8:
        return Encoding.ALAW
    raise _unsupported(path, f"WAV format tag 0x{tag:04x} with {bits}-bit samples")


def check_duration(info: AudioInfo, limits: AudioLimits = DEFAULT_LIMITS) -> None:
    """Reject a leg whose header says it is too short or too long to decode."""
    duration = info.duration_s
    if duration < limits.min_duration_s:
        raise AudioRejected(
            FailureReason.TOO_SHORT,
            f"{info.path.name}: {duration:.2f} s, under {limits.min_duration_s:g} s",
        )
    if duration > limits.max_duration_s:
        raise AudioRejected(
            FailureReason.TOO_LONG,
            f"{info.path.name}: {duration:.0f} s, over {limits.max_duration_s:g} s",
        )


# ---- G.711 expansion: 256-entry tables built from the reference algorithm ---------------
# ITU-T G.711 as implemented in the public-domain Sun Microsystems g711.c (the same code
# sox and Asterisk's ulaw/alaw tables derive from); values are 16-bit linear.


def _ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    t = ((code & 0x0F) << 3) + 0x84
    t <<= (code & 0x70) >> 4
    return 0x84 - t if code & 0x80 else t - 0x84


def _alaw_to_linear(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        t += 8
    elif segment == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (segment - 1)
    return t if code & 0x80 else -t


ULAW_TABLE: tuple[int, ...] = tuple(_ulaw_to_linear(c) for c in range(256))
ALAW_TABLE: tuple[int, ...] = tuple(_alaw_to_linear(c) for c in range(256))
_U8_TABLE: tuple[int, ...] = tuple((c - 128) << 8 for c in range(256))


def decode_samples(data: bytes, encoding: Encoding) -> array[int]:
    """Turn encoded bytes (whole frames) into 16-bit linear samples."""
    if encoding is Encoding.PCM_S16LE:
        samples = array("h")
        samples.frombytes(data[: len(data) & ~1])
        if sys.byteorder == "big":
            samples.byteswap()  # RIFF and Asterisk's slin are little-endian
        return samples
    table = {Encoding.ULAW: ULAW_TABLE, Encoding.ALAW: ALAW_TABLE, Encoding.PCM_U8: _U8_TABLE}
    return array("h", map(table[encoding].__getitem__, data))


def _downmix(samples: array[int], channels: int, channel: int | None) -> array[int]:
    if channels == 1:
        return samples
    if channel is not None:
        return samples[channel::channels]
    columns = [samples[c::channels] for c in range(channels)]
    return array("h", (sum(frame) // channels for frame in zip(*columns, strict=True)))


def iter_samples(
    info: AudioInfo, *, block_frames: int = 8000, channel: int | None = None
) -> Iterator[array[int]]:
    """Yield the recording as blocks of mono 16-bit samples at ``info.sample_rate``.

    Multi-channel audio is averaged to mono unless ``channel`` picks one (for recordings
    that keep the two directions of a call in two channels).
    """
    if channel is not None and not 0 <= channel < info.channels:
        raise ValueError(f"channel {channel} of a {info.channels}-channel recording")
    frame = info.bytes_per_frame
    remaining = info.frames * frame
    with _open(info.path) as f:
        f.seek(info.data_offset)
        while remaining > 0:
            data = f.read(min(remaining, block_frames * frame))
            if not data:
                # The file shrank since probe(): same verdict as a truncated header.
                raise _corrupt(info.path, "file ended before its data chunk did")
            data = data[: len(data) - len(data) % frame]
            remaining -= len(data)
            yield _downmix(decode_samples(data, info.encoding), info.channels, channel)


def _dbfs(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude / 32768.0) if amplitude > 0 else -math.inf


def measure_levels(info: AudioInfo, limits: AudioLimits = DEFAULT_LIMITS) -> Levels:
    """Measure peak, RMS and voiced time (frames louder than ``limits.silence_dbfs``)."""
    frame_len = max(1, round(limits.frame_s * info.sample_rate))
    # Compare energies, not levels: no square root or log per frame.
    threshold = frame_len * (32768.0 * 10.0 ** (limits.silence_dbfs / 20.0)) ** 2
    voiced_frames = 0
    total_energy = 0
    count = 0
    peak = 0
    carry: list[int] = []
    for block in iter_samples(info):
        samples = carry + block.tolist() if carry else block.tolist()
        usable = len(samples) - len(samples) % frame_len
        for start in range(0, usable, frame_len):
            frame = samples[start : start + frame_len]
            energy = sum(map(mul, frame, frame))
            total_energy += energy
            if energy > threshold:
                voiced_frames += 1
        carry = samples[usable:]
        count += len(block)
        if block:
            peak = max(peak, max(block), -min(block))
    total_energy += sum(map(mul, carry, carry))
    rms = math.sqrt(total_energy / count) if count else 0.0
    return Levels(
        duration_s=count / info.sample_rate,
        voiced_s=voiced_frames * frame_len / info.sample_rate,
        peak_dbfs=_dbfs(peak),
        rms_dbfs=_dbfs(rms),
    )


def check_levels(info: AudioInfo, levels: Levels, limits: AudioLimits = DEFAULT_LIMITS) -> None:
    """Reject a leg without enough voiced audio to hold speech."""
    if levels.voiced_s < limits.min_voiced_s:
        raise AudioRejected(
            FailureReason.SILENT,
            f"{info.path.name}: {levels.voiced_s:.2f} s above {limits.silence_dbfs:g} dBFS "
            f"(peak {levels.peak_dbfs:.1f} dBFS, RMS {levels.rms_dbfs:.1f} dBFS)",
        )


def inspect(path: Path, limits: AudioLimits = DEFAULT_LIMITS) -> tuple[AudioInfo, Levels]:
    """Run every check on a recording; return its header and levels if it is decodable."""
    info = probe(path)
    check_duration(info, limits)
    levels = measure_levels(info, limits)
    check_levels(info, levels, limits)
    return info, levels


def read_samples(path: Path, *, channel: int | None = None) -> tuple[array[int], int]:
    """Read a whole recording into memory as mono 16-bit samples; returns (samples, rate)."""
    info = probe(path)
    samples = array("h")
    for block in iter_samples(info, channel=channel):
        samples.extend(block)
    return samples, info.sample_rate

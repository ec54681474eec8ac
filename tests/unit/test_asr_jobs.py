"""ASR jobs as the dialer enqueues them: a job the worker would dead-letter is refused at
the door (no Redis needed)."""

from __future__ import annotations

import pytest

from asr import jobs


def test_enqueue_refuses_a_job_the_worker_would_dead_letter() -> None:
    with pytest.raises(jobs.MalformedJob, match="absolute"):
        jobs.AsrJob.from_mapping({"job_id": "j", "survey_id": "s", "legs": {"citizen": "x.wav"}})
    with pytest.raises(jobs.MalformedJob, match="citizen"):
        jobs.AsrJob.from_mapping({"job_id": "j", "survey_id": "s", "legs": {"agent": "/x.wav"}})
    ok = jobs.AsrJob.from_mapping({"job_id": "j", "survey_id": "s", "legs": {"mixed": "/x.wav"}})
    assert jobs.parse_job(jobs.dumps(ok.to_json())) == ok

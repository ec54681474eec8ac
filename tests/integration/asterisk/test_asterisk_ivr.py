"""The automated survey (IVR) for citizens who did not reply to the SMS, on a real
Asterisk: the simulated citizen presses keys with SendDTMF (RFC 4733 over loopback)."""

from __future__ import annotations

import pytest

from devstack.asterisk import AsteriskInfo, wav_rms
from gateway.dialer.asterisk import IVR_CONTEXT

from .amitools import AmiClient, new_channel_id, user_event, wait_wav_closed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _vars(channel_id: str) -> dict[str, str]:
    return {
        "MINYI_SURVEY_ID": "survey-2",
        "MINYI_ATTEMPT_ID": "attempt-7",
        "MINYI_REC_BASENAME": f"ivr-{channel_id[-12:]}",
    }


async def test_unsatisfied_3_records_the_reason_by_voice(
    ami: AmiClient, asterisk: AsteriskInfo
) -> None:
    cid = new_channel_id()
    ami.originate("13800010003", IVR_CONTEXT, _vars(cid), cid)
    result = await ami.wait_for(user_event(cid, "MinyiIvrResult"), "IVR result")
    assert result["Result"] == "3"
    reason_file = result["ReasonRecording"]
    assert reason_file == f"ivr-{cid[-12:]}-reason.wav"
    ended = await ami.wait_for(user_event(cid, "MinyiIvrEnded"), "IVR ended", limit_s=60)
    assert ended["Result"] == "3"
    assert ended["ReasonRecording"] == reason_file
    # The citizen hung up while speaking; 'k' kept what was said.
    assert ended["RecordStatus"] == "HANGUP"
    path = asterisk.recordings_dir / reason_file
    await wait_wav_closed(path)
    assert wav_rms(path) > 0.01


async def test_invalid_key_gets_one_retry(ami: AmiClient) -> None:
    cid = new_channel_id()
    ami.originate("13800010009", IVR_CONTEXT, _vars(cid), cid)
    ended = await ami.wait_for(user_event(cid, "MinyiIvrEnded"), "IVR ended", limit_s=60)
    assert ended["Result"] == "1"
    assert ended["Stage"] == "done"
    assert ended["ReasonRecording"] == ""

"""Property-based fuzzing of the HTTP API (Hypothesis) against the real aiohttp
application on the real redis-server: ``POST /v1/surveys`` (one and a batch), the
disposition and the recheck, with the hostile requests of devstack/fuzz.py (lone
surrogates, control characters, wrong types, huge values, bodies no parser likes, odd
charsets).

For every probe: the answer is a JSON object (with its reason when it is an error),
its status is below 500, and nothing invalid is in Redis afterwards. The example count
is bounded so that the suite stays fast; bench/fuzz_api.py is the long run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.fuzz import Probe, answer_problem, prepare_callback, probes, stored_problems
from devstack.localstack import recent_service_time
from gateway.store.surveys import Store
from tests.integration.api_harness import TOKEN, Client, api_client, api_settings

pytestmark = pytest.mark.integration

SETTINGS = api_settings()
SERVICES = tuple(SETTINGS.surveys.service_names)
TEMPLATES = tuple(SETTINGS.sms.templates)


@pytest.fixture
async def client(store: Store) -> AsyncIterator[Client]:
    await prepare_callback(store)
    async with api_client(store, SETTINGS) as c:
        yield c


# One application and one database for all examples of a test (the examples add up:
# surveys posted twice, a disposition after another), hence the fixture check is off.
# derandomize: the suite runs the same examples every time; the bench explores.
@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(probe=probes(recent_service_time()))
async def test_every_hostile_request_gets_a_json_4xx_or_is_stored_clean(
    client: Client, store: Store, probe: Probe
) -> None:
    async with client.post(probe.path, data=probe.body, headers=probe.headers(TOKEN)) as r:
        body = await r.read()
        problem = answer_problem(r.status, r.content_type, body)
        assert problem is None, f"{problem}: {r.status} {body[:200]!r}"
        if probe.path == "/v1/surveys" and r.status == 201:
            # created means stored: the record is there before the answer
            answer = await r.json()
            assert await store.get_survey(answer["survey_id"]) is not None
    assert await stored_problems(store.redis, SERVICES, TEMPLATES) == []

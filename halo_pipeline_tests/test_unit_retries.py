"""Retry scheduling, table-driven: for a sequence of answers, the waits the client asks for and
how it ends. httpx's MockTransport plays the server; sleeps are recorded, not slept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from halo_pipeline.halo import HaloClient, HaloRateLimitError, HaloServerError, HaloSettings

TOKEN = httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
OK = httpx.Response(200, json=[])


def answers(*responses: httpx.Response) -> httpx.MockTransport:
    """Token requests always succeed; API requests get `responses` in turn, the last repeated."""
    queue: Iterator[httpx.Response] = iter(responses)
    last = responses[-1]

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return TOKEN
        return next(queue, last)

    return httpx.MockTransport(handle)


def limited(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(429, text="Rate Limit Reached", headers=headers)


def failing(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(503, text="busy", headers=headers)


def roles(*responses: httpx.Response, **settings: float) -> tuple[list[float], Exception | None]:
    sleeps: list[float] = []
    config = HaloSettings(
        base_url="http://halo.test", client_id="c", client_secret="a-long-client-secret", **settings
    )
    with HaloClient(config, transport=answers(*responses), sleep=sleeps.append) as client:
        try:
            client.list_roles()
        except Exception as error:  # noqa: BLE001 - the outcome is what the table checks
            return sleeps, error
    return sleeps, None


@pytest.mark.parametrize(
    ("responses", "settings", "waits", "ends"),
    [
        # The server's Retry-After is obeyed, in either of its forms.
        ((limited("7"), OK), {}, [7.0], None),
        ((failing("3"), OK), {}, [3.0], None),
        # Without one, a 429 waits until this client's oldest request (the token, just sent)
        # leaves the rolling window: the whole window plus a margin, slept a minute at a time.
        ((limited(), OK), {"budget_window_s": 300}, [60.0] * 5 + ["~1"], None),
        ((limited(), OK), {"budget_window_s": 60}, [60.0, "~0.2"], None),
        # 5xx: exponential backoff with jitter, bounded attempts.
        ((failing(), failing(), OK), {"backoff_initial_s": 0.5}, ["0.5..1.0", "1.0..1.5"], None),
        ((failing(),), {"max_attempts": 3}, ["0.5..1.0", "1.0..1.5"], "Gave up after 3 attempts."),
        # A wait longer than HALO_RATE_LIMIT_MAX_WAIT_S is not waited at all.
        ((limited("400"),), {}, [], "Retry-After asked for 400s, longer than HALO_RATE_LIMIT_MAX_WAIT_S."),
        ((limited(),), {"rate_limit_max_wait_s": 0}, [], "Still refused after waiting 0s in all (HALO_RATE_LIMIT_MAX_WAIT_S=0)."),
        # A window's wait, then another would pass the bound: it gives up having waited once.
        ((limited(),), {"budget_window_s": 300}, [60.0] * 5 + ["~1"], "Still refused after waiting 301s in all (HALO_RATE_LIMIT_MAX_WAIT_S=330)."),
    ],
)  # fmt: skip
def test_the_waits_of_each_sequence_of_answers(responses, settings, waits, ends):
    slept, error = roles(*responses, **settings)

    assert len(slept) == len(waits)
    for got, expected in zip(slept, waits, strict=True):
        if isinstance(expected, float):
            assert got == expected
        elif expected.startswith("~"):
            assert abs(got - float(expected[1:])) < 0.2
        else:
            low, high = map(float, expected.split(".."))
            assert low <= got <= high
    if ends is None:
        assert error is None
    else:
        assert isinstance(error, HaloRateLimitError | HaloServerError)
        assert str(error).endswith(ends)

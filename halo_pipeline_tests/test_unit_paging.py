"""Paging arithmetic, table-driven: which pages `fetch_all_pages` asks for, and what it keeps,
for each way a server answers. No HTTP: each case is a function from page number to page."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from halo_pipeline.halo import HaloMalformedResponseError
from halo_pipeline.halo.paging import Page, fetch_all_pages, parse_page

IDS = list(range(2, 25))  # 23 agents


def server(
    *, page_size: int = 5, count: bool = True, enveloped: bool = True, cap: int | None = None,
    ignore_paging: bool = False, stuck_after: int | None = None,
) -> tuple[Callable[[int], Page], list[int]]:  # fmt: skip
    """A fake server over IDS, and the list of pages it was asked for."""
    asked: list[int] = []
    size = min(page_size, cap or page_size)

    def fetch(page_no: int) -> Page:
        asked.append(page_no)
        if ignore_paging:
            return Page([{"id": i} for i in IDS], None, enveloped=False)
        served = min(page_no, stuck_after or page_no)
        rows = [{"id": i} for i in IDS[(served - 1) * size : served * size]]
        return Page(rows, len(IDS) if count and enveloped else None, enveloped)

    return fetch, asked


@pytest.mark.parametrize(
    ("answers", "page_size", "pages"),
    [
        ({}, 5, [1, 2, 3, 4, 5]),  # record_count: pages 2-5 are known at once
        ({"count": False}, 5, [1, 2, 3, 4, 5]),  # the short page 5 ends it
        ({"count": False}, 23, [1, 2]),  # a full last page: an empty page 2 ends it
        ({"enveloped": False}, 5, [1, 2, 3, 4, 5]),
        ({"cap": 4}, 5, [1, 2, 3, 4, 5, 6]),  # asked for 5, served 4: 6 pages, the last short
        ({"cap": 4, "count": False}, 5, [1, 2, 3, 4, 5, 6]),
        ({"ignore_paging": True}, 5, [1]),  # 23 rows for a page of 5: everything at once
        ({"ignore_paging": True}, 23, [1, 2]),  # ... told apart by page 2 repeating page 1
        ({}, 100, [1]),
    ],
)
def test_pages_asked_for_and_every_row_once(answers, page_size, pages):
    fetch, asked = server(page_size=page_size, **answers)

    rows = fetch_all_pages(fetch, page_size=page_size, concurrency=2, where="GET /api/agent")

    assert [row["id"] for row in rows] == IDS
    assert sorted(asked) == pages


@pytest.mark.parametrize(
    ("answers", "repeated_page"),
    [({}, 6), ({"count": False}, 3), ({"enveloped": False}, 3)],
)
def test_a_server_stuck_on_a_page_is_an_error_not_a_loop(answers, repeated_page):
    fetch, _ = server(stuck_after=2, **answers)

    with pytest.raises(HaloMalformedResponseError) as error:
        fetch_all_pages(fetch, page_size=5, concurrency=2, where="GET /api/agent")

    assert str(error.value) == (
        f"GET /api/agent: page {repeated_page} repeats rows already received (the server keeps "
        "answering the same page); stopped after 10 rows rather than keep a partial list."
    )


@pytest.mark.parametrize(
    ("payload", "rows", "count", "enveloped"),
    [
        ([{"id": 2}], [{"id": 2}], None, False),
        ({"results": [{"id": 2}], "record_count": 7}, [{"id": 2}], 7, True),
        ({"agents": [], "record_count": 0.0}, [], 0, True),
        ({"page_no": 1, "data": [{"id": 3}]}, [{"id": 3}], None, True),
    ],
)
def test_a_page_is_read_from_every_envelope(payload, rows, count, enveloped):
    assert parse_page(payload, "GET /api/agent") == Page(rows, count, enveloped)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"a": [], "b": []}, "expected the list under 'results' or 'agents' (or the only list-valued key), got keys ['a', 'b']"),
        ({"results": [], "record_count": "many"}, "record_count is not a number: 'many'"),
        ("rows", "expected a JSON array or an object holding one, got str"),
    ],
)  # fmt: skip
def test_a_page_that_is_not_one_is_named(payload, message):
    with pytest.raises(HaloMalformedResponseError) as error:
        parse_page(payload, "GET /api/agent")
    assert str(error.value) == f"GET /api/agent: {message}"

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
    ignore_paging: bool = False, stuck_after: int | None = None, ids: list[int] = IDS,
    past_end: str = "empty", resend: dict[int, int] | None = None,
) -> tuple[Callable[[int], Page], list[int]]:  # fmt: skip
    """A fake server over `ids`, and the list of pages it was asked for. `past_end` "last"
    answers pages past the end with the last page; `resend` {N: M} answers page N with page M."""
    asked: list[int] = []
    size = min(page_size, cap or page_size)

    def fetch(page_no: int) -> Page:
        asked.append(page_no)
        if ignore_paging:
            return Page([{"id": i} for i in ids], None, enveloped=False)
        served = min(page_no, stuck_after or page_no)
        if past_end == "last":
            served = min(served, -(-len(ids) // size))
        served = (resend or {}).get(page_no, served)
        rows = [{"id": i} for i in ids[(served - 1) * size : served * size]]
        return Page(rows, len(ids) if count and enveloped else None, enveloped)

    return fetch, asked


@pytest.mark.parametrize(
    ("answers", "page_size", "pages"),
    [
        ({}, 5, [1, 2, 3, 4, 5]),  # record_count: pages 2-5 are known at once
        # Without a total, the page that would end the list is read twice, and the end believed
        # once both reads agree and the page after has nothing new.
        ({"count": False}, 5, [1, 2, 3, 4, 5, 5, 6]),  # the short page 5, twice, then page 6
        ({"count": False}, 23, [1, 2, 2, 3]),  # a full last page: empty page 2, twice, then 3
        ({"enveloped": False}, 5, [1, 2, 3, 4, 5, 5, 6]),
        ({"cap": 4}, 5, [1, 2, 3, 4, 5, 6]),  # asked for 5, served 4: 6 pages, the last short
        ({"cap": 4, "count": False}, 5, [1, 2, 3, 4, 5, 6, 6, 7]),
        ({"ignore_paging": True}, 5, [1]),  # 23 rows for a page of 5: everything at once
        # ... told apart by page 2 resending page 1, read twice like any other end
        ({"ignore_paging": True}, 23, [1, 2, 2]),
        # Past the last (full) page, the last page again: read twice, and the list ends there.
        ({"count": False, "ids": IDS[:20], "past_end": "last"}, 5, [1, 2, 3, 4, 5, 5]),
        ({}, 100, [1]),
    ],
)
def test_pages_asked_for_and_every_row_once(answers, page_size, pages):
    fetch, asked = server(page_size=page_size, **answers)

    rows = fetch_all_pages(fetch, page_size=page_size, concurrency=2, where="GET /api/agent")

    assert [row["id"] for row in rows] == answers.get("ids", IDS)
    assert sorted(asked) == pages


def flaky(
    fetch: Callable[[int], Page], wrong: dict[int, int], *, every_time: bool = False
) -> Callable[[int], Page]:
    """`fetch`, but page N answers only its first `wrong[N]` rows the first time it is read,
    or `every_time`."""
    served: set[int] = set()

    def answer(page_no: int) -> Page:
        page = fetch(page_no)
        if page_no not in wrong or (page_no in served and not every_time):
            return page
        served.add(page_no)
        return Page(page.rows[: wrong[page_no]], page.record_count, page.enveloped)

    return answer


@pytest.mark.parametrize(
    ("answers", "wrong", "pages"),
    [
        ({}, {3: 0}, [1, 2, 3, 3, 4, 5]),  # record_count: a short page before the last, read again
        ({}, {3: 2}, [1, 2, 3, 3, 4, 5]),  # (pages 2-5 read concurrently: in any order)
        # Without: read again at once, and the full answer taken; the short page 5 then ends the
        # list once read twice alike (and page 6 has nothing new).
        ({"count": False}, {3: 0}, [1, 2, 3, 3, 4, 5, 5, 6]),
        ({"count": False}, {3: 2}, [1, 2, 3, 3, 4, 5, 5, 6]),
        ({"count": False}, {1: 0}, [1, 1, 2, 3, 4, 5, 5, 6]),  # even the first page
        # The last page: an empty answer must not end the list. Read again, it has its 3 rows;
        # a third read agrees with the second.
        ({"count": False}, {5: 0}, [1, 2, 3, 4, 5, 5, 5, 6]),
        ({"count": False}, {5: 1}, [1, 2, 3, 4, 5, 5, 5, 6]),
    ],
)
def test_a_page_answered_short_once_is_read_again(answers, wrong, pages):
    fetch, asked = server(**answers)

    rows = fetch_all_pages(flaky(fetch, wrong), page_size=5, concurrency=1, where="GET /api/agent")

    assert [row["id"] for row in rows] == IDS
    # With a total, pages 2 on are read concurrently, in any order; without, one by one.
    assert (asked if answers else sorted(asked)) == (pages if answers else sorted(pages))


@pytest.mark.parametrize("keep", [0, 2])
def test_a_page_short_on_every_read_with_rows_after_it_is_an_error(keep):
    fetch, _ = server(count=False)

    with pytest.raises(HaloMalformedResponseError) as error:
        fetch_all_pages(
            flaky(fetch, {3: keep}, every_time=True),
            page_size=5,
            concurrency=1,
            where="GET /api/agent",
        )

    assert str(error.value) == (
        f"GET /api/agent: page 3 answered {keep} rows on every read, fewer than a full page of "
        "5, yet page 4 has more: rows in between would be missing. Stopped rather than keep a "
        "partial list; run the sync again."
    )


@pytest.mark.parametrize(
    ("answers", "repeated_page", "kept"),
    [
        # The total is not reached: pages 3-5 repeat page 2, and so does page 6.
        ({"stuck_after": 2}, 6, 10),
        # Without a total, page 4 answers page 2 again: a repeat of the page before would be
        # the end of the list, a repeat of any other page is a stuck server.
        ({"count": False, "resend": {4: 2}}, 4, 15),
        ({"enveloped": False, "resend": {4: 2}}, 4, 15),
    ],
)
def test_a_server_stuck_on_a_page_is_an_error_not_a_loop(answers, repeated_page, kept):
    fetch, _ = server(**answers)

    with pytest.raises(HaloMalformedResponseError) as error:
        fetch_all_pages(fetch, page_size=5, concurrency=2, where="GET /api/agent")

    assert str(error.value) == (
        f"GET /api/agent: page {repeated_page} repeats rows already received (the server keeps "
        f"answering the same page); stopped after {kept} rows rather than keep a partial list."
    )


def test_without_a_total_a_server_stuck_on_the_page_before_looks_like_the_end():
    # What HaloITSM does past the last page, a stuck server does after page 2: nothing tells
    # them apart without record_count, so the list ends there (and a sync's guard against a
    # large drop is what stands between this and a directory cut short).
    fetch, asked = server(count=False, stuck_after=2)

    rows = fetch_all_pages(fetch, page_size=5, concurrency=1, where="GET /api/agent")

    assert [row["id"] for row in rows] == IDS[:10]
    assert asked == [1, 2, 3, 3]


def test_a_resend_of_the_page_before_answered_once_is_read_again():
    resending, _ = server(count=False, resend={3: 2})
    fetch, _ = server(count=False)
    asked: list[int] = []

    def answer(page_no: int) -> Page:
        asked.append(page_no)
        return resending(page_no) if asked.count(3) == 1 and page_no == 3 else fetch(page_no)

    rows = fetch_all_pages(answer, page_size=5, concurrency=1, where="GET /api/agent")

    assert [row["id"] for row in rows] == IDS
    assert asked == [1, 2, 3, 3, 4, 5, 5, 6]


def reads(fetch: Callable[[int], Page], page_no: int, counts: list[int]) -> Callable[[int], Page]:
    """`fetch`, but the k-th read of page `page_no` answers its first `counts[k]` rows."""
    served: list[int] = []

    def answer(number: int) -> Page:
        page = fetch(number)
        if number != page_no or len(served) == len(counts):
            return page
        served.append(number)
        return Page(page.rows[: counts[len(served) - 1]], page.record_count, page.enveloped)

    return answer


@pytest.mark.parametrize(
    "counts",
    [
        [0, 2, 1],  # no two reads agree
        # The second and third agree on nothing, but the first showed 3 rows: a row seen once
        # is not given up for an emptier answer seen twice.
        [3, 0, 0],
    ],
)
def test_a_last_page_whose_reads_never_settle_is_an_error_after_three_reads(counts):
    fetch, asked = server(count=False)

    with pytest.raises(HaloMalformedResponseError) as error:
        fetch_all_pages(reads(fetch, 5, counts), page_size=5, concurrency=1, where="GET /api/agent")

    assert str(error.value) == (
        f"GET /api/agent: page 5 would end the list, but 3 reads of it disagree ({counts[0]}, "
        f"{counts[1]} and {counts[2]} rows); stopped rather than guess where the list ends. Run "
        "the sync again."
    )
    assert asked == [1, 2, 3, 4, 5, 5, 5]


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
        ({"agents": "none"}, "'agents' is a str, not a list"),
        ({"results": {"id": 2}, "record_count": 1}, "'results' is a dict, not a list"),
        ("rows", "expected a JSON array or an object holding one, got str"),
    ],
)  # fmt: skip
def test_a_page_that_is_not_one_is_named(payload, message):
    with pytest.raises(HaloMalformedResponseError) as error:
        parse_page(payload, "GET /api/agent")
    assert str(error.value) == f"GET /api/agent: {message}"

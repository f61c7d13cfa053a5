"""Reading every page of a HaloITSM list, whichever paging dialect the server speaks.

Halo asks for `pageinate=true&page_no=N&page_size=S`, and servers answer in several ways:
an object with the rows under `results` and `record_count` beside them; the same without
`record_count`; a bare array of one page; or (older versions, which ignore paging) a bare
array of everything. Pages may be smaller than asked. This module turns any of them into the
full list, fetching pages concurrently when the total is known, and stops with an error rather
than loop when a server keeps repeating a page.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from halo_pipeline.halo.errors import HaloMalformedResponseError
from halo_pipeline.halo.models import halo_id

# A safety net for servers that never send a short page: 10,000 pages is a million rows.
MAX_PAGES = 10_000

# Where paged lists keep their rows: `results` on tenants seen live, `agents` in other clients.
LIST_KEYS = ("results", "agents")

Progress = Callable[[int, int | None], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    record_count: int | None
    enveloped: bool


def parse_page(payload: Any, where: str, list_keys: tuple[str, ...] = LIST_KEYS) -> Page:
    """A page in any of the shapes Halo answers with: a bare array, or an object holding the
    array under one of `list_keys`, or under the only key whose value is a list."""
    if isinstance(payload, list):
        return Page(payload, None, enveloped=False)
    if not isinstance(payload, dict):
        raise HaloMalformedResponseError(
            f"{where}: expected a JSON array or an object holding one, got {type(payload).__name__}"
        )
    key = next((k for k in list_keys if isinstance(payload.get(k), list)), None)
    if key is None:
        lists = [k for k, value in payload.items() if isinstance(value, list)]
        named = next((k for k in list_keys if payload.get(k) is not None), None)
        if named is not None and not lists:
            raise HaloMalformedResponseError(
                f"{where}: {named!r} is a {type(payload[named]).__name__}, not a list"
            )
        if len(lists) != 1:
            raise HaloMalformedResponseError(
                f"{where}: expected the list under {' or '.join(map(repr, list_keys))} (or the "
                f"only list-valued key), got keys {sorted(payload)}"
            )
        [key] = lists
    count = payload.get("record_count")
    if count is not None:
        try:
            count = halo_id(count)
        except ValueError:
            raise HaloMalformedResponseError(
                f"{where}: record_count is not a number: {str(count)[:40]!r}"
            ) from None
    return Page(payload[key], count, enveloped=True)


class _Rows(Generic[T]):
    """Rows in arrival order, keyed by id, so repeated rows are noticed and not kept twice.

    Each page's new rows are converted as they arrive (`convert`: a page of JSON objects to the
    values kept), so a list of 100,000 agents is never held as JSON objects all at once.
    """

    def __init__(self, where: str, convert: Callable[[list[dict[str, Any]], str], list[T]]) -> None:
        self.where = where
        self.convert = convert
        self.by_id: dict[int, T] = {}

    def add(self, rows: Iterable[dict[str, Any]], page_no: int) -> int:
        new: dict[int, dict[str, Any]] = {}
        for row in rows:
            try:
                row_id = halo_id(row.get("id") if isinstance(row, dict) else None)
            except ValueError:
                raise HaloMalformedResponseError(
                    f"{self.where}: a row has no integer 'id' (got {str(row)[:120]!r})"
                ) from None
            if row_id not in self.by_id:
                new.setdefault(row_id, row)
        converted = self.convert(list(new.values()), f"{self.where} page {page_no}")
        self.by_id.update(zip(new, converted, strict=True))
        return len(new)

    def is_new(self, row: Any) -> bool:
        try:
            return halo_id(row.get("id") if isinstance(row, dict) else None) not in self.by_id
        except ValueError:
            return True  # add() says what is wrong with it


def as_read(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    return rows


def fetch_all_pages(
    fetch: Callable[[int], Page],
    *,
    page_size: int,
    concurrency: int,
    where: str,
    progress: Progress | None = None,
    convert: Callable[[list[dict[str, Any]], str], list[T]] = as_read,  # type: ignore[assignment]
) -> list[T]:
    """Every row of a paged list, each once, in the order the server gave them, each page
    converted by `convert` (given the page's rows and where they came from) as it arrives."""
    report = progress or (lambda done, known: None)
    rows = _Rows(where, convert)
    first = fetch(1)
    rows.add(first.rows, 1)
    total = first.record_count
    if total is not None and len(rows.by_id) >= total:
        report(1, 1)
        return list(rows.by_id.values())
    if not first.enveloped and len(first.rows) > page_size:
        # More rows than asked for: the server ignored paging and sent everything.
        report(1, 1)
        return list(rows.by_id.values())

    reader = _Reader(fetch, rows, where, report, size=len(first.rows) or page_size)
    if total is not None and first.rows:
        known = math.ceil(total / len(first.rows))
        report(1, known)
        _fetch_concurrently(reader, range(2, known + 1), concurrency, known)
        if len(rows.by_id) >= total:
            return list(rows.by_id.values())
        # Fewer distinct rows than promised: rows moved between pages while we read, or pages
        # repeated. Read on; the checks below decide which.
        reader.read_on(known + 1, bare=False)
    elif first.rows:
        reader.read_on(2, bare=not first.enveloped)
    elif (again := reader.unless_end(1)) is not None:
        rows.add(again.rows, 1)
        reader.size = len(again.rows)
        reader.read_on(2, bare=not again.enveloped)

    if total is not None and len(rows.by_id) < total:
        raise HaloMalformedResponseError(
            f"{where}: received {len(rows.by_id)} distinct rows but record_count is {total}; "
            "the list changed while it was read. Run the sync again."
        )
    return list(rows.by_id.values())


@dataclass
class _Reader(Generic[T]):
    """Pages read one after another, for a server that does not say how many there are."""

    fetch: Callable[[int], Page]
    rows: _Rows[T]
    where: str
    report: Progress
    size: int
    """Rows on a full page: the first page's count, as servers may cap the size asked for."""

    def read_on(self, page_no: int, *, bare: bool) -> None:
        """Pages from `page_no` until the end, believed only once confirmed."""
        while True:
            if page_no > MAX_PAGES:
                raise HaloMalformedResponseError(
                    f"{self.where}: still returning rows after {MAX_PAGES} pages"
                )
            page = self.fetch(page_no)
            self.report(page_no, None)
            if page.rows and self.rows.add(page.rows, page_no) == 0:
                if page_no == 2 and bare:
                    return  # page 2 is page 1 again: the server ignores page_no, sent everything
                raise HaloMalformedResponseError(
                    f"{self.where}: page {page_no} repeats rows already received (the server "
                    f"keeps answering the same page); stopped after {len(self.rows.by_id)} rows "
                    "rather than keep a partial list."
                )
            if len(page.rows) < self.size:
                again = self.unless_end(page_no)
                if again is None:
                    return
                self.rows.add(again.rows, page_no)
            page_no += 1

    def unless_end(self, page_no: int) -> Page | None:
        """Page `page_no` came back empty or short: the end of the list, if the page after it
        has nothing new (None). Otherwise the first answer was wrong (a flaky server), and the
        page read again in full; if it is short again, rows would be missing and it raises."""
        after = self.fetch(page_no + 1)
        if not any(self.rows.is_new(row) for row in after.rows):
            return None
        again = self.fetch(page_no)
        if len(again.rows) < self.size:
            raise HaloMalformedResponseError(
                f"{self.where}: page {page_no} answered {len(again.rows)} rows on every read, "
                f"fewer than a full page of {self.size}, yet page {page_no + 1} has more: rows "
                "in between would be missing. Stopped rather than keep a partial list; run the "
                "sync again."
            )
        return again


def _fetch_concurrently(
    reader: _Reader[T], page_numbers: range, concurrency: int, known: int
) -> None:
    """Pages in order, `concurrency` in flight and as many more waiting: enough to keep the
    connections busy, never so many that fetched pages pile up in memory. A short page before
    the last is read once more: a flaky answer must not become a short list."""
    workers = max(1, concurrency)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="halo-page")
    waiting: deque[Future[Page]] = deque()
    numbers = iter(page_numbers)
    try:
        for page_no in page_numbers:
            while len(waiting) < 2 * workers and (ahead := next(numbers, None)) is not None:
                waiting.append(pool.submit(reader.fetch, ahead))
            page = waiting.popleft().result()
            if page_no < known and len(page.rows) < reader.size:
                page = reader.fetch(page_no)
            reader.rows.add(page.rows, page_no)
            reader.report(page_no, known)
    finally:
        # On failure, drop queued pages instead of fetching them for nothing.
        pool.shutdown(wait=True, cancel_futures=True)

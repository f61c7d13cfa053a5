"""Reading every page of a HaloITSM list, whichever paging dialect the server speaks.

Halo asks for `pageinate=true&page_no=N&page_size=S`, and servers answer in several ways:
an object with the rows under `results` and `record_count` beside them; the same without
`record_count`; a bare array of one page; or (older versions, which ignore paging) a bare
array of everything. Pages may be smaller than asked, and past the last page a server may
answer with the last page again. This module turns any of them into the full list, fetching
pages concurrently when the total is known. Without a total, an answer that would end the list
(an empty or short page, or the last page resent) is believed only once a second read agrees;
a server that repeats any other page stops with an error rather than loop.
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
            row_id = self.row_id(row)
            if row_id not in self.by_id:
                new.setdefault(row_id, row)
        converted = self.convert(list(new.values()), f"{self.where} page {page_no}")
        self.by_id.update(zip(new, converted, strict=True))
        return len(new)

    def ids(self, rows: Iterable[dict[str, Any]]) -> list[int]:
        return [self.row_id(row) for row in rows]

    def new_ids(self, rows: Iterable[dict[str, Any]]) -> set[int]:
        return {row_id for row_id in self.ids(rows) if row_id not in self.by_id}

    def row_id(self, row: Any) -> int:
        try:
            return halo_id(row.get("id") if isinstance(row, dict) else None)
        except ValueError:
            raise HaloMalformedResponseError(
                f"{self.where}: a row has no integer 'id' (got {str(row)[:120]!r})"
            ) from None


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
    reader = _Reader(fetch, rows, where, report, page_size)
    first = fetch(1)
    if not first.rows and first.record_count != 0:
        # An empty first page would end the list at once: believed only as the end is.
        believed = reader.believed(1, [], first)
        if believed is None:
            return _complete(rows, first.record_count, where)
        first = believed
    rows.add(first.rows, 1)
    total = first.record_count
    if total is not None and len(rows.by_id) >= total:
        report(1, 1)
        return list(rows.by_id.values())
    if not first.enveloped and len(first.rows) > page_size:
        # More rows than asked for: the server ignored paging and sent everything.
        report(1, 1)
        return list(rows.by_id.values())

    reader.size, reader.total = len(first.rows), total
    if total is not None:
        known = math.ceil(total / len(first.rows))
        report(1, known)
        _fetch_concurrently(reader, range(2, known + 1), concurrency, known)
        if len(rows.by_id) >= total:
            return list(rows.by_id.values())
        # Fewer distinct rows than promised: rows moved between pages while we read, or pages
        # repeated. Read on; the checks below decide which.
        reader.read_on(known + 1, [])
    else:
        reader.read_on(2, rows.ids(first.rows))
    return _complete(rows, total, where)


def _complete(rows: _Rows[T], total: int | None, where: str) -> list[T]:
    if total is not None and len(rows.by_id) < total:
        raise HaloMalformedResponseError(
            f"{where}: received {len(rows.by_id)} distinct rows but record_count is {total}; "
            "the list changed while it was read. Run the sync again."
        )
    return list(rows.by_id.values())


# Reads of a page that would end a list, at most. A second read must agree with an earlier one
# before the end is believed; a third settles a flaky answer among the first two. A server
# whose answers still disagree is not made trustworthy by reading it more.
END_READS = 3


@dataclass
class _Reader(Generic[T]):
    """Pages read one after another, for a server that does not say how many there are (or
    said, and then sent fewer distinct rows).

    Each request counts against a budget of a few hundred per five minutes, so only an answer
    that would end the list is read again: an empty or short page, or a page that resends the
    one before it (as HaloITSM can past the last page). Ending a list early is what turns one
    flaky answer into agents missing from a sync, and so into removals that never happened.
    """

    fetch: Callable[[int], Page]
    rows: _Rows[T]
    where: str
    report: Progress
    page_size: int
    """The page size asked for."""
    size: int = 0
    """Rows on a full page: the first page's count, as servers may cap the size asked for."""
    total: int | None = None
    """record_count, when the server sends it."""

    def read_on(self, page_no: int, previous: list[int]) -> None:
        """Pages from `page_no` until the end; `previous` holds the ids of the page before."""
        while True:
            if page_no > MAX_PAGES:
                raise HaloMalformedResponseError(
                    f"{self.where}: still returning rows after {MAX_PAGES} pages"
                )
            page = self.believed(page_no, previous)
            if page is None:
                return
            self.rows.add(page.rows, page_no)
            previous = self.rows.ids(page.rows)
            page_no += 1

    def believed(self, page_no: int, previous: list[int], read: Page | None = None) -> Page | None:
        """Page `page_no` (`read`, when it was read already) when it has rows to keep and the
        list goes on after it; None when the list ends with it, its rows kept.

        An answer that would end the list is read again, and believed when a read agrees with
        an earlier one and holds every new row any read showed: a row seen once is not given
        up for an emptier answer seen twice. A full answer of new rows, on any read, is the
        page, and the list goes on from it."""
        reads: list[Page] = []
        while True:
            page = read if read is not None and not reads else self.fetch(page_no)
            if read is None and not reads:
                self.report(page_no, None)
            reads.append(page)
            ending = self._ending(page_no, page, previous)
            if ending is None:
                return page
            if self._agrees(page, reads[:-1]):
                if ending == "short":
                    self.rows.add(page.rows, page_no)
                    self._nothing_after(page_no, len(page.rows))
                return None
            if len(reads) == END_READS:
                counts = [str(len(r.rows)) for r in reads]
                raise HaloMalformedResponseError(
                    f"{self.where}: page {page_no} would end the list, but {END_READS} reads "
                    f"of it disagree ({', '.join(counts[:-1])} and {counts[-1]} rows); "
                    "stopped rather than guess where the list ends. Run the sync again."
                )

    def _ending(self, page_no: int, page: Page, previous: list[int]) -> str | None:
        """How this answer would end the list: "short" (or empty), "resent" (the page before
        it again); None when it has rows to keep and the list goes on. A page of rows already
        received that is not such a resend is an error: the server is stuck, not at the end."""
        if page.rows and not self.rows.new_ids(page.rows):
            if self._resends(page, previous):
                return "resent"
            raise HaloMalformedResponseError(
                f"{self.where}: page {page_no} repeats rows already received (the server "
                f"keeps answering the same page); stopped after {len(self.rows.by_id)} rows "
                "rather than keep a partial list."
            )
        # Before the first page is believed there is no page size: any rows are a page.
        return "short" if not page.rows or len(page.rows) < self.size else None

    def _resends(self, page: Page, previous: list[int]) -> bool:
        """Past the last page HaloITSM may answer with the last page again: the same ids in the
        same order as the full page before, while the total, if sent, is already reached. A
        server stuck on a page looks the same from here, but repeats of any other page, or
        before the total, are not the end."""
        return (
            len(previous) >= self.size
            and self.rows.ids(page.rows) == previous
            and (self.total is None or len(self.rows.by_id) >= self.total)
        )

    def _agrees(self, page: Page, earlier: list[Page]) -> bool:
        ids = self.rows.ids(page.rows)
        if not any(self.rows.ids(other.rows) == ids for other in earlier):
            return False
        shown = set().union(*(self.rows.new_ids(other.rows) for other in earlier))
        return shown <= set(ids)

    def _nothing_after(self, page_no: int, kept: int) -> None:
        """A page short on two reads ends the list if the page after it has nothing new;
        otherwise rows in between would be missing."""
        after = self.fetch(page_no + 1)
        if self.rows.new_ids(after.rows):
            raise HaloMalformedResponseError(
                f"{self.where}: page {page_no} answered {kept} rows on every read, fewer than a "
                f"full page of {self.size or self.page_size}, yet page {page_no + 1} has more: "
                "rows in between would be missing. Stopped rather than keep a partial list; run "
                "the sync again."
            )


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

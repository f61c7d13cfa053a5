"""What a campaign gives its reviewers: a CSV to fill in (decision, note) and import, and a
self-contained HTML page per reviewer. Both are rendered from the items as recorded."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from halo_pipeline.requests import rules
from halo_pipeline.reviews.campaigns import Campaign, ReviewRefused, load_campaign
from halo_pipeline.reviews.items import Reviewed, load_items

# A spreadsheet runs a cell starting with one of these as a formula (OWASP's CSV injection
# list); a leading apostrophe makes it text, and import strips it again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "grant_id", "agent_id", "agent_name", "entitlement_id", "entitlement_name", "held_since",
    "reviewer", "decision", "note",
)  # fmt: skip


def guarded(value: Any) -> Any:
    """A cell as a spreadsheet shows it rather than runs it."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def unguarded(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    return "".join(csv_chunks(columns, rows))


def csv_chunks(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], every: int = 1000
) -> Iterator[str]:
    """The CSV a thousand rows at a time, so a 50,000-row file is never one string."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for n, row in enumerate(rows, 1):
        # `guarded`, inlined: a call per cell is most of the time of a large evidence file.
        writer.writerow(
            [("'" + cell) if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell
             for cell in row]
        )  # fmt: skip
        if n % every == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


@lru_cache(maxsize=4096)
def when(moment: datetime | None) -> str:
    """A moment as reviews show it; cached, since a campaign's thousands of rows share the few
    times of its syncs and decisions."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def decisions_csv(items: Sequence[Any]) -> str:
    """The file reviewers fill in: one row per item, with its decision so far."""
    return csv_text(
        CSV_COLUMNS,
        (
            [
                item.grant_id,
                item.agent_id,
                item.agent_name,
                item.entitlement_id,
                f"{item.resource_type} {item.entitlement_name}",
                when(item.held_since),
                " ".join(item.reviewers),
                item.decision or "",
                item.note or "",
            ]  # fmt: skip
            for item in items
        ),
    )


@cache
def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("halo_pipeline.reviews", "templates"),
        autoescape=True,  # every name and note comes from HaloITSM or a person
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = when
    return environment


def render(template: str, **values: Any) -> str:
    return "".join(render_chunks(template, **values))


def render_chunks(template: str, **values: Any) -> Iterator[str]:
    """The page as it is rendered, piece by piece, for a file written as it goes."""
    return (
        templates().get_template(template).generate(generated_at=when(datetime.now(UTC)), **values)
    )


def page_name(reviewer: str) -> str:
    """A reviewer's page in an export folder: their address, safe as a file name anywhere
    (with a hash of it when characters had to be replaced, so two never share a page)."""
    safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", reviewer)
    if safe != reviewer:
        safe += "-" + hashlib.sha256(reviewer.encode()).hexdigest()[:8]
    return f"{safe}.html"


def writable(out: Path, replace: bool) -> None:
    """A review's files are evidence: a file, or a folder holding anything, is replaced only
    when asked (`--force`)."""
    taken = out.is_file() or (out.is_dir() and any(out.iterdir()))
    if taken and not replace:
        what = "folder" if out.is_dir() else "file"
        raise ReviewRefused(
            f"{out} exists: a {what} already written is not replaced. Give another --out, or "
            "--force to replace it."
        )


def write(path: Path, text: str | Iterable[str]) -> Path:
    """Write beside and rename: a reader never sees half a file, a failure leaves none. `text`
    may come in pieces (a large page or evidence file), written as they come."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("w", encoding="utf-8") as file:
            file.writelines([text] if isinstance(text, str) else text)
        partial.replace(path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise ReviewRefused(f"{path} cannot be written: {error.strerror}.") from None
    return path


def export(
    con: duckdb.DuckDBPyConnection,
    name: str,
    form: str,
    reviewer: str | None,
    out: Path,
    replace: bool = False,
) -> list[Path]:
    """The CSV (every item, or one reviewer's) or the HTML pages: one reviewer's page at
    `out`, or, without a reviewer, a folder with every reviewer's page and an index."""
    campaign = load_campaign(con, name)
    writable(out, replace)
    items = everyone = load_items(con, campaign)
    if reviewer is not None:
        reviewer = rules.email(reviewer, "The reviewer")
        items = [item for item in everyone if reviewer in item.reviewers]
        if not items:
            reviewers = sorted({person for item in everyone for person in item.reviewers})
            raise ReviewRefused(
                f"{reviewer} reviews nothing in {campaign.name!r}. Its reviewers: "
                f"{', '.join(reviewers)}."
            )
    if form == "csv":
        return [write(out, decisions_csv(items))]
    if reviewer is not None:
        return [
            write(
                out, render("reviewer.html.j2", campaign=campaign, reviewer=reviewer, items=items)
            )
        ]
    if out.suffix.lower() in (".html", ".htm"):
        raise ReviewRefused(
            f"Without --reviewer the HTML export is a folder of pages, one per reviewer: give "
            f"--out a folder, not {out.name}, or name the --reviewer."
        )
    return _reviewer_pages(campaign, items, out)


def _reviewer_pages(campaign: Campaign, items: list[Reviewed], folder: Path) -> list[Path]:
    by_reviewer: dict[str, list[Reviewed]] = {}
    for item in items:
        for person in item.reviewers:
            by_reviewer.setdefault(person, []).append(item)
    pages = [
        write(
            folder / page_name(person),
            render("reviewer.html.j2", campaign=campaign, reviewer=person, items=mine),
        )
        for person, mine in sorted(by_reviewer.items())
    ]
    index = render(
        "index.html.j2",
        campaign=campaign,
        pages=[
            (person, page_name(person), len(mine)) for person, mine in sorted(by_reviewer.items())
        ],
    )
    return [write(folder / "index.html", index), *pages]

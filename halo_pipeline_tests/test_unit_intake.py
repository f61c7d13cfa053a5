"""A request ticket's custom fields as Halo sends them, read table-driven: `display` before
`value`, and Halo's empty dates (`1900-01-01T00:00:00`, `0001-01-01T00:00:00`) read as none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from halo_pipeline.halo.models import Ticket
from halo_pipeline.provisioning.intake import read_fields
from halo_pipeline.provisioning.settings import REQUEST_FIELDS
from halo_pipeline.requests.rules import RequestRefused


def ticket(**fields: dict) -> Ticket:
    return Ticket.model_validate(
        {"id": 1001, "customfields": [{"name": name, **field} for name, field in fields.items()]}
    )


AGENT = {"value": "", "display": "agent9@example.com"}
ROLE = {"value": 4, "display": "Administrator"}  # a select: its option id and its text


@pytest.mark.parametrize(
    ("until", "ends"),
    [
        ({"value": "1900-01-01T00:00:00", "display": ""}, None),
        ({"value": "0001-01-01T00:00:00", "display": "01/01/0001"}, None),
        ({"value": None, "display": None}, None),
        ({"value": "2026-12-24T17:00:00", "display": "24/12/2026 17:00"},
         datetime(2026, 12, 24, 17, tzinfo=UTC)),
        ({"value": "2026-12-24T17:00:00+01:00", "display": ""},
         datetime(2026, 12, 24, 16, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_an_until_date_is_read_from_its_value_and_halos_empty_dates_are_none(until, ends):
    asked = read_fields(ticket(CFAccessAgent=AGENT, CFAccessRole=ROLE, CFAccessUntil=until),
                        REQUEST_FIELDS)  # fmt: skip

    assert (asked.action, asked.agent, asked.role, asked.team, asked.ends) == (
        "grant", "agent9@example.com", "Administrator", None, ends,
    )  # fmt: skip


def test_an_empty_date_in_a_text_field_reads_as_empty_and_the_value_stands_in_for_display():
    asked = read_fields(
        ticket(
            CFAccessAgent={"value": "agent9@example.com", "display": "1900-01-01T00:00:00"},
            CFAccessTeam={"value": "2nd Line Support"},
            CFAccessAction={"value": "Revoke", "display": ""},
            CFAccessFor={"value": "8h"},
        ),
        REQUEST_FIELDS,
    )

    assert (asked.action, asked.agent, asked.role, asked.team, asked.ends) == (
        "revoke", "agent9@example.com", None, "2nd Line Support", timedelta(hours=8),
    )  # fmt: skip


def test_an_empty_until_beside_a_duration_is_no_conflict_but_a_real_one_is():
    fields = {"CFAccessAgent": AGENT, "CFAccessRole": ROLE, "CFAccessFor": {"value": "2h"}}

    empty = read_fields(ticket(**fields, CFAccessUntil={"value": "0001-01-01T00:00:00"}),
                        REQUEST_FIELDS)  # fmt: skip
    with pytest.raises(RequestRefused) as refused:
        read_fields(ticket(**fields, CFAccessUntil={"value": "2026-12-24T17:00:00",
                                                    "label": "Until"}), REQUEST_FIELDS)  # fmt: skip

    assert empty.ends == timedelta(hours=2)
    assert str(refused.value) == (
        "Fill in Until (CFAccessUntil) or CFAccessFor (CFAccessFor), not both."
    )

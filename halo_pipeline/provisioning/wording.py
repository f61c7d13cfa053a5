"""Requests in words, for tickets, events and errors."""

from __future__ import annotations

from halo_pipeline.provisioning.catalog import Catalog, Entitlement, RequestRefused
from halo_pipeline.provisioning.queue import Request
from halo_pipeline.provisioning.settings import ProvisioningSettings
from halo_pipeline.provisioning.tickets import TicketText


def who(catalog: Catalog, request: Request) -> str:
    agent = catalog.agents.get(request.agent_id) if request.agent_id is not None else None
    return agent.label if agent else f"agent {request.agent_id}"


def change(catalog: Catalog, request: Request, entitlement: Entitlement) -> str:
    """`grant role 'Agent' to agent 9 (Priya Patel)`, `remove ... from team ...`."""
    agent = who(catalog, request)
    if entitlement.kind == "team":
        if request.action == "grant":
            return f"add {agent} to {entitlement.label}"
        return f"remove {agent} from {entitlement.label}"
    if request.action == "grant":
        return f"grant {entitlement.label} to {agent}"
    return f"revoke {entitlement.label} from {agent}"


def already(request: Request, entitlement: Entitlement) -> str:
    verb = "already holds" if request.action == "grant" else "does not hold"
    return f"agent {request.agent_id} {verb} {entitlement.label}"


def ticket_text(
    catalog: Catalog, settings: ProvisioningSettings, request: Request, manual: bool = False
) -> TicketText:
    if request.action in ("grant", "revoke"):
        try:
            what = change(catalog, request, catalog.entitlement(request.entitlement_id))
        except RequestRefused:  # gone since it was filed: the id still says what was asked
            what = f"{request.action} {request.entitlement_id} for {who(catalog, request)}"
    elif request.action == "create_account":
        what = f"create an agent account for {request.account_name} <{request.account_email}>"
    else:
        what = f"{request.action.split('_')[0]} the account of {who(catalog, request)}"
    last_line = (
        "Please make this change in HaloITSM, then set this ticket to "
        f"{' or '.join(sorted(settings.done_statuses))} (or "
        f"{' or '.join(sorted(settings.failed_statuses))} if it should not be made)."
        if manual
        else "halo-pipeline makes the change and closes this ticket with the outcome."
    )
    details = "\n".join(
        [
            f"Access request #{request.request_id}, filed with halo-pipeline: {what}.",
            f"Reason: {request.reason or '(none given)'}",
            f"Requested by: {request.requested_by or '(unknown)'}",
            last_line,
        ]
    )
    return TicketText(what[0].upper() + what[1:], details)

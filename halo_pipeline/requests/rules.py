"""What every request must carry, whoever files it: the command line, SQL, or the pipeline
itself. The command refuses a request that breaks a rule; a run fails such a row, alone."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email

# Requests the pipeline files itself (expiry, leavers) name their policy instead of a person.
POLICY_REQUESTER = re.compile(r"^policy:[a-z][a-z0-9_-]*$")
# User input echoed in a message is cut to this many characters.
ECHO = 80
ACTIONS = ("grant", "revoke", "create_account", "disable_account", "enable_account")
LONGEST_DURATION = timedelta(days=3650)
"""How long a grant may last or how far off its end may be: 10 years. Past it a time can overflow
what a timestamp holds, and no access review would wait that long."""


class RequestRefused(ValueError):
    """A request names something the warehouse does not know, more than one thing, or
    breaks a rule; the message says which and what to do."""


def shorten(text: object, limit: int = ECHO) -> str:
    """User input as a message quotes it: repr, cut to `limit` characters."""
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def email(value: str | None, what: str) -> str:
    """A validated email address, lower-cased (a well-kept validator, not a regex of ours)."""
    given = (value or "").strip()
    try:
        return validate_email(given, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise RequestRefused(f"{what} {shorten(given)} is not an email address: {error}") from None


def requester(value: str | None, *, person: bool = False) -> str:
    """Who asks: an email address, or `policy:<name>` for what the pipeline files itself. A
    person (`person`: the command line) never speaks as a policy."""
    given = (value or "").strip()
    if POLICY_REQUESTER.match(given):
        if person:
            raise RequestRefused(
                f"{shorten(given)} is the pipeline's own name for what a policy files: say who "
                "asks with --requested-by EMAIL."
            )
        return given
    if not given:
        raise RequestRefused("Say who asks: --requested-by needs the requester's email address.")
    return email(given, "The requester")


def reason(value: str | None) -> str:
    """Why: it goes on the ticket and into the audit trail, so it cannot be blank, nor made only
    of characters nobody sees (zero-width spaces, controls)."""
    given = (value or "").strip()
    if not any(unicodedata.category(char)[0] not in "CZ" for char in given):
        raise RequestRefused("Say why: --reason cannot be blank; it goes on the ticket.")
    return given


def problem(
    action: str, reason_given: str | None, requested_by: str | None, account_email: str | None
) -> str | None:
    """What makes a request filed some other way (SQL) unusable, or None: the same rules the
    command applies when it files one."""
    if action not in ACTIONS:
        return f"Unknown action {shorten(action)}: use one of {', '.join(ACTIONS)}."
    checks = [lambda: reason(reason_given), lambda: requester(requested_by)]
    if action == "create_account":
        checks.append(lambda: email(account_email, "The new agent's email"))
    for check in checks:
        try:
            check()
        except RequestRefused as refused:
            return str(refused)
    return None


def bounds_problem(request: Any) -> str | None:
    """Why a request's duration or end cannot be planned (beyond LONGEST_DURATION, or an end
    already past for a grant not yet applied); None when it can. Filed with SQL, such a row
    fails alone."""
    if request.valid_for is not None and not timedelta(0) < request.valid_for <= LONGEST_DURATION:
        return (f"Its duration (valid_for {request.valid_for}) is not between 0 and "
                f"{LONGEST_DURATION.days} days: file it again with --for within that.")  # fmt: skip
    end = request.expires_at
    if end is not None and end - request.created_at > LONGEST_DURATION:
        return (f"Its end ({end:%Y-%m-%d}) is more than {LONGEST_DURATION.days} days after it "
                "was filed: file it again with --until within that.")  # fmt: skip
    return None

"""The access policy file (`access_policy.yml`, or HALO_ACCESS_POLICY): read and checked for
structure, every problem named with its file and line. Names of roles are checked against the
warehouse elsewhere (`resolved.py`): this reads no warehouse, so definitions can load it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from halo_pipeline.environment import FromEnvironment

DEFAULT_PATH = Path("access_policy.yml")
RULES = ("privileged_unapproved", "privileged_expired", "disabled_with_access")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class PolicyError(ValueError):
    """The policy file cannot be used; the message says where and why, in one line each."""


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `8h`, `2d`: a whole number and one unit."""
    match = _DURATION.match(str(text).strip())
    if not match or int(match[1]) == 0:
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and s, m, h or d, e.g. 8h"
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Approval(_Strict):
    required_for: Literal["none", "privileged", "all"] = "none"
    approvers: tuple[str, ...] = ()

    @field_validator("approvers")
    @classmethod
    def _lower(cls, approvers: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(a.strip().lower() for a in approvers)


class _MaxDuration(_Strict):
    privileged: timedelta | None = None

    @field_validator("privileged", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)


class _SeparationOfDuties(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    roles: tuple[str | int, ...] = Field(min_length=2)


class _Leavers(_Strict):
    disabled_agents_hold_nothing: bool = False
    auto_revoke: bool = False


class _Policy(_Strict):
    privileged_roles: tuple[str | int, ...] = ()
    approval: _Approval = _Approval()
    max_grant_duration: _MaxDuration = _MaxDuration()
    separation_of_duties: tuple[_SeparationOfDuties, ...] = ()
    leavers: _Leavers = _Leavers()
    severity: dict[str, Literal["warn", "error"]] = {}


@dataclass(frozen=True)
class SeparationOfDuties:
    name: str
    roles: tuple[str, ...]
    """Role names, GUIDs or integer ids, as written."""


@dataclass(frozen=True)
class Policy:
    """What the file says, every field defaulted: an empty file asks for nothing."""

    path: Path
    privileged_roles: tuple[str, ...] = ()
    approval_required_for: Literal["none", "privileged", "all"] = "none"
    approvers: tuple[str, ...] = ()
    max_privileged_duration: timedelta | None = None
    separation_of_duties: tuple[SeparationOfDuties, ...] = ()
    disabled_agents_hold_nothing: bool = False
    auto_revoke_leavers: bool = False
    severity: dict[str, str] = field(default_factory=dict)

    @property
    def rules(self) -> tuple[str, ...]:
        """The rules `access.policy_violations` reports: each separation-of-duties rule by
        name, then the privileged and leaver rules the file turns on."""
        named = [rule.name for rule in self.separation_of_duties]
        if self.privileged_roles:
            named += ["privileged_unapproved", "privileged_expired"]
        if self.disabled_agents_hold_nothing:
            named.append("disabled_with_access")
        return tuple(named)

    def severity_of(self, rule: str) -> str:
        return self.severity.get(rule, "error")


class PolicySettings(FromEnvironment):
    access_policy: Path | None = None
    """HALO_ACCESS_POLICY: the policy file; unset, access_policy.yml if there is one."""


def load_policy(path: Path | None = None) -> Policy:
    """The policy at `path` (default: HALO_ACCESS_POLICY or access_policy.yml). No file at the
    default path is an empty policy; a path set by HALO_ACCESS_POLICY must exist."""
    named = path or PolicySettings.load().access_policy
    chosen = named or DEFAULT_PATH
    if not chosen.exists():
        if named is None:
            return Policy(chosen)
        raise PolicyError(f"{chosen}: no such file (HALO_ACCESS_POLICY names the policy file).")
    text = chosen.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{chosen}:{mark.line + 1}" if mark else str(chosen)
        raise PolicyError(f"{where}: not YAML: {getattr(error, 'problem', error)}") from None
    if data is None:
        return Policy(chosen)
    if not isinstance(data, dict):
        raise PolicyError(
            f"{chosen}:1: the policy is a mapping of settings, not {type(data).__name__}"
        )
    try:
        parsed = _Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(
            "\n".join(f"{chosen}:{_line(root, e['loc'])}: {_say(e)}" for e in error.errors())
        ) from None
    unknown_rules = set(parsed.severity) - {*RULES, *(r.name for r in parsed.separation_of_duties)}
    if unknown_rules:
        line = _line(root, ("severity", sorted(unknown_rules)[0]))
        raise PolicyError(
            f"{chosen}:{line}: severity names no rule {sorted(unknown_rules)[0]!r}: rules are "
            f"{', '.join([*RULES, *(r.name for r in parsed.separation_of_duties)])}"
        )
    names = [rule.name for rule in parsed.separation_of_duties]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PolicyError(f"{chosen}: the separation-of-duties rule {repeated[0]!r} is named twice")
    return Policy(
        path=chosen,
        privileged_roles=tuple(str(role) for role in parsed.privileged_roles),
        approval_required_for=parsed.approval.required_for,
        approvers=parsed.approval.approvers,
        max_privileged_duration=parsed.max_grant_duration.privileged,
        separation_of_duties=tuple(
            SeparationOfDuties(rule.name, tuple(str(role) for role in rule.roles))
            for rule in parsed.separation_of_duties
        ),
        disabled_agents_hold_nothing=parsed.leavers.disabled_agents_hold_nothing,
        auto_revoke_leavers=parsed.leavers.auto_revoke,
        severity=dict(parsed.severity),
    )


def _say(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown setting {where!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The line (1-based) of the deepest node of `loc` that the file has."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = [(k, v) for k, v in node.value if k.value == str(part)]
            if not found:
                return line
            key, node = found[0]
            line = key.start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line

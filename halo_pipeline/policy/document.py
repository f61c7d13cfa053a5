"""The access policy file (`access_policy.yml`, or HALO_ACCESS_POLICY): read and checked for
structure, every problem named with its file and line. Names of roles are checked against the
warehouse elsewhere (`resolved.py`): this reads no warehouse, so definitions can load it.

The file decides who may hold what, so what cannot be read one way only is refused rather than
guessed at: a key set twice (the last would silently win), an alias, a file over MAX_BYTES or
nested deeper than MAX_NESTING, text that is not UTF-8."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from halo_pipeline.environment import FromEnvironment
from halo_pipeline.requests.identities import typed_email
from halo_pipeline.requests.rules import LONGEST_DURATION, shorten

DEFAULT_PATH = Path("access_policy.yml")
RULES = ("privileged_unapproved", "privileged_expired", "disabled_with_access")
MAX_BYTES = 1_000_000
"""A policy file is a page of settings; the limit is checked before the file is read."""
MAX_NESTING = 20
"""Mappings and sequences inside one another; the policy itself needs 4 levels."""
# ASCII digits only (\d takes any script's), each unit in seconds.
_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Problems listed at most, from one file: a file of thousands of unknown keys says a few.
_SHOWN = 20


class PolicyError(ValueError):
    """The policy file cannot be used; the message says where and why, in one line each."""


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `8h`, `2d`: a whole number and one unit, at most LONGEST_DURATION."""
    match = _DURATION.match(str(text).strip())
    digits = match[1].lstrip("0") if match else ""
    if not match or not digits:
        raise ValueError(
            f"{shorten(text)} is not a duration: write a whole number and s, m, h or d, e.g. 8h"
        )
    # Bounded as whole numbers before any timedelta is built, so none overflows (OverflowError
    # cannot happen here), and no string of digits is too long for int() to read.
    seconds = int(digits) * _SECONDS[match[2]] if len(digits) <= 12 else None
    if seconds is None or seconds > LONGEST_DURATION.total_seconds():
        raise ValueError(
            f"{shorten(text)} is too long: a duration is at most 10 years "
            f"({LONGEST_DURATION.days}d)"
        )
    return timedelta(seconds=seconds)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _approver(value: str) -> str:
    return typed_email(value, "The approver")


class _Approval(_Strict):
    required_for: Literal["none", "privileged", "all"] = "none"
    # Where approvals are given: on the command line (signed by the key), in HaloITSM's own
    # approval process on the request's ticket, or either.
    via: Literal["cli", "halo", "either"] = "cli"
    # Each checked on its own, so a bad one is named with its line; kept normalised and
    # lower-cased, as `approve --by` is compared.
    approvers: tuple[Annotated[str, AfterValidator(_approver)], ...] = ()
    # How long an approval counts for: one given long ago may no longer say what anyone wants.
    valid_for: timedelta = timedelta(days=7)

    @field_validator("valid_for", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return value if isinstance(value, timedelta) else parse_duration(value)


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
    approval_valid_for: timedelta = timedelta(days=7)
    approval_via: Literal["cli", "halo", "either"] = "cli"
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
    text = _read(chosen)
    if text is None:
        if named is None:
            return Policy(chosen)
        raise PolicyError(f"{chosen}: no such file (HALO_ACCESS_POLICY names the policy file).")
    root, data = _parse(chosen, text)
    if data is None:
        return Policy(chosen)
    if not isinstance(data, dict):
        raise PolicyError(
            f"{chosen}:{_line(root, ())}: the policy is a mapping of settings, "
            f"not {type(data).__name__}"
        )
    try:
        parsed = _Policy.model_validate(data)
    except ValidationError as error:
        # Only the problems shown are looked up (each a walk of the tree): a file of thousands
        # of unknown keys is named in a moment, not in quadratic time.
        errors = error.errors()
        problems = [f"{chosen}:{_line(root, e['loc'])}: {_say(e)}" for e in errors[:_SHOWN]]
        if len(errors) > _SHOWN:
            problems.append(f"{chosen}: and {len(errors) - _SHOWN} more problems")
        raise PolicyError("\n".join(problems)) from None
    known = [*RULES, *(rule.name for rule in parsed.separation_of_duties)]
    unknown_rules = sorted(set(parsed.severity) - set(known))
    if unknown_rules:
        line = _line(root, ("severity", unknown_rules[0]))
        raise PolicyError(
            f"{chosen}:{line}: severity names no rule {shorten(unknown_rules[0])}: rules are "
            f"{', '.join(known)}"
        )
    _check_rules(chosen, root, parsed.separation_of_duties)
    return Policy(
        path=chosen,
        privileged_roles=tuple(str(role) for role in parsed.privileged_roles),
        approval_required_for=parsed.approval.required_for,
        approvers=parsed.approval.approvers,
        approval_valid_for=parsed.approval.valid_for,
        approval_via=parsed.approval.via,
        max_privileged_duration=parsed.max_grant_duration.privileged,
        separation_of_duties=tuple(
            SeparationOfDuties(rule.name, tuple(str(role) for role in rule.roles))
            for rule in parsed.separation_of_duties
        ),
        disabled_agents_hold_nothing=parsed.leavers.disabled_agents_hold_nothing,
        auto_revoke_leavers=parsed.leavers.auto_revoke,
        severity=dict(parsed.severity),
    )


def _read(path: Path) -> str | None:
    """The file's text; None when there is no file."""
    # Opened first and then asked what it is (fstat), so what is checked is what is read; not
    # blocking, so a named pipe put at the path cannot hang the definitions' load.
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise PolicyError(f"{path}: cannot be read: {error.strerror}") from None
    try:
        found = os.fstat(descriptor)
        if stat.S_ISDIR(found.st_mode):
            raise PolicyError(
                f"{path}: a directory, not a file (HALO_ACCESS_POLICY names the policy file)."
            )
        if not stat.S_ISREG(found.st_mode):
            raise PolicyError(f"{path}: not a regular file; the policy is a YAML file.")
        if found.st_size > MAX_BYTES:
            raise PolicyError(_too_big(path, f"{found.st_size:,} bytes"))
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise PolicyError(f"{path}: cannot be read: {error.strerror}") from None
    finally:
        os.close(descriptor)
    if len(data) > MAX_BYTES:  # it grew after fstat
        raise PolicyError(_too_big(path, f"over {MAX_BYTES:,} bytes"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise PolicyError(
            f"{path}:{line}: not UTF-8 text at byte {error.start} (0x{data[error.start]:02x}: "
            f"{error.reason}); save the file as UTF-8"
        ) from None


def _too_big(path: Path, size: str) -> str:
    return f"{path}: {size}; a policy file is at most {MAX_BYTES:,} bytes (1 MB)"


def _parse(path: Path, text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for the lines of later problems) and the data constructed from it."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as error:  # a character YAML refuses, e.g. a NUL
        line = text.count("\n", 0, error.position) + 1
        raise PolicyError(
            f"{path}:{line}: not YAML: unacceptable character #x{error.character:04x}: "
            f"{error.reason}"
        ) from None
    try:
        root = loader.get_single_node()
        return root, None if root is None else loader.construct_document(root)
    except _Refused as refused:
        raise PolicyError(f"{path}:{refused.line}: {refused}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        # PyYAML writes a problem as a sentence over lines: its context, then the problem.
        said = ", ".join(part for part in (error.context, error.problem) if part)
        raise PolicyError(f"{where}: not YAML: {said}") from None
    except yaml.YAMLError as error:
        raise PolicyError(f"{path}: not YAML: {str(error).splitlines()[0]}") from None
    finally:
        loader.dispose()


class _Refused(Exception):
    """What the policy's loader refuses, at a line (1-based); `_parse` names the file."""

    def __init__(self, mark: yaml.Mark, problem: str) -> None:
        super().__init__(problem)
        self.line = mark.line + 1


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data, never Python objects), refusing what would let the
    file say two things or cost more than it shows:

    - aliases: refused, not bounded. `*name` repeats a value, so a few lines can expand to
      billions of items ("billion laughs") when validated; the policy has no use for them, and
      a bound would be one more number to get right. Merge keys (`<<`) go with them.
    - nesting deeper than MAX_NESTING: refused as it is composed, before the composer (which
      recurses once per level) can reach Python's recursion limit.
    - a key set twice in one mapping: YAML says keys are unique, PyYAML keeps the last, so a
      second `approval:` at the end of the file would silently replace the first. Keys are
      compared as constructed (`1` and `01`, `yes` and `true` are the same key)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0
        self.root: yaml.Node | None = None

    def get_single_node(self) -> yaml.Node | None:
        self.root = super().get_single_node()
        return self.root

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                event.start_mark,
                f"an alias (*{event.anchor}): the policy takes no aliases; write the value out",
            )
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self.depth == MAX_NESTING:
            raise _Refused(event.start_mark, f"nested more than {MAX_NESTING} levels deep")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused(
                    key_node.start_mark,
                    "a merge key (<<): the policy takes no merge keys; write each setting out",
                )
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.setdefault(key, key_node)
            except TypeError:  # an unhashable key: SafeLoader's construct_mapping names it
                continue
            if seen is not key_node:
                where = ".".join(str(part) for part in _path(self.root, key_node))
                raise _Refused(
                    key_node.start_mark,
                    f"{where} is set twice (first at line {seen.start_mark.line + 1})",
                )
        return super().construct_mapping(node, deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A scalar YAML reads as a date or time but Python cannot build (`2024-13-45`) raises
        # ValueError, not a YAMLError: named here, with its line.
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as error:
            raise _Refused(
                node.start_mark, f"{shorten(node.value)} cannot be read: {error}"
            ) from None


def _path(node: yaml.Node | None, target: yaml.Node) -> tuple[Any, ...]:
    """Where `target` (a key) is in the tree under `node`: the keys and indexes to it, as the
    settings' problems name it (`approval.required_for`); () when it is not there."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = key.value if isinstance(key, yaml.ScalarNode) else "?"
            if key is target:
                return (here,)
            below = _path(value, target)
            if below:
                return (here, *below)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            below = _path(item, target)
            if below:
                return (index, *below)
    return ()


def _check_rules(
    path: Path, root: yaml.Node | None, rules: tuple[_SeparationOfDuties, ...]
) -> None:
    """Each separation-of-duties rule named once, and naming two different roles: one role
    twice is a rule nobody can break."""
    names: dict[str, int] = {}
    for index, rule in enumerate(rules):
        line = _line(root, ("separation_of_duties", index, "name"))
        if rule.name in names:
            raise PolicyError(
                f"{path}:{line}: the separation-of-duties rule {rule.name!r} is named twice "
                f"(first at line {names[rule.name]})"
            )
        names[rule.name] = line
        roles: set[str] = set()
        for position, role in enumerate(rule.roles):
            same = str(role).strip().casefold()
            if same in roles:
                line = _line(root, ("separation_of_duties", index, "roles", position))
                raise PolicyError(
                    f"{path}:{line}: the separation-of-duties rule {rule.name!r} names "
                    f"{shorten(role)} twice: a rule needs two different roles"
                )
            roles.add(same)


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

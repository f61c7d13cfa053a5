"""The access policy file read by someone careless or hostile: every problem refused in one line
naming the file and line, as a PolicyError, never a traceback; none reads without limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from halo_pipeline.policy.document import (
    LONGEST_DURATION,
    MAX_BYTES,
    PolicyError,
    load_policy,
    parse_duration,
)

SHIPPED = Path(__file__).resolve().parents[1] / "access_policy.yml"


def refusal(path: Path) -> str:
    """What load_policy says of `path`; it must refuse it with a PolicyError."""
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    return str(error.value)


def written(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "access_policy.yml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_policy_loads():
    policy = load_policy(SHIPPED)

    assert policy.approval_required_for == "privileged"
    assert [rule.roles for rule in policy.separation_of_duties] == [("Read Only", "Administrator")]


def test_a_second_block_at_the_end_of_the_file_is_refused_naming_both_lines(tmp_path):
    """The attack: approvals were turned off by a later `approval:` that silently won."""
    shipped = SHIPPED.read_text()
    first = shipped.splitlines().index("approval:") + 1
    path = written(tmp_path, shipped + "approval:\n  required_for: none\n")
    second = len(shipped.splitlines()) + 1

    assert refusal(path) == f"{path}:{second}: approval is set twice (first at line {first})"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("approval:\n  required_for: all\n  approvers: []\n  required_for: none\n",
         "4: approval.required_for is set twice (first at line 2)"),
        ("separation_of_duties:\n  - name: pair\n    roles: [a, b]\n    name: other\n",
         "4: separation_of_duties.0.name is set twice (first at line 2)"),
        # Keys compare as YAML reads them: `yes` and `true` are both True.
        ("leavers:\n  yes: true\n  true: false\n", "3: leavers.true is set twice (first at line 2)"),
    ],
    ids=["nested", "in-a-list", "same-value"],
)  # fmt: skip
def test_a_key_set_twice_is_refused_at_any_depth(tmp_path, text, problem):
    path = written(tmp_path, text)

    assert refusal(path) == f"{path}:{problem}"


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = written(tmp_path, b"#" * (MAX_BYTES + 1))
    assert (
        refusal(path) == f"{path}: 1,000,001 bytes; a policy file is at most 1,000,000 bytes (1 MB)"
    )

    # Sparse: ten gigabytes no test could read, refused from its size alone.
    with path.open("r+b") as file:
        file.truncate(10_000_000_000)
    assert refusal(path) == (
        f"{path}: 10,000,000,000 bytes; a policy file is at most 1,000,000 bytes (1 MB)"
    )


def test_nesting_is_limited_to_twenty_levels(tmp_path):
    deep = "".join(f"{'  ' * level}k{level}:\n" for level in range(30)) + "  " * 30 + "v\n"
    path = written(tmp_path, deep)
    assert refusal(path) == f"{path}:21: nested more than 20 levels deep"

    # Twenty levels pass the limit (and are refused for what they say, not for their depth).
    path = written(tmp_path, "privileged_roles: " + "[" * 19 + "]" * 19 + "\n")
    assert "nested" not in refusal(path)


def test_a_hundred_thousand_brackets_are_refused_without_a_recursion_error(tmp_path):
    path = written(tmp_path, "[" * 100_000)

    assert refusal(path) == f"{path}:1: nested more than 20 levels deep"


def test_aliases_are_refused_so_no_few_lines_expand_to_billions(tmp_path):
    bomb = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    bomb += "".join(
        f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    path = written(tmp_path, bomb)

    assert refusal(path) == (
        f"{path}:2: an alias (*a): the policy takes no aliases; write the value out"
    )


def test_text_that_is_not_utf8_is_named_by_line_and_byte(tmp_path):
    path = written(tmp_path, b"approval:\n  required_for: \xff\n")

    assert refusal(path) == (
        f"{path}:2: not UTF-8 text at byte 26 (0xff: invalid start byte); save the file as UTF-8"
    )


def test_a_character_yaml_refuses_is_one_line_too(tmp_path):
    path = written(tmp_path, "approval:\n  required_for: \x00\n")

    assert refusal(path) == (
        f"{path}:2: not YAML: unacceptable character #x0000: special characters are not allowed"
    )


def test_a_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HALO_ACCESS_POLICY", str(tmp_path))

    with pytest.raises(PolicyError) as error:
        load_policy()

    assert str(error.value) == (
        f"{tmp_path}: a directory, not a file (HALO_ACCESS_POLICY names the policy file)."
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_refused(tmp_path):
    path = written(tmp_path, SHIPPED.read_text())
    path.chmod(0)

    assert refusal(path) == f"{path}: cannot be read: Permission denied"


def test_a_duration_past_ten_years_is_refused_not_overflowed(tmp_path):
    path = written(tmp_path, "max_grant_duration:\n  privileged: 99999999999999999999d\n")
    assert refusal(path) == (
        f"{path}:2: max_grant_duration.privileged: '99999999999999999999d' is too long: a "
        "duration is at most 10 years (3650d)"
    )

    # The same bound for `request --for` and the demo: a ValueError, never an OverflowError.
    with pytest.raises(ValueError) as error:
        parse_duration("999999999d")
    assert str(error.value) == "'999999999d' is too long: a duration is at most 10 years (3650d)"
    assert parse_duration("3650d") == LONGEST_DURATION


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("approval:\n  approvers:\n    - cab@example.com\n    - ben\n",
         "4: approval.approvers.1: The approver 'ben' is not an email address: An email "
         "address must have an @-sign."),
        ("separation_of_duties:\n  - name: pair\n    roles:\n      - Read Only\n"
         "      - ' read only'\n",
         "5: the separation-of-duties rule 'pair' names ' read only' twice: a rule needs two "
         "different roles"),
        ("separation_of_duties:\n  - name: pair\n    roles: [a, b]\n  - name: pair\n"
         "    roles: [a, c]\n",
         "4: the separation-of-duties rule 'pair' is named twice (first at line 2)"),
        ("- privileged_roles\n", "1: the policy is a mapping of settings, not list"),
        ("approval:\n  required_for: 2024-13-45\n",
         "2: '2024-13-45' cannot be read: month must be in 1..12"),
        ("approval:\n  <<: {required_for: none}\n",
         "2: a merge key (<<): the policy takes no merge keys; write each setting out"),
    ],
    ids=["approver", "role-twice", "rule-twice", "not-a-mapping", "no-such-date", "merge-key"],
)  # fmt: skip
def test_each_problem_is_named_with_its_line(tmp_path, text, problem):
    path = written(tmp_path, text)

    assert refusal(path) == f"{path}:{problem}"


def test_approvers_are_kept_lower_cased_as_approve_by_is_compared(tmp_path):
    path = written(tmp_path, "approval:\n  approvers: [CAB@Example.COM]\n")

    assert load_policy(path).approvers == ("cab@example.com",)


def test_a_file_of_many_problems_names_a_few_quickly(tmp_path):
    path = written(tmp_path, "".join(f"setting_{n}: 1\n" for n in range(5000)))

    said = refusal(path).splitlines()

    assert said[0] == f"{path}:1: unknown setting 'setting_0'"
    assert said[20:] == [f"{path}: and 4980 more problems"]


def test_the_definitions_refuse_a_policy_with_a_key_set_twice(tmp_path, monkeypatch):
    from halo_pipeline.defs.policy import policy_definitions

    path = written(tmp_path, "approval:\n  required_for: all\napproval:\n  required_for: none\n")
    monkeypatch.setenv("HALO_ACCESS_POLICY", str(path))

    with pytest.raises(PolicyError) as error:
        policy_definitions(None)  # the policy is read before the SQL project is used

    assert str(error.value) == (
        f"The access policy cannot be loaded:\n{path}:3: approval is set twice (first at line 1)"
    )

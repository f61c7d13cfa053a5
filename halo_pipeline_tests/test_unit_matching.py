"""Request matching, table-driven: how people name agents, roles and teams, and the candidates
a refusal offers."""

from __future__ import annotations

import pytest

from halo_pipeline.requests.catalog import AgentRef, Catalog, Entitlement, RequestRefused

CATALOG = Catalog(
    [
        AgentRef(2, "Zoë Müller", "agent2@example.com", False),
        AgentRef(9, "Priya Patel", "agent9@example.com", False),
        AgentRef(34, "Björn Müller", "agent34@example.com", False),
        AgentRef(40, "Björn Müller", "agent40@example.com", True),
    ],
    [
        Entitlement("role:g-admin:assigned", "role", "g-admin", "Administrator", 1),
        Entitlement("role:g-cm:assigned", "role", "g-cm", "Change Manager", 3),
        Entitlement("team:1:member", "team", 1, "1st Line Support"),
        Entitlement("team:4:member", "team", 4, 'Security "Red" Team'),
    ],
)


@pytest.mark.parametrize(
    ("ref", "agent_id"),
    [("9", 9), (" 9 ", 9), ("agent9@example.com", 9), ("AGENT9@EXAMPLE.COM", 9),
     ("Priya Patel", 9), ("priya patel", 9), ("Zoë Müller", 2), ("34", 34)],
)  # fmt: skip
def test_an_agent_by_id_email_or_exact_name(ref, agent_id):
    assert CATALOG.find_agent(ref).agent_id == agent_id


@pytest.mark.parametrize(
    ("kind", "ref", "entitlement_id"),
    [("role", "Administrator", "role:g-admin:assigned"), ("role", "change manager", "role:g-cm:assigned"),
     ("role", "3", "role:g-cm:assigned"), ("role", "g-admin", "role:g-admin:assigned"),
     ("team", "4", "team:4:member"), ("team", 'security "red" team', "team:4:member"),
     ("team", "1st Line Support", "team:1:member")],
)  # fmt: skip
def test_roles_and_teams_by_id_or_name(kind, ref, entitlement_id):
    found = CATALOG.find_role(ref) if kind == "role" else CATALOG.find_team(ref)
    assert found.entitlement_id == entitlement_id


@pytest.mark.parametrize(
    ("find", "ref", "message"),
    [
        ("agent", "Björn Müller", "agent 'Björn Müller' is ambiguous: it matches 34 Björn Müller <agent34@example.com>; 40 Björn Müller <agent40@example.com>. Use the id."),
        ("agent", "zoe", "Unknown agent 'zoe': not in the last sync. Did you mean: 2 Zoë Müller <agent2@example.com>?"),
        ("agent", "999", "Unknown agent '999': not in the last sync."),
        ("role", "Administratr", "Unknown role 'Administratr': not in the last sync. Did you mean: Administrator (g-admin)?"),
        ("role", "manager", "Unknown role 'manager': not in the last sync. Did you mean: Change Manager (g-cm)?"),
        ("team", "Security", 'Unknown team \'Security\': not in the last sync. Did you mean: Security "Red" Team (4)?'),
        ("team", "2", "Unknown team '2': not in the last sync."),
    ],
)  # fmt: skip
def test_a_name_that_matches_none_or_several_is_refused_with_candidates(find, ref, message):
    with pytest.raises(RequestRefused) as error:
        getattr(CATALOG, f"find_{find}")(ref)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("entitlement_id", "message"),
    [
        ("team:9:member", "Unknown entitlement 'team:9:member': no such team. Teams: 1st Line Support (1), Security \"Red\" Team (4)."),
        ("role:nope:assigned", "Unknown entitlement 'role:nope:assigned': no such role. Roles: Administrator (g-admin), Change Manager (g-cm)."),
        ("group:1", "Unknown entitlement 'group:1': use role:<role_id>:assigned or team:<team_id>:member (see access.entitlements)."),
    ],
)  # fmt: skip
def test_an_entitlement_id_filed_with_sql_that_names_nothing(entitlement_id, message):
    with pytest.raises(RequestRefused) as error:
        CATALOG.entitlement(entitlement_id)
    assert str(error.value) == message

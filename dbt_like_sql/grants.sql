-- Who holds what now: one row per agent per role held and per team joined, as of the latest
-- sync, with names for people reading it. grant_id is <entitlement_id>:agent:<agent_id>;
-- expires_at is when a time-bound grant made by provisioning ends (access.grant_expiries).
{{ config(materialized='table') }}

WITH memberships AS (
    SELECT {{ entitlement_id('role', 'role_id') }} AS entitlement_id, agent_id, sync_id, synced_at
    FROM {{ source('halo', 'agent_roles') }}
    UNION ALL
    SELECT {{ entitlement_id('team', 'team_id') }} AS entitlement_id, agent_id, sync_id, synced_at
    FROM {{ source('halo', 'agent_teams') }}
)

SELECT
    {{ grant_id('m.entitlement_id', 'm.agent_id') }} AS grant_id,
    m.entitlement_id,
    e.resource_type,
    e.resource_id,
    e.resource_name,
    'agent' AS principal_type,
    m.agent_id AS principal_id,
    a.name AS agent_name,
    a.email AS agent_email,
    a.is_disabled AS agent_is_disabled,
    x.expires_at,
    m.sync_id,
    m.synced_at
FROM memberships AS m
JOIN {{ ref('entitlements') }} AS e USING (entitlement_id)
JOIN {{ source('halo', 'agents') }} AS a USING (agent_id)
LEFT JOIN {{ ref('grant_expiries') }} AS x
    ON x.agent_id = m.agent_id AND x.entitlement_id = m.entitlement_id

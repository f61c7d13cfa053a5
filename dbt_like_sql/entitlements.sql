-- What can be granted: each role can be assigned (role:<role_id>:assigned) and each team has
-- members (team:<team_id>:member). Every role and team has its entitlement, inactive teams
-- included. IDs follow ConductorOne's conventions so they line up with a baton sync.
{{ config(materialized='table') }}

SELECT
    {{ entitlement_id('role', 'role_id') }} AS entitlement_id,
    'role' AS resource_type,
    role_id AS resource_id,
    {{ entitlement_slug('role') }} AS slug,
    name || ' role' AS display_name,
    name AS resource_name,
    FALSE AS resource_is_inactive
FROM {{ source('halo', 'roles') }}

UNION ALL

SELECT
    {{ entitlement_id('team', 'team_id') }} AS entitlement_id,
    'team' AS resource_type,
    CAST(team_id AS VARCHAR) AS resource_id,
    {{ entitlement_slug('team') }} AS slug,
    name || ' team member' AS display_name,
    name AS resource_name,
    is_inactive AS resource_is_inactive
FROM {{ source('halo', 'teams') }}

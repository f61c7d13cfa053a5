-- Every agent, role and team as a resource, ConductorOne-style: agents are the principals,
-- roles and teams carry the entitlements.
{{ config(materialized='table') }}

SELECT
    'agent' AS resource_type,
    CAST(agent_id AS VARCHAR) AS resource_id,
    name AS display_name,
    CASE WHEN is_disabled THEN 'disabled' ELSE 'enabled' END AS status,
    email AS description,
    is_api_agent,
    sync_id,
    synced_at
FROM {{ source('halo', 'agents') }}

UNION ALL BY NAME

SELECT
    'role' AS resource_type,
    role_id AS resource_id,
    name AS display_name,
    'enabled' AS status,
    notes AS description,
    sync_id,
    synced_at
FROM {{ source('halo', 'roles') }}

UNION ALL BY NAME

SELECT
    'team' AS resource_type,
    CAST(team_id AS VARCHAR) AS resource_id,
    name AS display_name,
    CASE WHEN is_inactive THEN 'inactive' ELSE 'enabled' END AS status,
    department_name AS description,
    sync_id,
    synced_at
FROM {{ source('halo', 'teams') }}

-- One row per agent with their roles and teams as lists, and how old the roles are: the access
-- review sheet.

SELECT
    a.agent_id,
    a.name AS agent_name,
    a.email AS agent_email,
    a.is_disabled,
    a.is_api_agent,
    coalesce(
        list(g.resource_name ORDER BY g.resource_name) FILTER (WHERE g.resource_type = 'role'),
        []
    ) AS roles,
    coalesce(
        list(g.resource_name ORDER BY g.resource_name) FILTER (WHERE g.resource_type = 'team'),
        []
    ) AS teams,
    a.roles_read_at
FROM {{ source('halo', 'agents') }} AS a
LEFT JOIN {{ ref('grants') }} AS g ON g.principal_id = a.agent_id
GROUP BY ALL

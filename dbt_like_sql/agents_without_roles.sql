-- Review: agents that hold no role at all.

SELECT
    a.agent_id,
    a.name AS agent_name,
    a.email AS agent_email,
    a.is_disabled,
    a.is_api_agent
FROM {{ source('halo', 'agents') }} AS a
WHERE NOT EXISTS (
    SELECT 1 FROM {{ ref('grants') }} AS g
    WHERE g.principal_id = a.agent_id AND g.resource_type = 'role'
)

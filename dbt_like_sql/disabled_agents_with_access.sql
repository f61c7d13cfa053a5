-- Review: disabled agents that still hold roles or team memberships.

SELECT
    principal_id AS agent_id,
    agent_name,
    agent_email,
    coalesce(
        list(resource_name ORDER BY resource_name) FILTER (WHERE resource_type = 'role'), []
    ) AS roles,
    coalesce(
        list(resource_name ORDER BY resource_name) FILTER (WHERE resource_type = 'team'), []
    ) AS teams,
    count(*) AS grants
FROM {{ ref('grants') }}
WHERE agent_is_disabled
GROUP BY ALL

-- Review: agents holding an administrator role (any role whose name contains "admin"),
-- disabled ones included so they stand out.

SELECT
    principal_id AS agent_id,
    agent_name,
    agent_email,
    agent_is_disabled,
    resource_name AS role_name,
    grant_id
FROM {{ ref('grants') }}
WHERE resource_type = 'role' AND resource_name ILIKE '%admin%'

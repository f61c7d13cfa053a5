-- When each time-bound grant made by provisioning ends. A period starts with the first grant
-- request applied since the last revoke that took effect; a grant re-granted before it ends
-- carries the later end, and any request without an end makes it open-ended. A grant the
-- agent already held when its time-bound request came (the request was already_satisfied)
-- never ends by that request. A view: it is always as current as the request queue.
WITH requests AS (
    SELECT request_id, action, agent_id, entitlement_id, status, expires_at
    FROM {{ source('provisioning', 'requests') }}
    WHERE action IN ('grant', 'revoke') AND agent_id IS NOT NULL
),

last_revoke AS (
    SELECT agent_id, entitlement_id, max(request_id) AS request_id
    FROM requests
    WHERE action = 'revoke' AND status IN ('applied', 'already_satisfied', 'confirmed')
    GROUP BY ALL
),

periods AS (
    SELECT
        g.agent_id,
        g.entitlement_id,
        arg_min(g.status, g.request_id) AS first_status,
        bool_or(g.expires_at IS NULL) AS open_ended,
        max(g.expires_at) AS expires_at,
        max(g.request_id) AS last_request_id
    FROM requests AS g
    LEFT JOIN last_revoke AS r USING (agent_id, entitlement_id)
    WHERE g.action = 'grant' AND g.status IN ('applied', 'already_satisfied')
      AND g.request_id > coalesce(r.request_id, 0)
    GROUP BY ALL
)

SELECT
    {{ grant_id('p.entitlement_id', 'p.agent_id') }} AS grant_id,
    p.agent_id,
    p.entitlement_id,
    p.expires_at,
    p.last_request_id,
    -- A revoke filed after the period's last grant, whatever became of it: never file another.
    EXISTS (
        SELECT 1 FROM requests AS r
        WHERE r.action = 'revoke' AND r.agent_id = p.agent_id
          AND r.entitlement_id = p.entitlement_id AND r.request_id > p.last_request_id
    ) AS revoke_filed
FROM periods AS p
WHERE p.first_status = 'applied' AND NOT p.open_ended

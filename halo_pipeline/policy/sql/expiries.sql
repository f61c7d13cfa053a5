-- Time-bound grants whose end has come and for which no revoke has been filed, as
-- access.grant_expiries finds them, except that each request's end is taken from the signed
-- `applied` event that made it (temp table `applied_ends`, verified in Python: DuckDB never
-- holds the key) as well as from its column: the earlier of the two counts, so setting the
-- column to NULL makes no grant endless. Each row also says which period of the grant the
-- pipeline made (the first sync after it applied the period's first grant) and which period is
-- held now, so an expiry never removes a grant made again outside the pipeline.
WITH requests AS (
    SELECT r.request_id, r.action, r.agent_id, r.entitlement_id, r.status,
           least(a.signed_end, r.expires_at) AS expires_at, a.applied_at
    FROM provisioning.requests AS r
    LEFT JOIN applied_ends AS a USING (request_id)
    WHERE r.action IN ('grant', 'revoke') AND r.agent_id IS NOT NULL
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
        max(g.request_id) AS last_request_id,
        min(g.applied_at) AS first_applied_at
    FROM requests AS g
    LEFT JOIN last_revoke AS r USING (agent_id, entitlement_id)
    WHERE g.action = 'grant' AND g.status IN ('applied', 'already_satisfied')
      AND g.request_id > coalesce(r.request_id, 0)
    GROUP BY ALL
),

due AS (
    SELECT p.*, p.entitlement_id || ':agent:' || p.agent_id AS grant_id
    FROM periods AS p
    WHERE p.first_status = 'applied' AND NOT p.open_ended AND p.expires_at <= $now
      AND NOT EXISTS (
          SELECT 1 FROM requests AS r
          WHERE r.action = 'revoke' AND r.agent_id = p.agent_id
            AND r.entitlement_id = p.entitlement_id AND r.request_id > p.last_request_id
      )
)

SELECT
    d.agent_id,
    d.entitlement_id,
    strftime(d.expires_at, '%Y-%m-%d %H:%M:%S UTC') AS ended,
    d.last_request_id,
    (SELECT min(s.sync_id) FROM halo.sync_runs AS s
     WHERE s.started_at >= d.first_applied_at AND s.status IN ('loaded', 'succeeded')) AS made_in_sync,
    (SELECT max(h.first_seen_sync_id) FROM access.grant_history AS h
     WHERE h.grant_id = d.grant_id AND h.removed_at IS NULL) AS held_since_sync
FROM due AS d
ORDER BY d.agent_id, d.entitlement_id

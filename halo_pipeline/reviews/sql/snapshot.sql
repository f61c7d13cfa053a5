-- The grants a campaign reviews, as of the last sync ($entitlements NULL: every grant): since
-- when each is held (its current period in access.grant_history; at least since, when the
-- warehouse's first sync found it), how it came to be, and the enabled managers who review it
-- unless someone is named: a team's own managers for a team grant, the managers of the agent's
-- default team for a role grant. Never the agent themself. With a reviewer named, only the
-- reviewer's own grants ($named_ids: the agents with the reviewer's address) need managers:
-- a team of 500 managers would otherwise list them on every one of its grants.
WITH scoped AS (
    SELECT *
    FROM access.grants
    WHERE $entitlements IS NULL OR list_contains($entitlements, entitlement_id)
),

syncs AS (
    SELECT sync_id, synced_at FROM halo.sync_runs WHERE status = 'succeeded'
),

period AS (
    SELECT h.grant_id, h.first_seen_sync_id, h.first_seen_at,
           h.first_seen_sync_id = (SELECT min(sync_id) FROM syncs) AS at_first_sync,
           (SELECT max(synced_at) FROM syncs AS s WHERE s.sync_id < h.first_seen_sync_id)
               AS previous_sync_at
    FROM access.grant_history AS h
    WHERE h.is_current
),

-- The grant request provisioning applied between the sync before the period and the one
-- that first saw it: what made this period, when it was made by the pipeline.
-- A request has an event per note it gets while applied (its ticket closed): the first counts.
applied AS (
    SELECT r.agent_id, r.entitlement_id, r.request_id, r.requested_by, r.reason,
           min(e.changed_at) AS applied_at
    FROM provisioning.requests AS r
    JOIN provisioning.request_events AS e
      ON e.request_id = r.request_id AND e.to_status = 'applied'
    WHERE r.action = 'grant'
    GROUP BY ALL
),

made_by AS (
    SELECT s.grant_id, arg_max(a, a.request_id) AS request
    FROM scoped AS s
    JOIN period AS p USING (grant_id)
    JOIN applied AS a
      ON a.agent_id = s.principal_id AND a.entitlement_id = s.entitlement_id
     AND a.applied_at <= p.first_seen_at
     AND a.applied_at > coalesce(p.previous_sync_at, '-infinity'::TIMESTAMPTZ)
    GROUP BY s.grant_id
),

unnamed AS (
    SELECT * FROM scoped
    WHERE $named_ids IS NULL OR list_contains($named_ids, principal_id)
),

reviewing_team AS (
    SELECT s.grant_id, t.team_id
    FROM unnamed AS s
    JOIN halo.teams AS t ON s.resource_type = 'team' AND CAST(t.team_id AS VARCHAR) = s.resource_id
    UNION ALL
    SELECT s.grant_id, t.team_id
    FROM unnamed AS s
    JOIN halo.agents AS a ON a.agent_id = s.principal_id
    JOIN halo.teams AS t ON t.name = a.default_team
    WHERE s.resource_type = 'role'
),

managers AS (
    SELECT r.grant_id, list(DISTINCT lower(a.email) ORDER BY lower(a.email)) AS managers
    FROM reviewing_team AS r
    JOIN unnamed AS s USING (grant_id)
    JOIN halo.agent_teams AS m ON m.team_id = r.team_id AND m.is_manager
    JOIN halo.agents AS a ON a.agent_id = m.agent_id
    WHERE NOT a.is_disabled AND a.email IS NOT NULL
      AND a.agent_id <> s.principal_id
      AND lower(a.email) IS DISTINCT FROM lower(s.agent_email)
    GROUP BY r.grant_id
)

SELECT
    s.grant_id,
    s.principal_id AS agent_id,
    s.agent_name,
    lower(s.agent_email) AS agent_email,
    s.entitlement_id,
    s.resource_type,
    s.resource_name AS entitlement_name,
    p.first_seen_at AS held_since,
    p.at_first_sync AS held_since_first_sync,
    p.first_seen_sync_id,
    CASE
        WHEN b.request IS NOT NULL THEN format(
            'granted by request {} ({}: {}), applied {}', b.request.request_id,
            b.request.requested_by, b.request.reason,
            strftime(b.request.applied_at, '%Y-%m-%d %H:%M UTC'))
        WHEN p.at_first_sync THEN 'held when the warehouse first synced'
        ELSE format('added in HaloITSM, first seen by sync {}', p.first_seen_sync_id)
    END AS last_change,
    coalesce(m.managers, []) AS managers
FROM scoped AS s
JOIN period AS p USING (grant_id)
LEFT JOIN made_by AS b USING (grant_id)
LEFT JOIN managers AS m USING (grant_id)
ORDER BY s.resource_type, s.resource_name, s.agent_name, s.principal_id

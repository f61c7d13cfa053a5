-- What became of a campaign's items: the revoke request each revoke became (its status now
-- and its ticket), when the period of the grant the item reviewed ended (access.grant_history),
-- and, for an item with a request, whether its removal is confirmed (`removal`):
--   'confirmed': the request was applied, a sync read the agent after that, and the latest
--       such read finds no period of the grant open;
--   'held again since sync N': applied and read since, but a later period of the grant, first
--       seen by sync N, is open;
--   'not confirmed: still held as of sync N': applied, read since by sync N, and the period
--       reviewed goes on (the revoke did not take, or was undone before any sync saw it);
--   'not yet confirmed by a sync': applied, and no sync has read the agent since;
--   'not confirmed: request <status>': never applied. A grant gone all the same (removed by
--       hand in HaloITSM) is not this revoke's doing, and removed_in_sync_id still says when.
WITH reviewed AS (
    SELECT i.item_id, i.grant_id, i.agent_id, i.first_seen_sync_id, r.request_id, r.status,
           r.ticket_id
    FROM reviews.items AS i
    LEFT JOIN provisioning.requests AS r ON r.review_item_id = i.item_id
    WHERE i.campaign_id = $campaign_id
),

-- A request has an event per note it gets while applied (its ticket closed): the first is when
-- it was applied.
applied AS (
    SELECT e.request_id, min(e.changed_at) AS applied_at
    FROM provisioning.request_events AS e
    WHERE e.to_status = 'applied' AND e.request_id IN (SELECT request_id FROM reviewed)
    GROUP BY e.request_id
),

-- Syncs whose reads access.grant_history holds: 'succeeded' ones, whose models were rebuilt.
-- A sync read after a revoke when it started after it: synced_at is taken once the reading is
-- done, so a sync under way when the revoke was applied may have read the agent before.
syncs AS (
    SELECT sync_id, kind, started_at FROM halo.sync_runs WHERE status = 'succeeded'
),

-- Syncs that read each item's agent. The one that last read its roles and teams
-- (halo.agents.roles_read_sync_id: a sync that reads only some agents' details leaves the
-- others' rows as they were read before). A full sync lists every agent: one it no longer
-- lists was deleted in HaloITSM, and a deleted agent holds nothing, so its grant is as absent
-- as a revoked one. And a sync that closed a period of the grant read the agent (a targeted
-- one finds a deleted agent gone).
reads AS (
    SELECT reviewed.item_id, a.roles_read_sync_id AS sync_id
    FROM reviewed
    JOIN halo.agents AS a USING (agent_id)
    WHERE a.roles_known
    UNION ALL
    SELECT reviewed.item_id, (SELECT max(sync_id) FROM syncs WHERE kind = 'full')
    FROM reviewed
    WHERE reviewed.agent_id NOT IN (SELECT agent_id FROM halo.agents)
    UNION ALL
    SELECT reviewed.item_id, h.removed_in_sync_id
    FROM reviewed
    JOIN access.grant_history AS h USING (grant_id)
    WHERE h.removed_in_sync_id IS NOT NULL
),

last_read AS (
    SELECT
        reads.item_id,
        max(syncs.sync_id) AS sync_id,
        arg_max(syncs.started_at, syncs.sync_id) AS started_at
    FROM reads
    JOIN syncs USING (sync_id)
    GROUP BY reads.item_id
),

-- At most one period of a grant is open: the grant as the latest read of its agent found it.
open_period AS (
    SELECT grant_id, first_seen_sync_id
    FROM access.grant_history
    WHERE is_current AND grant_id IN (SELECT grant_id FROM reviewed)
)

SELECT
    reviewed.item_id,
    reviewed.request_id,
    reviewed.status AS request_status,
    reviewed.ticket_id,
    h.removed_in_sync_id,
    h.removed_at,
    CASE
        WHEN reviewed.request_id IS NULL THEN NULL
        WHEN applied.applied_at IS NULL THEN 'not confirmed: request ' || reviewed.status
        WHEN last_read.started_at IS NULL OR last_read.started_at <= applied.applied_at
            THEN 'not yet confirmed by a sync'
        WHEN open_period.first_seen_sync_id > reviewed.first_seen_sync_id
            THEN format('held again since sync {}', open_period.first_seen_sync_id)
        WHEN open_period.first_seen_sync_id IS NOT NULL
            THEN format('not confirmed: still held as of sync {}', last_read.sync_id)
        ELSE 'confirmed'
    END AS removal
FROM reviewed
LEFT JOIN access.grant_history AS h
    ON h.grant_id = reviewed.grant_id AND h.first_seen_sync_id = reviewed.first_seen_sync_id
   AND h.removed_in_sync_id IS NOT NULL
LEFT JOIN applied ON applied.request_id = reviewed.request_id
LEFT JOIN last_read ON last_read.item_id = reviewed.item_id
LEFT JOIN open_period ON open_period.grant_id = reviewed.grant_id
ORDER BY reviewed.item_id

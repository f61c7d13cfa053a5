-- Every grant over time: one row per grant per continuous period it existed, with the syncs
-- that first and last saw it. "Who held what on date D" is
--   WHERE first_seen_at <= D AND (removed_at IS NULL OR removed_at > D).
--
-- History is kept incrementally by each sync, in the same transaction that replaces the
-- snapshot (halo.agent_role_history / halo.agent_team_history), rather than rebuilt here from
-- retained snapshots: it cannot disagree with the snapshot, it grows with changes rather than
-- with the number of syncs, and rebuilding this model (or the whole access schema) loses nothing.
--
-- Last seen counts only syncs that read the grant. A held grant was last seen by the sync that
-- last read its agent (halo.agents.roles_read_sync_id): a sync that reads only some agents'
-- details, or a targeted sync after provisioning, carries the others' rows over unread. A
-- period that ended was last seen by the last full sync before it ended.
--
-- `held_on_or_before`: the period opened on its agent's first read, so the grant was held on
-- or before first_seen_at, not added then. `added_after` / `removed_after`: the agent's read
-- before the change, after which it happened.
{{ config(materialized='table') }}

WITH syncs AS (
    SELECT sync_id, kind, synced_at
    FROM {{ source('halo', 'sync_runs') }}
    -- 'loaded': the sync these models are being rebuilt from.
    WHERE status IN ('loaded', 'succeeded')
),

full_syncs AS (
    SELECT sync_id FROM syncs WHERE kind = 'full'
),

periods AS (
    SELECT
        {{ entitlement_id('role', 'role_id') }} AS entitlement_id,
        'role' AS resource_type,
        role_id AS resource_id,
        role_name AS resource_name,
        agent_id,
        agent_name,
        first_sync_id,
        removed_in_sync_id,
        coalesce(on_or_before, false) AS held_on_or_before,
        added_after,
        removed_after
    FROM {{ source('halo', 'agent_role_history') }}
    UNION ALL
    SELECT
        {{ entitlement_id('team', 'team_id') }} AS entitlement_id,
        'team' AS resource_type,
        CAST(team_id AS VARCHAR) AS resource_id,
        team_name AS resource_name,
        agent_id,
        agent_name,
        first_sync_id,
        removed_in_sync_id,
        coalesce(on_or_before, false) AS held_on_or_before,
        added_after,
        removed_after
    FROM {{ source('halo', 'agent_team_history') }}
)

SELECT
    {{ grant_id('p.entitlement_id', 'p.agent_id') }} AS grant_id,
    p.entitlement_id,
    p.resource_type,
    p.resource_id,
    p.resource_name,
    'agent' AS principal_type,
    p.agent_id AS principal_id,
    p.agent_name,
    p.first_sync_id AS first_seen_sync_id,
    first_seen.synced_at AS first_seen_at,
    last_seen.sync_id AS last_seen_sync_id,
    last_seen.synced_at AS last_seen_at,
    p.removed_in_sync_id,
    removed.synced_at AS removed_at,
    p.removed_in_sync_id IS NULL AS is_current,
    p.held_on_or_before,
    p.added_after,
    p.removed_after
FROM periods AS p
JOIN syncs AS first_seen ON first_seen.sync_id = p.first_sync_id
LEFT JOIN syncs AS removed ON removed.sync_id = p.removed_in_sync_id
-- The last full sync before the period ended (or the last of all, while it goes on).
ASOF LEFT JOIN full_syncs AS last_full
    ON coalesce(p.removed_in_sync_id, 9223372036854775807) > last_full.sync_id
LEFT JOIN {{ source('halo', 'agents') }} AS a
    ON p.removed_in_sync_id IS NULL AND a.agent_id = p.agent_id AND a.roles_known
JOIN syncs AS last_seen
    ON last_seen.sync_id = coalesce(a.roles_read_sync_id, greatest(p.first_sync_id, last_full.sync_id))

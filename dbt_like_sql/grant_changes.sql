-- Every grant added or removed, with the sync that saw the change and the agent's read before
-- it (`previous_read_at`): the change happened between the two. The first sync of a warehouse
-- is the baseline: what it found is not counted as added; nor is what an agent held when its
-- memberships were first read (a sync that reads only some agents' details reaches the others
-- later): that was held on or before then.

WITH baseline AS (
    SELECT min(sync_id) AS sync_id
    FROM {{ source('halo', 'sync_runs') }}
    -- 'loaded': the sync these models are being rebuilt from.
    WHERE status IN ('loaded', 'succeeded')
)

SELECT
    grant_id,
    entitlement_id,
    resource_type,
    resource_name,
    principal_id,
    agent_name,
    'added' AS change,
    first_seen_sync_id AS sync_id,
    first_seen_at AS changed_at,
    added_after AS previous_read_at
FROM {{ ref('grant_history') }}
WHERE first_seen_sync_id > (SELECT sync_id FROM baseline) AND NOT held_on_or_before

UNION ALL

SELECT
    grant_id,
    entitlement_id,
    resource_type,
    resource_name,
    principal_id,
    agent_name,
    'removed' AS change,
    removed_in_sync_id AS sync_id,
    removed_at AS changed_at,
    removed_after AS previous_read_at
FROM {{ ref('grant_history') }}
WHERE removed_in_sync_id IS NOT NULL

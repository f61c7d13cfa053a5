-- Who breaks the access policy (access_policy.yml, as the last sync resolved it into
-- policy.rules and policy.roles): one row per agent per rule broken. Rules: each
-- separation-of-duties rule by its name (two of its roles held together),
-- privileged_expired (a privileged role held past the end of its time-bound grant),
-- privileged_unapproved (a privileged role first seen after the warehouse's first sync, the
-- baseline a review certifies, with no approved request for it) and disabled_with_access (a
-- disabled agent holding a role or team). A view: expiries count as of now.
WITH rules AS (
    SELECT rule, kind, severity FROM {{ source('policy', 'rules') }}
),

policy_roles AS (
    SELECT rule, role_id FROM {{ source('policy', 'roles') }}
),

held AS (
    SELECT
        g.principal_id AS agent_id,
        g.agent_name,
        g.entitlement_id,
        g.resource_type,
        g.resource_id,
        g.resource_name,
        g.agent_is_disabled,
        g.expires_at,
        h.first_seen_sync_id,
        h.first_seen_at
    FROM {{ ref('grants') }} AS g
    JOIN {{ ref('grant_history') }} AS h ON h.grant_id = g.grant_id AND h.is_current
),

privileged AS (
    SELECT held.* FROM held
    JOIN policy_roles AS p ON p.rule = 'privileged' AND p.role_id = held.resource_id
    WHERE held.resource_type = 'role'
),

approved AS (
    SELECT r.agent_id, r.entitlement_id, r.created_at
    FROM {{ source('provisioning', 'requests') }} AS r
    WHERE r.action = 'grant' AND r.status IN ('applied', 'already_satisfied')
      AND EXISTS (
          SELECT 1 FROM {{ source('provisioning', 'request_events') }} AS e
          WHERE e.request_id = r.request_id AND e.from_status = 'awaiting_approval'
            AND e.to_status = 'pending' AND e.actor IS NOT NULL
      )
),

violations AS (
    SELECT
        r.rule,
        held.agent_id,
        any_value(held.agent_name) AS agent_name,
        'holds ' || string_agg(held.resource_name, ' and ' ORDER BY held.resource_name) AS detail,
        max(held.first_seen_at) AS since
    FROM rules AS r
    JOIN policy_roles AS p ON p.rule = r.rule
    JOIN held ON held.resource_type = 'role' AND held.resource_id = p.role_id
    WHERE r.kind = 'separation_of_duties'
    GROUP BY r.rule, held.agent_id
    HAVING count(DISTINCT held.resource_id) >= 2

    UNION ALL

    SELECT
        'privileged_expired',
        agent_id,
        agent_name,
        'holds ' || resource_name || ', granted until '
            || strftime(expires_at, '%Y-%m-%d %H:%M:%S UTC'),
        expires_at
    FROM privileged
    WHERE expires_at <= now()
      AND EXISTS (SELECT 1 FROM rules WHERE rule = 'privileged_expired')

    UNION ALL

    SELECT
        'privileged_unapproved',
        agent_id,
        agent_name,
        'holds ' || resource_name || ', first seen ' || strftime(first_seen_at, '%Y-%m-%d')
            || ', with no approved request',
        first_seen_at
    FROM privileged
    WHERE first_seen_sync_id > (
            SELECT min(sync_id) FROM {{ source('halo', 'sync_runs') }}
            WHERE status IN ('loaded', 'succeeded')
        )
      AND NOT EXISTS (
          SELECT 1 FROM approved AS a
          WHERE a.agent_id = privileged.agent_id
            AND a.entitlement_id = privileged.entitlement_id
            AND a.created_at <= privileged.first_seen_at
      )
      AND EXISTS (SELECT 1 FROM rules WHERE rule = 'privileged_unapproved')

    UNION ALL

    SELECT
        'disabled_with_access',
        agent_id,
        any_value(agent_name),
        'disabled, still holds '
            || string_agg(resource_type || ' ' || resource_name, ', '
                          ORDER BY resource_type, resource_name),
        -- HaloITSM does not say when an account was disabled.
        NULL::TIMESTAMPTZ
    FROM held
    WHERE agent_is_disabled
      AND EXISTS (SELECT 1 FROM rules WHERE rule = 'disabled_with_access')
    GROUP BY agent_id
)

SELECT v.rule, r.severity, v.agent_id, v.agent_name, v.detail, v.since
FROM violations AS v
JOIN rules AS r USING (rule)

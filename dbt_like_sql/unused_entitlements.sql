-- Review: empty teams and unused roles, i.e. entitlements nobody holds.

SELECT
    e.entitlement_id,
    e.resource_type,
    e.resource_id,
    e.resource_name,
    e.resource_is_inactive
FROM {{ ref('entitlements') }} AS e
WHERE NOT EXISTS (
    SELECT 1 FROM {{ ref('grants') }} AS g WHERE g.entitlement_id = e.entitlement_id
)

-- What became of a campaign's items: the revoke request each revoke became (its status now
-- and its ticket), and whether a sync after the snapshot found the grant gone (the period
-- the item reviewed, in access.grant_history, closed).
SELECT
    i.item_id,
    r.request_id,
    r.status AS request_status,
    r.ticket_id,
    h.removed_in_sync_id,
    h.removed_at
FROM reviews.items AS i
LEFT JOIN provisioning.requests AS r ON r.review_item_id = i.item_id
LEFT JOIN access.grant_history AS h
    ON h.grant_id = i.grant_id AND h.first_seen_sync_id = i.first_seen_sync_id
   AND h.removed_in_sync_id IS NOT NULL
WHERE i.campaign_id = $campaign_id
ORDER BY i.item_id

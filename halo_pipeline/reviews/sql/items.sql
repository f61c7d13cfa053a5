-- A campaign's items with the decision each stands at: its latest, NULL while undecided.
-- Once the campaign is closed, a decision recorded after (with SQL) changes nothing.
-- Decision ids, not times, order them: a time can be written as anything.
WITH latest AS (
    SELECT d.item_id, d.decision, d.note, d.decided_by, d.decided_at, d.decision_id,
           d.statement, d.signature
    FROM reviews.decisions AS d
    JOIN reviews.items AS i USING (item_id)
    JOIN reviews.campaigns AS c USING (campaign_id)
    WHERE i.campaign_id = $campaign_id
      AND d.decision_id <= coalesce(c.final_decision_id, d.decision_id)
    QUALIFY row_number() OVER (PARTITION BY d.item_id ORDER BY d.decision_id DESC) = 1
)

SELECT
    i.grant_id, i.agent_id, i.agent_name, i.agent_email, i.entitlement_id, i.resource_type,
    i.entitlement_name, i.held_since, i.held_since_first_sync, i.first_seen_sync_id,
    i.last_change, i.item_id, i.reviewers, i.reviewer_source,
    d.decision, d.note, d.decided_by, d.decided_at, d.decision_id, d.statement, d.signature
FROM reviews.items AS i
LEFT JOIN latest AS d USING (item_id)
WHERE i.campaign_id = $campaign_id
ORDER BY i.item_id

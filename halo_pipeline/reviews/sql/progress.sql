-- Every campaign's progress: its items, how many are decided and how, and how many are
-- undecided past the due date. A closed campaign counts the decisions it closed with.
WITH latest AS (
    SELECT d.item_id, d.decision
    FROM reviews.decisions AS d
    JOIN reviews.items AS i USING (item_id)
    JOIN reviews.campaigns AS c USING (campaign_id)
    WHERE d.decision_id <= coalesce(c.final_decision_id, d.decision_id)
    QUALIFY row_number() OVER (PARTITION BY d.item_id ORDER BY d.decision_id DESC) = 1
)

SELECT
    c.name AS campaign,
    c.scope_label AS scope,
    c.due_date AS due,
    CASE WHEN c.closed_at IS NULL THEN 'open' ELSE 'closed' END AS status,
    count(i.item_id) AS items,
    count(d.decision) AS decided,
    count(*) FILTER (WHERE d.decision = 'keep') AS kept,
    count(*) FILTER (WHERE d.decision = 'revoke') AS revoked,
    count(*) FILTER (WHERE d.decision = 'not_reviewed') AS not_reviewed,
    CASE WHEN c.closed_at IS NULL AND c.due_date < current_date
         THEN count(i.item_id) - count(d.decision) ELSE 0 END AS overdue
FROM reviews.campaigns AS c
LEFT JOIN reviews.items AS i USING (campaign_id)
LEFT JOIN latest AS d USING (item_id)
GROUP BY c.campaign_id, c.name, c.scope_label, c.due_date, c.closed_at
ORDER BY c.campaign_id

-- The HaloITSM ticket each reviewer of a campaign gets with `review start --notify`, assigned
-- to them (`agent_id`), with their review sheet attached. `opening_at` is set before the ticket
-- is created, so a run that died between HaloITSM creating it and this row recording it looks
-- the ticket up by its tag instead of opening a second; `attached` names the files already on
-- it, and `notified_at` says all are. Once the campaign closes, provisioning_job answers the ticket with the outcome and closes
-- it (`closed_at`, `outcome`), so `review close` never waits on HaloITSM.
CREATE TABLE IF NOT EXISTS reviews.reviewer_tickets (
    campaign_id BIGINT NOT NULL,
    reviewer VARCHAR NOT NULL,
    agent_id BIGINT NOT NULL,
    items INTEGER NOT NULL,
    ticket_id BIGINT,
    opening_at TIMESTAMPTZ,
    attached VARCHAR[] NOT NULL DEFAULT [],
    notified_at TIMESTAMPTZ,
    closed_at TIMESTAMPTZ,
    outcome VARCHAR,
    PRIMARY KEY (campaign_id, reviewer)
);

-- Access reviews: a campaign snapshots the grants in its scope as of one sync into items, a
-- reviewer decides each (keep or revoke), and closing it files a revoke request per revoke.
CREATE SCHEMA IF NOT EXISTS reviews;

CREATE SEQUENCE IF NOT EXISTS reviews.campaign_id_seq START 1;
CREATE SEQUENCE IF NOT EXISTS reviews.item_id_seq START 1;
CREATE SEQUENCE IF NOT EXISTS reviews.decision_id_seq START 1;

CREATE TABLE IF NOT EXISTS reviews.campaigns (
    campaign_id  BIGINT DEFAULT nextval('reviews.campaign_id_seq') PRIMARY KEY,
    name         VARCHAR NOT NULL UNIQUE,
    scope        VARCHAR NOT NULL,     -- privileged | all | role:<guid> | team:<id>, resolved
    scope_label  VARCHAR NOT NULL,     -- as people read it: role 'Administrator'
    sync_id      BIGINT NOT NULL,      -- the sync whose grants were snapshotted
    synced_at    TIMESTAMPTZ NOT NULL, -- when that sync read HaloITSM
    due_date     DATE,
    reviewer     VARCHAR,              -- --reviewer, when every item was given to one person
    started_by   VARCHAR,              -- the operating-system user who ran `review start`
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_by    VARCHAR,              -- the --by of `review close`
    closed_at    TIMESTAMPTZ,
    final_decision_id BIGINT           -- the last decision that counts: later rows change nothing
);

CREATE TABLE IF NOT EXISTS reviews.items (
    item_id            BIGINT DEFAULT nextval('reviews.item_id_seq') PRIMARY KEY,
    campaign_id        BIGINT NOT NULL,
    grant_id           VARCHAR NOT NULL,
    agent_id           BIGINT NOT NULL,
    agent_name         VARCHAR NOT NULL,
    agent_email        VARCHAR,
    entitlement_id     VARCHAR NOT NULL,
    resource_type      VARCHAR NOT NULL,  -- role | team
    entitlement_name   VARCHAR NOT NULL,
    held_since         TIMESTAMPTZ NOT NULL,  -- the current period's first sync (grant_history)
    held_since_first_sync BOOLEAN NOT NULL,   -- held at the warehouse's first sync: at least since
    first_seen_sync_id BIGINT NOT NULL,       -- which period of the grant this item is
    last_change        VARCHAR NOT NULL,      -- how the grant came to be, in words
    reviewers          VARCHAR[] NOT NULL,    -- any of them decides; never the agent
    reviewer_source    VARCHAR NOT NULL,      -- the named reviewer | team managers | default team managers | policy approvers
    UNIQUE (campaign_id, grant_id)
);

-- Every decision recorded, the replaced ones too: an item's decision is its latest row.
CREATE TABLE IF NOT EXISTS reviews.decisions (
    decision_id  BIGINT DEFAULT nextval('reviews.decision_id_seq') PRIMARY KEY,
    item_id      BIGINT NOT NULL,
    decision     VARCHAR NOT NULL,  -- keep | revoke | not_reviewed (closed with --force)
    note         VARCHAR,
    decided_by   VARCHAR NOT NULL,
    os_user      VARCHAR,           -- who ran the command: --by is not authenticated
    source       VARCHAR NOT NULL,  -- decide | import <file>:<line> | close --force
    decided_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The revoke request a campaign's `revoke` became, linked to its item (and so its campaign).
ALTER TABLE provisioning.requests ADD COLUMN IF NOT EXISTS review_item_id BIGINT;

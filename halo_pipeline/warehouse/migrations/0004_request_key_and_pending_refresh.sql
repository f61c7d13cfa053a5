-- request_id is a key the database enforces: a second row with a taken id is refused by the
-- INSERT itself, instead of stopping every provisioning run after it.
ALTER TABLE provisioning.requests ADD PRIMARY KEY (request_id);

-- Agents a provisioning run changed and that no sync has read since: the next run's targeted
-- sync reads them, so an applied change reaches halo.* and access.* even after a crash.
CREATE TABLE IF NOT EXISTS provisioning.pending_refresh (
    agent_id    BIGINT PRIMARY KEY,
    run_id      VARCHAR,
    recorded_at TIMESTAMPTZ DEFAULT now() NOT NULL
);

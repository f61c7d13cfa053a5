-- Access requests people file as HaloITSM tickets: one row per ticket taken in, keyed on the
-- ticket, so a ticket files at most one request however many runs look at it. `request_id`
-- is NULL when the ticket could not become a request (`refused` says why, as its note did).
-- Who asked, as HaloITSM knows them: the end user's email, and the agents nobody of whom may
-- approve it (the agent the user record belongs to, the agent who logged it for them).
CREATE TABLE IF NOT EXISTS provisioning.request_tickets (
    ticket_id BIGINT PRIMARY KEY,
    request_id BIGINT,
    user_email VARCHAR,
    requester_agent_ids BIGINT[] NOT NULL DEFAULT [],
    refused VARCHAR,
    -- What its fields asked when it was taken in: a ticket edited afterwards is not applied.
    asked JSON,
    last_update VARCHAR,
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Access requests people file as HaloITSM tickets: one row per ticket taken in, keyed on the
-- ticket, so a ticket files at most one request however many runs look at it. `request_id`
-- is NULL when the ticket could not become a request: `refused` says why, as its note did.
-- Who asked and what is asked are read from the ticket in HaloITSM whenever they decide
-- anything, never from here.
CREATE TABLE IF NOT EXISTS provisioning.request_tickets (
    ticket_id BIGINT PRIMARY KEY,
    request_id BIGINT,
    refused VARCHAR,
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

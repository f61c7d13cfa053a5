-- Approvals, denials, review decisions, closes and the job's own `applied` events are signed
-- statements about content: the canonical JSON signed (`statement`) and its HMAC-SHA256
-- (`signature`, hex), made by the command or the job with a key outside the warehouse. Rows
-- recorded before this release have neither: they stay as history and count for nothing.
ALTER TABLE provisioning.request_events ADD COLUMN IF NOT EXISTS statement VARCHAR;
ALTER TABLE provisioning.request_events ADD COLUMN IF NOT EXISTS signature VARCHAR;
ALTER TABLE reviews.decisions ADD COLUMN IF NOT EXISTS statement VARCHAR;
ALTER TABLE reviews.decisions ADD COLUMN IF NOT EXISTS signature VARCHAR;
ALTER TABLE reviews.campaigns ADD COLUMN IF NOT EXISTS close_statement VARCHAR;
ALTER TABLE reviews.campaigns ADD COLUMN IF NOT EXISTS close_signature VARCHAR;
-- The run that claimed a request, in the transaction before any write for it: a request
-- claimed by one run is never acted on by another while that run lives.
ALTER TABLE provisioning.requests ADD COLUMN IF NOT EXISTS claimed_by VARCHAR;
ALTER TABLE provisioning.requests ADD COLUMN IF NOT EXISTS claimed_at TIMESTAMPTZ;
-- Approvers, deniers and reviewers as HaloITSM agents: the agent id they resolved to.
ALTER TABLE provisioning.request_events ADD COLUMN IF NOT EXISTS actor_agent_id BIGINT;
ALTER TABLE reviews.decisions ADD COLUMN IF NOT EXISTS decided_by_agent_id BIGINT;
-- Where signing began: decisions recorded before it are history, never checked or honoured;
-- any unsigned one after it was written by hand, and the unverified_approval check names it.
ALTER TABLE main.meta ADD COLUMN IF NOT EXISTS signed_from_event_id BIGINT;
ALTER TABLE main.meta ADD COLUMN IF NOT EXISTS signed_from_decision_id BIGINT;
UPDATE main.meta SET
    signed_from_event_id = (SELECT coalesce(max(event_id), 0) FROM provisioning.request_events),
    signed_from_decision_id = (SELECT coalesce(max(decision_id), 0) FROM reviews.decisions)
WHERE signed_from_event_id IS NULL;

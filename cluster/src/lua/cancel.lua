-- Cancels a job from any instance (see `cancel_job` in common.lua).
-- ARGV: prefix, id, cancelled_event, ttl_ms
-- Returns 'removed', 'signalled', 'ended' (already over) or 'unknown'.
return cancel_job(ARGV[2], ARGV[3], tonumber(ARGV[4]))

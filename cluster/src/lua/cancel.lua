-- Cancels a job from any instance (see `cancel_job` in common.lua). Given an owner, only while
-- that instance owns the job: once a client resumed it through another instance, what its old
-- instance still holds (a ticket dropped late) must not cancel it.
-- ARGV: prefix, id, cancelled_event, ttl_ms, owner ('' = whoever owns it)
-- Returns 'removed', 'signalled', 'ended' (already over), 'unknown' or 'moved'.
if ARGV[5] ~= '' then
  local owner = redis.call('HGET', key('job', ARGV[2]), 'owner')
  if owner and owner ~= ARGV[5] then return 'moved' end
end
return cancel_job(ARGV[2], ARGV[3], tonumber(ARGV[4]))

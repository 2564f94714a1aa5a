-- Extends a running job's lease, only for the holder of its current fencing token.
-- ARGV: prefix, id, fence, lease_ms. Returns 1 (renewed), 0 (the lease is lost), or 2 (renewed,
-- and the job's owner asked for it to be cancelled).
local job = key('job', ARGV[2])
local j = redis.call('HMGET', job, 'fence', 'state', 'cancel')
if j[1] ~= ARGV[3] or j[2] ~= 'running' then return 0 end
redis.call('ZADD', key('leases'), now_ms() + tonumber(ARGV[4]), ARGV[2])
if j[3] == '1' then return 2 end
return 1

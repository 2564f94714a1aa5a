-- Appends a running job's event, only for the holder of its current fencing token; a terminal
-- event ends the job (its lease is dropped, its record expires after the resume window).
-- ARGV: prefix, id, fence, event, terminal (0/1), streamed (0/1: the job has sent output that
--       cannot be taken back), ttl_ms
-- Returns the event's seq, or -1 when the fence is stale (the lease was lost).
local id = ARGV[2]
local job = key('job', id)
local j = redis.call('HMGET', job, 'fence', 'state')
if j[1] ~= ARGV[3] or j[2] ~= 'running' then return -1 end
local ttl = tonumber(ARGV[7])
if ARGV[6] == '1' then redis.call('HSET', job, 'streamed', 1) end
local seq = append(id, job, ARGV[4], ttl)
if ARGV[5] == '1' then ended(id, job, ttl) end
return seq

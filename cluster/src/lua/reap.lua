-- Takes back jobs whose lease expired (their worker died, paused or lost Redis): each gets a new
-- fencing token, so the old worker can neither append nor finish. A job that has not streamed
-- output and was not retried yet goes back to its original place in its line (same score and
-- member); any other ends with `failed_event` (or `cancelled_event` when its owner had asked).
-- ARGV: prefix, failed_event, cancelled_event, ttl_ms, limit
-- Returns {requeued, failed}.
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', key('leases'), '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
local ttl = tonumber(ARGV[4])
local requeued, failed = 0, 0
for _, id in ipairs(expired) do
  redis.call('ZREM', key('leases'), id)
  local job = key('job', id)
  local j = redis.call('HMGET', job, 'state', 'attempts', 'streamed', 'line', 'member', 'score',
    'party', 'cancel')
  if j[1] == 'running' then
    redis.call('HSET', job, 'fence', redis.call('INCR', key('fence')))
    if j[2] == '0' and j[3] ~= '1' and j[8] ~= '1' then
      redis.call('HSET', job, 'state', 'waiting', 'attempts', 1)
      redis.call('HDEL', job, 'worker')
      redis.call('ZADD', key('line', j[4], 'q'), j[6], j[5])
      waiting_delta(j[7], 1)
      changed('add', j[4], j[5], j[6])
      requeued = requeued + 1
    else
      local event = ARGV[2]
      if j[8] == '1' then event = ARGV[3] end
      append(id, job, event, ttl)
      ended(id, job, ttl)
      failed = failed + 1
    end
  end
end
return {requeued, failed}

-- Cancels the jobs of instances silent for longer than `dead_after_ms` (their clients are gone:
-- the instance was killed, or lost Redis for longer than the resume window), at most `limit` a
-- call; an instance is forgotten once it owns nothing.
-- ARGV: prefix, dead_after_ms, cancelled_event, ttl_ms, limit. Returns the jobs cancelled.
local dead = redis.call('ZRANGEBYSCORE', key('instances'), '-inf', now_ms() - tonumber(ARGV[2]),
  'LIMIT', 0, 10)
local left, n = tonumber(ARGV[5]), 0
for _, inst in ipairs(dead) do
  local owned = key('owned', inst)
  for _, id in ipairs(redis.call('SRANDMEMBER', owned, left)) do
    local state = redis.call('HGET', key('job', id), 'state')
    if state == 'running' and redis.call('HGET', key('job', id), 'cancel') == '1' then
      -- already told; its worker ends it
    elseif cancel_job(id, ARGV[3], tonumber(ARGV[4])) ~= 'signalled' then
      redis.call('SREM', owned, id)
    end
    n = n + 1
    left = left - 1
  end
  if redis.call('SCARD', owned) == 0 then
    redis.call('ZREM', key('instances'), inst)
    redis.call('DEL', key('inst', inst))
  end
  if left <= 0 then break end
end
return n

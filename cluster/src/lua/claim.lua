-- Hands the first waiting job of a line to a worker, under a lease with a new fencing token,
-- and moves the line's virtual time as FairClock::dispatched does.
-- ARGV: prefix, line, worker, lease_ms
-- Returns false (nothing waits) or {id, fence, payload, waited_ms, attempts}.
local line, worker, lease = ARGV[2], ARGV[3], tonumber(ARGV[4])
local q = key('line', line, 'q')
local first = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
if #first == 0 then return false end
local member, score = first[1], first[2]
redis.call('ZREM', q, member)
local id = string.sub(member, string.find(member, ':', 1, true) + 1)
local job = key('job', id)
local j = redis.call('HMGET', job, 'finish', 'party', 'payload', 'enq', 'attempts')
local vkey = key('line', line, 'v')
local v = tonumber(redis.call('GET', vkey) or '0')
local finish = tonumber(j[1])
if finish > v then
  v = finish
  redis.call('SET', vkey, string.format('%d', v))
end
-- A party whose last finish tag the virtual time has reached is tagged like a new one: forget it.
local last = redis.call('HGET', key('line', line, 'last'), j[2])
if last and tonumber(last) <= v then redis.call('HDEL', key('line', line, 'last'), j[2]) end
local fence = redis.call('INCR', key('fence'))
local now = now_ms()
redis.call('HSET', job, 'state', 'running', 'worker', worker, 'fence', fence, 'started', now)
redis.call('ZADD', key('leases'), now + lease, id)
waiting_delta(j[2], -1)
changed('rem', line, member, score)
return {id, fence, j[3], now - tonumber(j[4]), tonumber(j[5])}

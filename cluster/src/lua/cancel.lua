-- Cancels a job from any instance. A waiting job leaves its line (its party is not charged for
-- it if it was the party's last, as FairClock::withdrawn) and ends with the given event; a
-- running one is flagged and its worker told through its control stream.
-- ARGV: prefix, id, cancelled_event, ttl_ms
-- Returns 'removed', 'signalled', 'ended' (already over) or 'unknown'.
local id = ARGV[2]
local job = key('job', id)
local j = redis.call('HMGET', job, 'state', 'line', 'member', 'score', 'party', 'finish',
  'prev', 'worker')
if not j[1] then return 'unknown' end
if j[1] == 'waiting' then
  local line, party = j[2], j[5]
  redis.call('ZREM', key('line', line, 'q'), j[3])
  local lastk = key('line', line, 'last')
  if redis.call('HGET', lastk, party) == j[6] then
    if tonumber(j[7]) > 0 then redis.call('HSET', lastk, party, j[7])
    else redis.call('HDEL', lastk, party) end
  end
  waiting_delta(party, -1)
  changed('rem', line, j[3], j[4])
  local ttl = tonumber(ARGV[4])
  append(id, job, ARGV[3], ttl)
  ended(id, job, ttl)
  return 'removed'
end
if j[1] == 'running' then
  redis.call('HSET', job, 'cancel', 1)
  redis.call('XADD', key('ctl', j[8]), 'MAXLEN', '~', 10000, '*', 'j', id, 'op', 'cancel')
  return 'signalled'
end
return 'ended'

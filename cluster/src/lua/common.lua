-- Shared helpers, prepended to every script (scripts.rs). Keys are built from the prefix in
-- ARGV[1]; this is for one Redis server (or a primary with replicas), not Redis Cluster.
local P = ARGV[1]
local function key(...) return P .. ':' .. table.concat({...}, ':') end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Records one change of a line's order in the change stream every instance follows; `c` numbers
-- changes without gaps, so a follower that missed some (a trimmed stream) knows to resynchronise.
local function changed(op, line, member, score)
  local c = redis.call('INCR', key('cseq'))
  redis.call('XADD', key('changes'), 'MAXLEN', '~', 100000, '*',
    'c', c, 'op', op, 'l', line, 'm', member, 's', score)
end
local function waiting_delta(party, d)
  redis.call('INCRBY', key('nwaiting'), d)
  local n = redis.call('HINCRBY', key('pwaiting'), party, d)
  if n <= 0 then redis.call('HDEL', key('pwaiting'), party) end
end
-- Appends one event to the job's own stream (read by `resume` from any instance) and to its
-- owner instance's stream (what that instance follows); returns the event's seq.
local function append(id, job, event, ttl_ms)
  local seq = redis.call('HINCRBY', job, 'eseq', 1)
  local ev = key('ev', id)
  redis.call('XADD', ev, 'MAXLEN', '~', 10000, '*', 'q', seq, 'e', event)
  redis.call('PEXPIRE', ev, ttl_ms)
  local owner = redis.call('HGET', job, 'owner')
  if owner then
    redis.call('XADD', key('inst', owner), 'MAXLEN', '~', 100000, '*', 'j', id, 'q', seq, 'e', event)
  end
  return seq
end
-- A job that ended: nothing more may be written for it, and it is forgotten after `ttl_ms`.
local function ended(id, job, ttl_ms)
  local owner = redis.call('HGET', job, 'owner')
  if owner then redis.call('SREM', key('owned', owner), id) end
  redis.call('HSET', job, 'state', 'done')
  redis.call('HDEL', job, 'payload')
  redis.call('ZREM', key('leases'), id)
  redis.call('PEXPIRE', job, ttl_ms)
end
-- Cancels a job: a waiting one leaves its line (its party is not charged for it if it was the
-- party's last, as FairClock::withdrawn) and ends with `event`; a running one is flagged and its
-- worker told through its control stream. Returns 'removed', 'signalled', 'ended' or 'unknown'.
local function cancel_job(id, event, ttl_ms)
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
    append(id, job, event, ttl_ms)
    ended(id, job, ttl_ms)
    return 'removed'
  end
  if j[1] == 'running' then
    redis.call('HSET', job, 'cancel', 1)
    redis.call('XADD', key('ctl', j[8]), 'MAXLEN', '~', 10000, '*', 'j', id, 'op', 'cancel')
    return 'signalled'
  end
  return 'ended'
end

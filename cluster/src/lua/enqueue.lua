-- Admits and queues one job, tagging it exactly as the scheduler's FairClock::tag does.
-- ARGV: prefix, id, line, party, weight, cost_us, fifo (0/1), max_waiting, max_per_party,
--       owner, payload, session (who may resume it through another instance; empty: nobody),
--       meta (what its owner needs to resume it, opaque)
-- Returns {'ok', seq, tag, position, line_length} or {'queue_full'} / {'rate_limited'} /
-- {'duplicate'}.
local id, line, party = ARGV[2], ARGV[3], ARGV[4]
local weight = math.max(1, tonumber(ARGV[5]))
local cost = tonumber(ARGV[6])
local fifo = ARGV[7] == '1'
local max_waiting, max_party = tonumber(ARGV[8]), tonumber(ARGV[9])
local job = key('job', id)
if redis.call('EXISTS', job) == 1 then return {'duplicate'} end
if max_waiting > 0 and tonumber(redis.call('GET', key('nwaiting')) or '0') >= max_waiting then
  return {'queue_full'}
end
if max_party > 0 and tonumber(redis.call('HGET', key('pwaiting'), party) or '0') >= max_party then
  return {'rate_limited'}
end
local seq = redis.call('INCR', key('seq'))
local tag, finish, prev = seq, 0, 0
if not fifo then
  local v = tonumber(redis.call('GET', key('line', line, 'v')) or '0')
  prev = tonumber(redis.call('HGET', key('line', line, 'last'), party) or '0')
  local start = math.max(v, prev)
  finish = start + math.max(1, math.floor(cost / weight))
  redis.call('HSET', key('line', line, 'last'), party, finish)
  local backlog = 0
  if prev > v then backlog = 1 end
  tag = start * 2 + backlog
end
-- Equal tags run in arrival order: the member starts with the zero-padded seq.
local member = string.format('%016d', seq) .. ':' .. id
local q = key('line', line, 'q')
redis.call('ZADD', q, tag, member)
redis.call('HSET', job, 'line', line, 'member', member, 'score', tag, 'party', party,
  'finish', finish, 'prev', prev, 'payload', ARGV[11], 'owner', ARGV[10], 'state', 'waiting',
  'attempts', 0, 'eseq', 0, 'enq', now_ms(), 'cost', cost, 'sess', ARGV[12], 'meta', ARGV[13])
waiting_delta(party, 1)
redis.call('SADD', key('owned', ARGV[10]), id)
changed('add', line, member, tag)
return {'ok', seq, tag, redis.call('ZRANK', q, member) + 1, redis.call('ZCARD', q)}

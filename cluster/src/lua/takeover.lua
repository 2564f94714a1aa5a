-- A client resumes a job through instance `owner`. If the job was queued for the client's
-- session, it moves to `owner` (its later events go to that instance's stream; the old owner is
-- told through its own stream, with the job's move count, to let go of it) and the job's copied
-- wire messages from seq `from` on are returned, read in the same step (the old owner's copies
-- stop here: see wire.lua).
-- ARGV: prefix, id, owner, session, from
-- Returns {'unknown'} (no such job, or another session's: one answer for both), {'mine'}
-- (`owner` owns it), {'gone', first} (messages from `from` on are no longer kept), or
-- {'moved', state, meta, moves, next_seq, last_q, seq1, q1, message1, seq2, ...}: `next_seq`
-- and `last_q` are one past the highest seq and the highest event number copied.
local id, owner, session, from = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local job = key('job', id)
local j = redis.call('HMGET', job, 'state', 'sess', 'owner', 'meta')
if not j[1] or not j[2] or j[2] == '' or j[2] ~= session then return {'unknown'} end
if j[3] == owner then return {'mine'} end
local out, first, next_seq, last_q = {}, nil, 0, 0
for _, e in ipairs(redis.call('XRANGE', key('wire', id), '-', '+')) do
  local f, s, q, m = e[2], nil, nil, nil
  for k = 1, #f, 2 do
    if f[k] == 's' then s = tonumber(f[k + 1])
    elseif f[k] == 'q' then q = tonumber(f[k + 1])
    elseif f[k] == 'm' then m = f[k + 1] end
  end
  if s and q and m then
    if not first or s < first then first = s end
    if s + 1 > next_seq then next_seq = s + 1 end
    if q > last_q then last_q = q end
    if s >= from then
      out[#out + 1] = s
      out[#out + 1] = q
      out[#out + 1] = m
    end
  end
end
if first and first > from then return {'gone', first} end
local moves = redis.call('HINCRBY', job, 'moves', 1)
if j[3] then
  if j[1] ~= 'done' then redis.call('SMOVE', key('owned', j[3]), key('owned', owner), id) end
  redis.call('XADD', key('inst', j[3]), 'MAXLEN', '~', 100000, '*', 'j', id, 'moved', moves)
elseif j[1] ~= 'done' then
  redis.call('SADD', key('owned', owner), id)
end
redis.call('HSET', job, 'owner', owner)
local r = {'moved', j[1], j[4] or '', moves, next_seq, last_q}
for _, v in ipairs(out) do r[#r + 1] = v end
return r

-- Copies chat messages to their jobs' wire streams (what a client replays when it resumes through
-- another instance), each only while `owner` owns its job: once another instance took a job
-- over, its old owner's late copies are dropped, so each seq has one author at a time.
-- ARGV: prefix, owner, ttl_ms, maxlen, then id, seq, q, message for each message.
-- Returns how many were copied.
local owner, ttl, maxlen = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = 0
for i = 5, #ARGV - 3, 4 do
  local id = ARGV[i]
  if redis.call('HGET', key('job', id), 'owner') == owner then
    local w = key('wire', id)
    redis.call('XADD', w, 'MAXLEN', '~', maxlen, '*', 's', ARGV[i + 1], 'q', ARGV[i + 2],
      'm', ARGV[i + 3])
    redis.call('PEXPIRE', w, ttl)
    n = n + 1
  end
end
return n

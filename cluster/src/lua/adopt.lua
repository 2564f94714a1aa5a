-- Makes another instance the owner of a job (its client resumed there): the job's later events
-- go to that instance's stream. ARGV: prefix, id, owner. Returns the job's state, or false.
local job = key('job', ARGV[2])
local state = redis.call('HGET', job, 'state')
if not state then return false end
local old = redis.call('HGET', job, 'owner')
if old and state ~= 'done' then redis.call('SMOVE', key('owned', old), key('owned', ARGV[3]), ARGV[2]) end
redis.call('HSET', job, 'owner', ARGV[3])
return state

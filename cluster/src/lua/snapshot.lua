-- The lines' whole order and the change counter it is current at, read atomically, so a
-- follower applies exactly the changes numbered after it.
-- ARGV: prefix, line1, line2, ... Returns {cseq, {member, score, ...}, {member, score, ...}, ...}.
local out = {tonumber(redis.call('GET', key('cseq')) or '0')}
for i = 2, #ARGV do
  out[#out + 1] = redis.call('ZRANGE', key('line', ARGV[i], 'q'), 0, -1, 'WITHSCORES')
end
return out

-- An instance says it is alive (by the server's clock, so hosts' clocks need not agree).
-- ARGV: prefix, instance.
redis.call('ZADD', key('instances'), now_ms(), ARGV[2])
return 1

-- Start a new generation. ARGV[3]: the expected current token, or '' for
-- unconditionally: with a token, only if the current generation is still
-- that one (nodes racing to replace a lost generation make one).
local token = redis.call('HGET', meta, 'token')
if ARGV[3] == '' or not token or token == ARGV[3] then
  new_generation()
end
return 1

-- Publish one batch: ARGV[3] seen token, ARGV[4] seen number, ARGV[5] most
-- events retained, ARGV[6] most bytes retained, ARGV[7] batch size, ARGV[8]
-- a random request key, then per event: type, caller id ('' for auto),
-- encoded body.
-- Returns {token, first number, time in microseconds}. A request key seen in
-- the last minute returns that request's result again, publishing nothing:
-- a node may resend a batch whose reply a dropped connection lost.
local request_key = prefix .. ':r:' .. ARGV[8]
local done = redis.call('GET', request_key)
if done then
  local token_done, first_done, now_done = string.match(done, '^(%x+):(%d+):(%d+)$')
  return {token_done, tonumber(first_done), tonumber(now_done)}
end
local token = current(ARGV[3], tonumber(ARGV[4]))
local stream, ids = stream_key(token), ids_key(token)
local max_events, max_bytes, count = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local last_time = tonumber(redis.call('HGET', meta, 't') or '0')
if now < last_time then now = last_time end
redis.call('HSET', meta, 't', now)

local last = redis.call('HINCRBY', meta, 'n', count)
local first = last - count + 1
local added = 0
for i = 0, count - 1 do
  local event_type, id, body = ARGV[9 + 3 * i], ARGV[10 + 3 * i], ARGV[11 + 3 * i]
  local n = first + i
  redis.call('XADD', stream, n .. '-0', 'f', body, 't', event_type, 'i', id, 'ts', now)
  if id ~= '' then redis.call('HSET', ids, id, n) end
  added = added + #body + #id + 40
end

-- Trim the oldest entries past either bound (never the newest one).
local bytes = redis.call('HINCRBY', meta, 'bytes', added)
local len = redis.call('XLEN', stream)
local cut, evicted = nil, nil
local start = '-'
-- Read just past what the count bound needs (the byte bound may need more
-- pages).
local page = math.min(256, math.max(16, len - max_events))
while (len > max_events or bytes > max_bytes) and len > 1 do
  local entries = redis.call('XRANGE', stream, start, '+', 'COUNT', page)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    if not ((len > max_events or bytes > max_bytes) and len > 1) then break end
    local fields = entry[2]
    local n = number_of(entry[1])
    bytes = bytes - (#fields[2] + #fields[6] + 40)
    len = len - 1
    cut, evicted = n, fields[8]
    if fields[6] ~= '' and redis.call('HGET', ids, fields[6]) == tostring(n) then
      redis.call('HDEL', ids, fields[6])
    end
    start = '(' .. entry[1]
  end
end
if cut then
  redis.call('XTRIM', stream, 'MINID', (cut + 1) .. '-0')
  redis.call('HSET', meta, 'bytes', bytes, 'evicted', evicted)
end
redis.call('SET', request_key, token .. ':' .. first .. ':' .. now, 'EX', 60)
return {token, first, now}

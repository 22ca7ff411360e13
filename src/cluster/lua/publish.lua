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
local stream, ids, id_list = stream_key(token), ids_key(token), id_list_key(token)
local max_events, max_bytes, count = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local last_time = tonumber(redis.call('HGET', meta, 't') or '0')
if now < last_time then now = last_time end

local last = redis.call('HINCRBY', meta, 'n', count)
local first = last - count + 1
local cum = tonumber(redis.call('HGET', meta, 'cum') or '0')
for i = 0, count - 1 do
  local event_type, id, body = ARGV[9 + 3 * i], ARGV[10 + 3 * i], ARGV[11 + 3 * i]
  local n = first + i
  if id == '' then
    redis.call('XADD', stream, n .. '-0', 'f', body, 't', event_type, 'ts', now, 'c', cum)
  else
    redis.call('XADD', stream, n .. '-0', 'f', body, 't', event_type, 'ts', now, 'c', cum, 'i', id)
    redis.call('HSET', ids, id, n)
    redis.call('RPUSH', id_list, n .. ':' .. id)
  end
  cum = cum + #body + #id + 40
end
redis.call('HSET', meta, 't', now, 'cum', cum)

-- Trim to both bounds (never the newest entry), reading O(log n) entries:
-- an entry's `c` says how many bytes came before it, so the bytes kept
-- from entry m on are cum - c(m).
local oldest = tonumber(redis.call('HGET', meta, 'oldest') or '1')
local function field(k, index)
  local entry = redis.call('XRANGE', stream, k .. '-0', k .. '-0')
  if #entry == 0 then return 0 end
  return tonumber(entry[1][2][index])
end
local keep = oldest
if last - keep + 1 > max_events then keep = last - max_events + 1 end
local need = cum - max_bytes
if need > 0 and keep < last and field(keep, 8) < need then
  local low, high = keep + 1, last
  while low < high do
    local mid = math.floor((low + high) / 2)
    if field(mid, 8) >= need then high = mid else low = mid + 1 end
  end
  keep = low
end
if keep > oldest then
  local evicted = field(keep - 1, 6)
  redis.call('XTRIM', stream, 'MINID', keep .. '-0')
  -- Forget caller ids whose event was trimmed (unless a newer one has it).
  while true do
    local entry = redis.call('LINDEX', id_list, 0)
    if not entry then break end
    local n, id = string.match(entry, '^(%d+):(.*)$')
    if tonumber(n) >= keep then break end
    redis.call('LPOP', id_list)
    if redis.call('HGET', ids, id) == n then redis.call('HDEL', ids, id) end
  end
  redis.call('HSET', meta, 'oldest', keep, 'evicted', evicted)
end
redis.call('SET', request_key, token .. ':' .. first .. ':' .. now, 'EX', 60)
return {token, first, now}

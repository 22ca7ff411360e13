-- Shared by every ssehub script (prepended to each).
-- KEYS[1]: the meta hash, KEYS[2]: the control stream.
-- ARGV[1]: the key prefix, ARGV[2]: a fresh random token (used only if this
-- call starts a generation).
-- meta fields: token (16 hex), gen (generations started), n (last number
-- handed out), t (last time stamped, microseconds), cum (bytes of every
-- event added in the generation), oldest (number of the oldest retained
-- event), evicted (time of the newest trimmed entry, -1 for none).
-- Stream entries `<n>-0`: f (frame body), t (type), ts (time, µs), c (cum
-- before this entry), and i (caller id) when there is one.
local meta, control, prefix, candidate = KEYS[1], KEYS[2], ARGV[1], ARGV[2]

local function stream_key(token) return prefix .. ':s:' .. token end
local function ids_key(token) return prefix .. ':i:' .. token end
local function id_list_key(token) return prefix .. ':l:' .. token end
local function number_of(entry_id) return tonumber(string.match(entry_id, '^(%d+)')) end

local function new_generation()
  local old = redis.call('HGET', meta, 'token')
  if old then redis.call('DEL', stream_key(old), ids_key(old), id_list_key(old)) end
  redis.call('HINCRBY', meta, 'gen', 1)
  redis.call('HSET', meta, 'token', candidate, 'n', 0, 't', 0, 'cum', 0, 'oldest', 1, 'evicted', -1)
  redis.call('XADD', control, 'MAXLEN', '~', 100, '*', 'token', candidate)
  return candidate
end

-- The current generation's token. A new generation when there is none
-- (first use, or Redis restarted empty), or when Redis holds fewer events of
-- seen_token than a node has seen (a failover or restart lost the newest
-- entries): numbering on from there would give one id to two events.
local function current(seen_token, seen_n)
  local token = redis.call('HGET', meta, 'token')
  if not token then return new_generation() end
  if token == seen_token and tonumber(redis.call('HGET', meta, 'n')) < seen_n then
    return new_generation()
  end
  return token
end

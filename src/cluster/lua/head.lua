-- The current generation's state. ARGV[3] seen token, ARGV[4] seen number
-- (see current()), ARGV[5] lookup ('' none, 'id' caller id, 'ts' time in
-- microseconds), ARGV[6] its value.
-- Returns {token, gen, last, oldest, evicted, retained, bytes, found,
-- control stream's last entry id}; found is -1 when nothing was asked or
-- the caller id is not retained.
local token = current(ARGV[3], tonumber(ARGV[4]))
local stream = stream_key(token)
local last = tonumber(redis.call('HGET', meta, 'n'))
local oldest = last + 1
local bytes = 0
local first_entry = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
if #first_entry > 0 then
  oldest = number_of(first_entry[1][1])
  bytes = tonumber(redis.call('HGET', meta, 'cum')) - tonumber(first_entry[1][2][8])
end
local retained = redis.call('XLEN', stream)

local found = -1
if ARGV[5] == 'id' then
  local n = redis.call('HGET', ids_key(token), ARGV[6])
  if n then found = tonumber(n) end
elseif ARGV[5] == 'ts' then
  -- Binary search for the first retained entry stamped at or after ARGV[6].
  local at = tonumber(ARGV[6])
  local low, high = oldest, last + 1
  while low < high do
    local mid = math.floor((low + high) / 2)
    local entry = redis.call('XRANGE', stream, mid .. '-0', mid .. '-0')
    if #entry == 0 or tonumber(entry[1][2][6]) < at then low = mid + 1 else high = mid end
  end
  found = low
end

local control_last = redis.call('XREVRANGE', control, '+', '-', 'COUNT', 1)
local control_id = '0-0'
if #control_last > 0 then control_id = control_last[1][1] end
return {token, tonumber(redis.call('HGET', meta, 'gen')), last, oldest,
  tonumber(redis.call('HGET', meta, 'evicted')), retained, bytes, found, control_id}

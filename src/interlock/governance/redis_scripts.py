"""The Lua scripts that make each counter operation atomic in Redis (the rules of ``local_logic``).

Numbers cross into Redis as strings formatted here (``%d``): a Lua number handed to ``redis.call``
would be printed with 14 significant digits, and ``1e+15`` is not an integer to ``HINCRBY``.

Budget line ``i`` is two keys: ``KEYS[2i-1]``, a hash (``settled``, ``reserved``, ``r:<id>`` the
amount of each reservation, ``t:<pct>`` once a threshold fired) and ``KEYS[2i]``, a sorted set of
reservation ids scored by expiry (ms). Each script first sweeps the expired reservations of the
lines it touches (at most 512 per line and call; any rest goes on the next call).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["ACQUIRE", "ADJUST", "ALL_SCRIPTS", "RELEASE_LEASES", "RESERVE", "SETTLE", "USAGE", "LuaScript"]


@dataclass(frozen=True, slots=True)
class LuaScript:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


_SWEEP = """
local function sweep(h, z, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 512)
  if #gone == 0 then return end
  local total = 0
  for _, id in ipairs(gone) do
    local f = 'r:' .. id
    total = total + (tonumber(redis.call('HGET', h, f)) or 0)
    redis.call('HDEL', h, f)
  end
  redis.call('ZREM', z, unpack(gone))
  if total ~= 0 then redis.call('HINCRBY', h, 'reserved', string.format('%d', -total)) end
end
-- relative to the caller's clock, not Redis's: the two may differ, and the caller's decides periods
local function expire(h, z, at, now)
  if at ~= '' then
    local ttl = string.format('%d', math.max(tonumber(at) - tonumber(now), 1000))
    redis.call('PEXPIRE', h, ttl)
    redis.call('PEXPIRE', z, ttl)
  end
end
"""

# ARGV: now, reservation id, amount, reservation expiry; per line: limit, enforce (1/0), key expiry ('' never)
# returns {granted 1/0, refused line (1-based, 0 none), used per line…}
RESERVE = LuaScript(
    "reserve",
    _SWEEP
    + """
local now, rid, amount, expiry = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local n = #KEYS / 2
local used, held = {}, false
for i = 1, n do
  sweep(KEYS[2*i-1], KEYS[2*i], now)
  local v = redis.call('HMGET', KEYS[2*i-1], 'settled', 'reserved', 'r:' .. rid)
  used[i] = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
  if v[3] then held = true end
end
if held then return {1, 0, unpack(used)} end
for i = 1, n do
  local a = 4 + 3 * (i - 1)
  if ARGV[a + 2] == '1' and used[i] + amount > tonumber(ARGV[a + 1]) then return {0, i, unpack(used)} end
end
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  redis.call('HSET', h, 'r:' .. rid, ARGV[3])
  redis.call('HINCRBY', h, 'reserved', ARGV[3])
  redis.call('ZADD', z, expiry, rid)
  expire(h, z, ARGV[4 + 3 * (i - 1) + 3], now)
end
return {1, 0, unpack(used)}
""",
)

# ARGV: now, reservation id ('' none), actual; per line: key expiry ('' never), thresholds "pct:micros,…"
# returns {{settled per line}, {"pct,pct" newly crossed per line}}
SETTLE = LuaScript(
    "settle",
    _SWEEP
    + """
local now, rid = ARGV[1], ARGV[2]
local settled, crossed = {}, {}
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  sweep(h, z, now)
  if rid ~= '' then
    local amount = redis.call('HGET', h, 'r:' .. rid)
    if amount then
      redis.call('HDEL', h, 'r:' .. rid)
      redis.call('ZREM', z, rid)
      redis.call('HINCRBY', h, 'reserved', string.format('%d', -tonumber(amount)))
    end
  end
  local total = redis.call('HINCRBY', h, 'settled', ARGV[3])
  local fired = {}
  for pct, at in string.gmatch(ARGV[3 + 2 * i], '(%d+):(%d+)') do
    if total >= tonumber(at) and redis.call('HSETNX', h, 't:' .. pct, '1') == 1 then
      fired[#fired + 1] = pct
    end
  end
  expire(h, z, ARGV[3 + 2 * i - 1], now)
  settled[i], crossed[i] = total, table.concat(fired, ',')
end
return {settled, crossed}
""",
)

# ARGV: now, reservation id; returns nothing
RELEASE = LuaScript(
    "release",
    _SWEEP
    + """
local now, rid = ARGV[1], ARGV[2]
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  sweep(h, z, now)
  local amount = redis.call('HGET', h, 'r:' .. rid)
  if amount then
    redis.call('HDEL', h, 'r:' .. rid)
    redis.call('ZREM', z, rid)
    redis.call('HINCRBY', h, 'reserved', string.format('%d', -tonumber(amount)))
  end
end
return 0
""",
)

# ARGV: now; returns {settled, reserved, settled, reserved, …}
USAGE = LuaScript(
    "usage",
    _SWEEP
    + """
local out = {}
for i = 1, #KEYS / 2 do
  sweep(KEYS[2*i-1], KEYS[2*i], ARGV[1])
  local v = redis.call('HMGET', KEYS[2*i-1], 'settled', 'reserved')
  out[#out + 1] = tonumber(v[1]) or 0
  out[#out + 1] = tonumber(v[2]) or 0
end
return out
""",
)

# KEYS: bucket keys, then lease keys. ARGV: now, lease id, bucket count; per bucket: limit, window ms,
# cost; per lease line: limit, ttl ms.
# returns {granted, refused line (1-based, 0 none), retry ms, {remaining, reset ms per bucket}, {in use}}
ACQUIRE = LuaScript(
    "acquire",
    """
local now, lid, nb = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local refused, wait, states, afters, counts = 0, 0, {}, {}, {}
for i = 1, nb do
  local a = 3 + 3 * (i - 1)
  local limit, window, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local interval = window / limit
  local base = math.max(tonumber(redis.call('GET', KEYS[i])) or now, now)
  local after = base + cost * interval
  local shown = after
  if after - now > window + 1e-6 then
    local w = math.ceil(after - now - window)
    if w > wait then refused, wait = i, w end
    shown = base
  end
  afters[i] = after
  local remaining = math.floor((window - (shown - now)) / interval + 1e-9)
  states[#states + 1] = math.max(0, math.min(limit, remaining))
  states[#states + 1] = math.max(0, math.ceil(shown - now))
end
local b = 3 + 3 * nb
for j = 1, #KEYS - nb do
  local key = KEYS[nb + j]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  counts[j] = redis.call('ZCARD', key)
  if refused == 0 and counts[j] >= tonumber(ARGV[b + 2 * j - 1]) and not redis.call('ZSCORE', key, lid) then
    refused, wait = nb + j, 1000
  end
end
if refused ~= 0 then return {0, refused, wait, states, counts} end
for i = 1, nb do
  local ttl = string.format('%d', math.ceil(afters[i] - now) + 1000)
  redis.call('SET', KEYS[i], string.format('%.6f', afters[i]), 'PX', ttl)
end
for j = 1, #KEYS - nb do
  local key, ttl = KEYS[nb + j], tonumber(ARGV[b + 2 * j])
  redis.call('ZADD', key, string.format('%d', now + ttl), lid)
  redis.call('PEXPIRE', key, string.format('%d', ttl + 1000))
  counts[j] = redis.call('ZCARD', key)
end
return {1, 0, 0, states, counts}
""",
)

# KEYS: bucket keys. ARGV: now; per bucket: limit, window ms, delta (negative gives units back)
ADJUST = LuaScript(
    "adjust",
    """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local a = 1 + 3 * (i - 1)
  local limit, window, delta = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local interval = window / limit
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  local after
  if delta >= 0 then after = math.max(tat, now) + delta * interval else after = tat + delta * interval end
  after = math.max(after, now)
  local ttl = string.format('%d', math.ceil(after - now) + 1000)
  redis.call('SET', KEYS[i], string.format('%.6f', after), 'PX', ttl)
end
return 0
""",
)

# KEYS: lease keys. ARGV: lease id
RELEASE_LEASES = LuaScript(
    "release_leases",
    """
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 0
""",
)

ALL_SCRIPTS = (RESERVE, SETTLE, RELEASE, USAGE, ACQUIRE, ADJUST, RELEASE_LEASES)

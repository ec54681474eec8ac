"""Lua scripts of the webhook feed (gateway/webhooks/queue.py calls them).

One script per state change, so several webhook processes can share one Redis and a
crash between two commands cannot happen. Common helpers are in PRELUDE; per-survey
keys are built as wait-prefix .. survey id (the scripts serve many surveys per call).
A lease is two things: the survey's due score (now + lease: nobody claims it before)
and its owner token in the lease hash, which is always the script's *last* key. The
token stays the same while the holder renews the lease, so a holder that retries a
script after a lost reply (Redis restarted under it) still recognises its lease; a
claim by anyone else writes a new token, and the old holder stops.
"""

PRELUDE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local LEASES = KEYS[#KEYS]
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- a survey's first n queued events: {delivered, retry state, event1, seq1, event2, ...}
local function head_of(wp, delivered, retry, sid, n)
  local h = redis.call('ZRANGE', wp .. sid, 0, n - 1, 'WITHSCORES')
  if #h == 0 then return nil end
  table.insert(h, 1, redis.call('HGET', retry, sid) or '')
  table.insert(h, 1, redis.call('HGET', delivered, sid) or '0')
  return h
end
-- {a, b, ...} with x in front
local function cons(x, rest)
  table.insert(rest, 1, x)
  return rest
end
-- lease a survey to an owner: due at the lease's end, and the owner's token recorded
local function take(due, sid, t, lease_s, owner)
  redis.call('ZADD', due, t + lease_s, sid)
  redis.call('HSET', LEASES, sid, owner)
  return owner
end
local function holds(sid, token)
  return redis.call('HGET', LEASES, sid) == token
end
-- what a holder does next with a survey: its next head (lease renewed), or stop
local function step(due, wp, delivered, retry, sid, token, t, lease_s, n)
  if not holds(sid, token) then return {'lost'} end
  local h = head_of(wp, delivered, retry, sid, n)
  if h == nil then
    redis.call('ZREM', due, sid)
    redis.call('HDEL', LEASES, sid)
    return {'empty'}
  end
  redis.call('ZADD', due, t + lease_s, sid)
  return cons('next', cons(token, h))
end
local function advance(delivered, sid, seq)
  if sid ~= '' and seq > tonumber(redis.call('HGET', delivered, sid) or '0') then
    redis.call('HSET', delivered, sid, seq)
  end
end
"""

# KEYS: stream, due, delivered, stats, retry, leases. ARGV: group, wait prefix, stats
# prefix, how many newly scheduled surveys to lease to the caller at once (the fast
# path), lease, owner token, run length, then (entry id, survey id, seq, event JSON) per entry.
# Returns {number of newly scheduled surveys, {sid, token, delivered, retry state,
# event1, seq1, ...} per survey leased to the caller}.
INTAKE = (
    PRELUDE
    + """
local t = clock()
local scheduled = {}
local queued = 0
for i = 8, #ARGV, 4 do
  local sid, seq = ARGV[i + 1], tonumber(ARGV[i + 2])
  -- events without a survey have no order to keep, and are never skipped
  if sid == '' or seq > tonumber(redis.call('HGET', KEYS[3], sid) or '0') then
    queued = queued + redis.call('ZADD', ARGV[2] .. sid, seq, ARGV[i + 3])
    if redis.call('ZADD', KEYS[2], 'NX', t, sid) == 1 then
      scheduled[#scheduled + 1] = sid
    end
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
end
if queued > 0 then redis.call('HINCRBY', KEYS[4], ARGV[3] .. 'queued', queued) end
local out = {#scheduled}
local lease_s, n = tonumber(ARGV[5]), tonumber(ARGV[7])
for i = 1, math.min(#scheduled, tonumber(ARGV[4])) do
  local sid = scheduled[i]
  local h = head_of(ARGV[2], KEYS[3], KEYS[5], sid, n)
  out[#out + 1] = cons(sid, cons(take(KEYS[2], sid, t, lease_s, ARGV[6]), h))
end
return out
"""
)

# KEYS: due, delivered, retry, leases. ARGV: wait prefix, limit, lease, owner token,
# run length.
# Returns {sid, token, delivered, retry state, event1, seq1, ...} per claimed survey.
CLAIM = (
    PRELUDE
    + """
local t = clock()
local lease_s = tonumber(ARGV[3])
local out = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t, 'LIMIT', 0, ARGV[2])) do
  local h = head_of(ARGV[1], KEYS[2], KEYS[3], sid, tonumber(ARGV[5]))
  if h == nil then
    redis.call('ZREM', KEYS[1], sid)
    redis.call('HDEL', LEASES, sid)
  else
    out[#out + 1] = cons(sid, cons(take(KEYS[1], sid, t, lease_s, ARGV[4]), h))
  end
end
return out
"""
)

# KEYS: due, delivered, retry, leases. ARGV: wait prefix, sid, token, lease, run length.
REREAD = (
    PRELUDE
    + """
return step(KEYS[1], ARGV[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], clock(),
            tonumber(ARGV[4]), tonumber(ARGV[5]))
"""
)

# KEYS: due, delivered, retry, stats, leases. ARGV: wait prefix, stats prefix, sid,
# token, first seq, last seq, lease, (unused), how many backed-off surveys to make due now (the
# caller says so when this success follows failures), run length, then the events.
DONE = (
    PRELUDE
    + """
local due, delivered, retry, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local wp, sp, sid = ARGV[1], ARGV[2], ARGV[3]
local first, last = tonumber(ARGV[5]), tonumber(ARGV[6])
local lease_s, wake = tonumber(ARGV[7]), tonumber(ARGV[9])
local t = clock()
-- recorded even if our lease was lost meanwhile: the receiver has the events
local removed = 0
for i = 11, #ARGV do removed = removed + redis.call('ZREM', wp .. sid, ARGV[i]) end
if removed > 0 then redis.call('HINCRBY', stats, sp .. 'queued', -removed) end
redis.call('HINCRBY', stats, sp .. 'delivered', #ARGV - 10)
advance(delivered, sid, last)
local r = redis.call('HGET', retry, sid)
if r and tonumber(cjson.decode(r).seq) == first then redis.call('HDEL', retry, sid) end
-- the receiver is back (the caller saw failures before): surveys sleeping in a long
-- backoff may try now. Scores beyond two leases are backoffs, not leases, so nobody's
-- claim is stolen.
if wake > 0 then
  local late = redis.call('ZRANGEBYSCORE', due, '(' .. (t + 2 * lease_s), '+inf',
                          'LIMIT', 0, wake)
  for _, other in ipairs(late) do redis.call('ZADD', due, 'XX', t, other) end
end
return step(due, wp, delivered, retry, sid, ARGV[4], t, lease_s, tonumber(ARGV[10]))
"""
)

# KEYS: due, delivered, retry, stats, dead, leases. ARGV: wait prefix, stats prefix,
# sid, token, first event, its seq, error, backoff delay, max age, lease, (unused), run
# length.
# Returns {'retry', attempts} | {'lost', attempts} | {'dead', attempts, step}.
FAIL = (
    PRELUDE
    + """
local due, delivered, retry, stats, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local wp, sp, sid, token, member, err = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7]
local seq, delay, max_age = tonumber(ARGV[6]), tonumber(ARGV[8]), tonumber(ARGV[9])
local t = clock()
redis.call('HINCRBY', stats, sp .. 'failed', 1)
local st = nil
local r = redis.call('HGET', retry, sid)
if r then
  st = cjson.decode(r)
  if tonumber(st.seq) ~= seq then st = nil end
end
if st == nil then st = {seq = seq, attempts = 0, first_failed_at = t} end
st.attempts = st.attempts + 1
st.last_error = err
if t - st.first_failed_at < max_age then
  redis.call('HSET', retry, sid, cjson.encode(st))
  if not holds(sid, token) then return {'lost', st.attempts} end
  redis.call('ZADD', due, t + delay, sid)
  redis.call('HDEL', LEASES, sid)
  return {'retry', st.attempts}
end
-- failed for max_age: dead-letter it so the survey's later events can move on
if redis.call('ZREM', wp .. sid, member) == 1 then
  redis.call('XADD', dead, '*', 'sid', sid, 'seq', ARGV[6], 'event', member, 'error', err,
             'attempts', st.attempts, 'first_failed_at', string.format('%.3f', st.first_failed_at),
             'time', string.format('%.3f', t))
  redis.call('HINCRBY', stats, sp .. 'queued', -1)
  redis.call('HINCRBY', stats, sp .. 'dead', 1)
end
advance(delivered, sid, seq)
redis.call('HDEL', retry, sid)
return {'dead', st.attempts,
        step(due, wp, delivered, retry, sid, token, t, tonumber(ARGV[10]), tonumber(ARGV[12]))}
"""
)

# KEYS: due, leases. ARGV: sid, token, delay. Gives a held survey back (now + delay).
RELEASE = (
    PRELUDE
    + """
if not holds(ARGV[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], clock() + tonumber(ARGV[3]), ARGV[1])
redis.call('HDEL', LEASES, ARGV[1])
return 1
"""
)

# KEYS: dead, due, stats. ARGV: wait prefix, stats prefix, dead-letter ids.
# Moves each still-present, well-formed dead letter back into its survey's queue.
REPLAY = (
    PRELUDE
    + """
local t = clock()
local n, queued = 0, 0
for i = 3, #ARGV do
  local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #e == 1 then
    local f, d = e[1][2], {}
    for j = 1, #f, 2 do d[f[j]] = f[j + 1] end
    if d.sid and tonumber(d.seq or '') and d.event then
      queued = queued + redis.call('ZADD', ARGV[1] .. d.sid, tonumber(d.seq), d.event)
      redis.call('ZADD', KEYS[2], 'NX', t, d.sid)
      redis.call('XDEL', KEYS[1], ARGV[i])
      n = n + 1
    end
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[2] .. 'replayed', n)
  redis.call('HINCRBY', KEYS[3], ARGV[2] .. 'queued', queued)
end
return n
"""
)

# KEYS: delivered, due, retry. ARGV: survey key prefix, wait prefix, HSCAN cursor, count.
# Forgets the high-water marks of surveys whose record has expired (the store keeps a
# survey for its retention period) and that have nothing queued: without this the
# delivered hash would grow by one field per survey forever. Returns {cursor, pruned}.
PRUNE = (
    PRELUDE
    + """
local scan = redis.call('HSCAN', KEYS[1], ARGV[3], 'COUNT', tonumber(ARGV[4]))
local pruned = 0
local fields = scan[2]
for i = 1, #fields, 2 do
  local sid = fields[i]
  if redis.call('EXISTS', ARGV[1] .. sid) == 0 and redis.call('EXISTS', ARGV[2] .. sid) == 0
     and not redis.call('ZSCORE', KEYS[2], sid) and redis.call('HEXISTS', KEYS[3], sid) == 0 then
    pruned = pruned + redis.call('HDEL', KEYS[1], sid)
  end
end
return {scan[1], pruned}
"""
)

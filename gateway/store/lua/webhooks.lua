-- Webhook feed functions (gateway/webhooks/queue.py calls them); part of the minyi
-- library, after store.lua, whose server_time they use.
--
-- One function per state change, so several webhook processes can share one Redis and
-- a crash between two commands cannot happen. Each declares the endpoint's keys it
-- names (FCALL's numkeys); a survey's wait zset is WEBHOOK_WAIT(endpoint, sid), as the
-- functions serve many surveys per call. A lease is two things: the survey's due score
-- (now + lease: nobody claims it before) and its owner token in the lease hash. The
-- token stays the same while the holder renews the lease, so a holder that retries a
-- call after a lost reply (Redis restarted under it) still recognises its lease; a
-- claim by anyone else writes a new token, and the old holder stops.

-- a survey's first n queued events: {delivered, retry state, batch pin, event1, seq1,
-- event2, ...}; the pin ("<batch id> <last seq>", or '') names the stored batch its
-- head run went out in (batching: a retry sends that batch again)
local function head_of(endpoint, delivered, retry, sid, n)
  local h = redis.call('ZRANGE', WEBHOOK_WAIT(endpoint, sid), 0, n - 1, 'WITHSCORES')
  if #h == 0 then return nil end
  table.insert(h, 1, redis.call('HGET', WEBHOOK_BATCH_OF(endpoint), sid) or '')
  table.insert(h, 1, redis.call('HGET', retry, sid) or '')
  table.insert(h, 1, redis.call('HGET', delivered, sid) or '0')
  return h
end

-- the batch id of a pin ("<batch id> <last seq>")
local function pin_batch(pin)
  if not pin then return nil end
  return string.match(pin, '^(%S+)')
end

-- a stored batch's members {{sid, first seq, last seq}, ...} (empty if it is gone)
local function batch_members(batches, id)
  local m = redis.call('HGET', batches, id)
  if not m then return {} end
  local ok, members = pcall(cjson.decode, m)
  if not ok or type(members) ~= 'table' then return {} end
  return members
end

-- unpin a survey from its stored batch; the batch is forgotten once no member is
-- pinned to it any more
local function unpin(batch_of, batches, sid)
  local id = pin_batch(redis.call('HGET', batch_of, sid))
  if not id then return end
  redis.call('HDEL', batch_of, sid)
  for _, m in ipairs(batch_members(batches, id)) do
    if pin_batch(redis.call('HGET', batch_of, m[1])) == id then return end
  end
  redis.call('HDEL', batches, id, id .. ':body')
end

-- a survey's retry state (JSON written by minyi_wh_fail), or nil when there is none
-- or it cannot be read
local function retry_state(retry, sid)
  local r = redis.call('HGET', retry, sid)
  if not r then return nil end
  local ok, st = pcall(cjson.decode, r)
  if not ok or type(st) ~= 'table' then return nil end
  return st
end

-- {a, b, ...} with x in front
local function cons(x, rest)
  table.insert(rest, 1, x)
  return rest
end

-- lease a survey to an owner: due at the lease's end, and the owner's token recorded
local function take(due, leases, sid, t, lease_s, owner)
  redis.call('ZADD', due, t + lease_s, sid)
  redis.call('HSET', leases, sid, owner)
  return owner
end

local function holds(leases, sid, token)
  return redis.call('HGET', leases, sid) == token
end

-- what a holder does next with a survey: its next head (lease renewed), or stop
local function step(endpoint, due, delivered, retry, leases, sid, token, t, lease_s, n)
  if not holds(leases, sid, token) then return {'lost'} end
  local h = head_of(endpoint, delivered, retry, sid, n)
  if h == nil then
    redis.call('ZREM', due, sid)
    redis.call('HDEL', leases, sid)
    return {'empty'}
  end
  redis.call('ZADD', due, t + lease_s, sid)
  return cons('next', cons(token, h))
end

-- the receiver is back (the caller saw failures before): surveys sleeping in a long
-- backoff may try now. Scores beyond two leases are backoffs, not leases, so nobody's
-- claim is stolen.
local function wake_late(due, t, lease_s, wake)
  if wake <= 0 then return end
  local late = redis.call('ZRANGEBYSCORE', due, '(' .. (t + 2 * lease_s), '+inf',
                          'LIMIT', 0, wake)
  for _, other in ipairs(late) do redis.call('ZADD', due, 'XX', t, other) end
end

local function advance(delivered, sid, seq)
  if sid ~= '' and seq > tonumber(redis.call('HGET', delivered, sid) or '0') then
    redis.call('HSET', delivered, sid, seq)
  end
end

-- intake: queue stream entries in their surveys' wait zsets, schedule the surveys, XACK.
-- An entry is queued by the call whose XACK takes it out of the group's pending list,
-- and only by that one: a call made again after its reply was lost (or by a process
-- that claimed the entry meanwhile) finds it acknowledged and queues nothing, so an
-- event delivered since is not queued again. An entry that is acknowledged here for the
-- first time was never queued, so never delivered: it is queued even when its seq is at
-- or below the survey's delivered mark (a later event went first, after a gap wait
-- gave up), and reported back as late — never dropped.
-- A survey parked behind a dead letter gets its events queued, not scheduled: they wait
-- for the replay, which keeps them in order behind it.
-- KEYS: events stream, due, delivered, stats, retry, leases, parked.
-- ARGV: endpoint, stats prefix, how many newly scheduled surveys to lease to the caller
--       at once (the fast path), lease_s, owner token, run length, then
--       (entry id, survey id, seq, event JSON) per entry.
-- Returns {number of newly scheduled surveys, {late sid, seq, delivered mark, ...},
-- {sid, token, delivered, retry state, event1, seq1, ...} per survey leased to the
-- caller}.
redis.register_function('minyi_wh_intake', function(k, a)
  local fn = 'minyi_wh_intake'
  need(fn, a, 6)
  local stream, due, delivered, stats, retry, leases = k[1], k[2], k[3], k[4], k[5], k[6]
  local parked = k[7]
  local endpoint, sp = a[1], a[2]
  local take_n = num(fn, 'take', a[3])
  local lease_s, token, n = num(fn, 'lease_s', a[4]), a[5], num(fn, 'run length', a[6])
  if (#a - 6) % 4 ~= 0 then refuse(fn, 'entries come as (id, survey id, seq, event)') end
  for i = 7, #a, 4 do num(fn, 'seq', a[i + 2]) end
  local t = server_time()
  local scheduled, late = {}, {}
  local queued = 0
  for i = 7, #a, 4 do
    local sid, seq = a[i + 1], tonumber(a[i + 2])
    if redis.call('XACK', stream, WEBHOOK_GROUP(endpoint), a[i]) == 1 then
      local mark = tonumber(redis.call('HGET', delivered, sid) or '0')
      -- events without a survey have no order to keep
      if sid ~= '' and seq <= mark then
        late[#late + 1] = sid
        late[#late + 1] = seq
        late[#late + 1] = mark
      end
      queued = queued + redis.call('ZADD', WEBHOOK_WAIT(endpoint, sid), seq, a[i + 3])
      if redis.call('HEXISTS', parked, sid) == 0 and redis.call('ZADD', due, 'NX', t, sid) == 1 then
        scheduled[#scheduled + 1] = sid
      end
    end
  end
  if queued > 0 then redis.call('HINCRBY', stats, sp .. 'queued', queued) end
  if #late > 0 then redis.call('HINCRBY', stats, sp .. 'late', #late / 3) end
  local out = {#scheduled, late}
  for i = 1, math.min(#scheduled, take_n) do
    local sid = scheduled[i]
    local h = head_of(endpoint, delivered, retry, sid, n)
    out[#out + 1] = cons(sid, cons(take(due, leases, sid, t, lease_s, token), h))
  end
  return out
end)

-- claim: lease the surveys that are due.
-- KEYS: due, delivered, retry, leases. ARGV: endpoint, limit, lease_s, owner token,
-- run length. Returns {sid, token, delivered, retry state, event1, seq1, ...} per
-- claimed survey.
redis.register_function('minyi_wh_claim', function(k, a)
  local fn = 'minyi_wh_claim'
  need(fn, a, 5)
  local due, delivered, retry, leases = k[1], k[2], k[3], k[4]
  local endpoint, token = a[1], a[4]
  local lease_s, n = num(fn, 'lease_s', a[3]), num(fn, 'run length', a[5])
  num(fn, 'limit', a[2])
  local t = server_time()
  local out = {}
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', t, 'LIMIT', 0, a[2])) do
    local h = head_of(endpoint, delivered, retry, sid, n)
    if h == nil then
      redis.call('ZREM', due, sid)
      redis.call('HDEL', leases, sid)
    else
      out[#out + 1] = cons(sid, cons(take(due, leases, sid, t, lease_s, token), h))
    end
  end
  return out
end)

-- reread: a held survey's head again, the lease renewed.
-- KEYS: due, delivered, retry, leases. ARGV: endpoint, sid, token, lease_s, run length.
redis.register_function('minyi_wh_reread', function(k, a)
  local fn = 'minyi_wh_reread'
  need(fn, a, 5)
  return step(a[1], k[1], k[2], k[3], k[4], a[2], a[3], server_time(),
              num(fn, 'lease_s', a[4]), num(fn, 'run length', a[5]))
end)

-- done: the receiver took the events; returns the survey's next step for its holder.
-- KEYS: due, delivered, retry, stats, leases. ARGV: endpoint, stats prefix, sid, token,
-- first seq, last seq, lease_s, how many backed-off surveys to make due now (the caller
-- says so when this success follows failures), run length, then the events.
redis.register_function('minyi_wh_done', function(k, a)
  local fn = 'minyi_wh_done'
  need(fn, a, 9)
  local due, delivered, retry, stats, leases = k[1], k[2], k[3], k[4], k[5]
  local endpoint, sp, sid, token = a[1], a[2], a[3], a[4]
  local first, last = num(fn, 'first seq', a[5]), num(fn, 'last seq', a[6])
  local lease_s, wake = num(fn, 'lease_s', a[7]), num(fn, 'wake', a[8])
  local n = num(fn, 'run length', a[9])
  local t = server_time()
  -- recorded even if our lease was lost meanwhile: the receiver has the events
  local wait = WEBHOOK_WAIT(endpoint, sid)
  local removed = 0
  for i = 10, #a do removed = removed + redis.call('ZREM', wait, a[i]) end
  if removed > 0 then redis.call('HINCRBY', stats, sp .. 'queued', -removed) end
  redis.call('HINCRBY', stats, sp .. 'delivered', #a - 9)
  advance(delivered, sid, last)
  local r = retry_state(retry, sid)
  if r and tonumber(r.seq) == first then redis.call('HDEL', retry, sid) end
  -- a pin whose batch is gone (a lost write) must not hold the survey's next run
  unpin(WEBHOOK_BATCH_OF(endpoint), WEBHOOK_BATCHES(endpoint), sid)
  wake_late(due, t, lease_s, wake)
  return step(endpoint, due, delivered, retry, leases, sid, token, t, lease_s, n)
end)

-- batch done: the receiver took a stored batch (sent again by minyi_wh_fail's pin).
-- Every member still pinned to it is delivered up to its run's last seq and unpinned;
-- the batch is forgotten. A member unpinned meanwhile (dead-lettered) is left as it is.
-- KEYS: due, delivered, retry, stats, leases, batch_of, batches. ARGV: endpoint, stats
-- prefix, sid, token, batch id, lease_s, wake (as minyi_wh_done), run length.
-- Returns {events recorded as delivered, the caller's survey's next step}.
redis.register_function('minyi_wh_batch_done', function(k, a)
  local fn = 'minyi_wh_batch_done'
  need(fn, a, 8)
  local due, delivered, retry, stats, leases = k[1], k[2], k[3], k[4], k[5]
  local batch_of, batches = k[6], k[7]
  local endpoint, sp, sid, token, id = a[1], a[2], a[3], a[4], a[5]
  local lease_s, wake = num(fn, 'lease_s', a[6]), num(fn, 'wake', a[7])
  local n = num(fn, 'run length', a[8])
  local t = server_time()
  local removed = 0
  for _, m in ipairs(batch_members(batches, id)) do
    local msid, first, last = tostring(m[1]), tonumber(m[2]), tonumber(m[3])
    if first and last and pin_batch(redis.call('HGET', batch_of, msid)) == id then
      removed = removed + redis.call('ZREMRANGEBYSCORE', WEBHOOK_WAIT(endpoint, msid),
                                     first, last)
      advance(delivered, msid, last)
      local r = retry_state(retry, msid)
      if r and tonumber(r.seq) == first then redis.call('HDEL', retry, msid) end
      redis.call('HDEL', batch_of, msid)
    end
  end
  redis.call('HDEL', batches, id, id .. ':body')
  if removed > 0 then
    redis.call('HINCRBY', stats, sp .. 'queued', -removed)
    redis.call('HINCRBY', stats, sp .. 'delivered', removed)
  end
  wake_late(due, t, lease_s, wake)
  return {removed, step(endpoint, due, delivered, retry, leases, sid, token, t, lease_s, n)}
end)

-- fail: a failed attempt of a survey's head event: back off, or dead-letter it after
-- max_age and park the survey: its later events wait behind the dead letter (the feed
-- is ordered per survey) until `minyi webhooks replay` puts it back in front of them.
-- The failed-requests counter counts requests: a batch's members all fail, the first
-- one counts it. A batch failing at its first sending is stored by its first member's
-- call (its id, body and members) and every member pinned to it: any member's retry
-- sends it again, the same id and bytes (minyi_wh_batch_done records it).
-- KEYS: due, delivered, retry, stats, dead, leases, parked, batch_of, batches. ARGV:
-- endpoint, stats prefix, sid, token, head event, its seq, error, backoff delay, max
-- age, lease_s, run length, count the request (1/0), then batch id, body, members JSON
-- [[sid, first seq, last seq], ...] ('', '', '' for none).
-- Returns {'retry', attempts} | {'lost', attempts} | {'dead', attempts, {'parked'}}.
redis.register_function('minyi_wh_fail', function(k, a)
  local fn = 'minyi_wh_fail'
  need(fn, a, 15)
  local due, delivered, retry, stats, dead, leases = k[1], k[2], k[3], k[4], k[5], k[6]
  local parked, batch_of, batches = k[7], k[8], k[9]
  if num(fn, 'count', a[12]) > 0 then redis.call('HINCRBY', stats, a[2] .. 'failed', 1) end
  if a[13] ~= '' then
    local ok, members = pcall(cjson.decode, a[15])
    if not ok or type(members) ~= 'table' then refuse(fn, 'members must be a JSON list') end
    redis.call('HSET', batches, a[13], a[15], a[13] .. ':body', a[14])
    for _, m in ipairs(members) do
      redis.call('HSET', batch_of, tostring(m[1]), a[13] .. ' ' .. tostring(m[3]))
    end
  end
  local endpoint, sp, sid, token, member, err = a[1], a[2], a[3], a[4], a[5], a[7]
  local seq, delay = num(fn, 'seq', a[6]), num(fn, 'delay', a[8])
  local max_age, lease_s, n = num(fn, 'max_age', a[9]), num(fn, 'lease_s', a[10]),
    num(fn, 'run length', a[11])
  local t = server_time()
  local st = retry_state(retry, sid)
  if st and (tonumber(st.seq) ~= seq or tonumber(st.attempts) == nil
             or tonumber(st.first_failed_at) == nil) then
    st = nil
  end
  if st == nil then st = {seq = seq, attempts = 0, first_failed_at = t} end
  st.attempts = st.attempts + 1
  st.last_error = err
  if t - st.first_failed_at < max_age then
    redis.call('HSET', retry, sid, cjson.encode(st))
    if not holds(leases, sid, token) then return {'lost', st.attempts} end
    redis.call('ZADD', due, t + delay, sid)
    redis.call('HDEL', leases, sid)
    return {'retry', st.attempts}
  end
  -- failed for max_age: dead-letter it and park the survey behind it
  if redis.call('ZREM', WEBHOOK_WAIT(endpoint, sid), member) == 1 then
    redis.call('XADD', dead, '*', 'sid', sid, 'seq', a[6], 'event', member, 'error', err,
               'attempts', st.attempts, 'first_failed_at', string.format('%.3f', st.first_failed_at),
               'time', string.format('%.3f', t))
    redis.call('HINCRBY', stats, sp .. 'queued', -1)
    redis.call('HINCRBY', stats, sp .. 'dead', 1)
  end
  advance(delivered, sid, seq)
  redis.call('HDEL', retry, sid)
  redis.call('HSET', parked, sid, seq)
  unpin(batch_of, batches, sid)
  local holder = redis.call('HGET', leases, sid)
  if not holder or holder == token then
    redis.call('ZREM', due, sid)
    redis.call('HDEL', leases, sid)
  end
  return {'dead', st.attempts, {'parked'}}
end)

-- release: give a held survey back, due in delay seconds.
-- KEYS: due, leases. ARGV: sid, token, delay. Returns 1, or 0 if no longer ours.
redis.register_function('minyi_wh_release', function(k, a)
  need('minyi_wh_release', a, 3)
  local due, leases = k[1], k[2]
  local delay = num('minyi_wh_release', 'delay', a[3])
  if not holds(leases, a[1], a[2]) then return 0 end
  redis.call('ZADD', due, server_time() + delay, a[1])
  redis.call('HDEL', leases, a[1])
  return 1
end)

-- replay: move each still-present, well-formed dead letter back into its survey's queue,
-- in front of the events parked behind it (the wait zset orders by seq), and unpark
-- the survey: it is delivered again in order.
-- KEYS: dead, due, stats, parked. ARGV: endpoint, stats prefix, dead-letter ids.
redis.register_function('minyi_wh_replay', function(k, a)
  need('minyi_wh_replay', a, 2)
  local dead, due, stats, parked = k[1], k[2], k[3], k[4]
  local endpoint, sp = a[1], a[2]
  local t = server_time()
  local n, queued = 0, 0
  for i = 3, #a do
    local e = redis.call('XRANGE', dead, a[i], a[i])
    if #e == 1 then
      local f, d = e[1][2], {}
      for j = 1, #f, 2 do d[f[j]] = f[j + 1] end
      if d.sid and tonumber(d.seq or '') and d.event then
        queued = queued + redis.call('ZADD', WEBHOOK_WAIT(endpoint, d.sid), tonumber(d.seq),
                                     d.event)
        redis.call('ZADD', due, 'NX', t, d.sid)
        redis.call('HDEL', parked, d.sid)
        redis.call('XDEL', dead, a[i])
        n = n + 1
      end
    end
  end
  if n > 0 then
    redis.call('HINCRBY', stats, sp .. 'replayed', n)
    redis.call('HINCRBY', stats, sp .. 'queued', queued)
  end
  return n
end)

-- prune: forget the high-water marks of surveys whose record has expired (the store
-- keeps a survey for its retention period) and that have nothing queued: without this
-- the delivered hash would grow by one field per survey forever.
-- A parked survey keeps its mark (its dead letter may yet be replayed).
-- KEYS: delivered, due, retry, parked. ARGV: endpoint, HSCAN cursor, count.
-- Returns {cursor, pruned}.
redis.register_function('minyi_wh_prune', function(k, a)
  need('minyi_wh_prune', a, 3)
  local delivered, due, retry, parked = k[1], k[2], k[3], k[4]
  local endpoint = a[1]
  local scan = redis.call('HSCAN', delivered, a[2], 'COUNT', num('minyi_wh_prune', 'count', a[3]))
  local pruned = 0
  local fields = scan[2]
  for i = 1, #fields, 2 do
    local sid = fields[i]
    if redis.call('EXISTS', SURVEY(sid)) == 0
       and redis.call('EXISTS', WEBHOOK_WAIT(endpoint, sid)) == 0
       and not redis.call('ZSCORE', due, sid) and redis.call('HEXISTS', retry, sid) == 0
       and redis.call('HEXISTS', parked, sid) == 0 then
      pruned = pruned + redis.call('HDEL', delivered, sid)
    end
  end
  return {scan[1], pruned}
end)

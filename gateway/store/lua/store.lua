#!lua name=minyi
-- Minyi Gateway's Redis function library: every survey transition together with its
-- event, atomically. A transition and its event are one write: the event can never be
-- lost after the state changed, nor sent for a change that did not happen.
--
-- Keys are built here from the survey id (the layout is gateway/keys.py; a unit test
-- checks the two agree). The transition table is generated from gateway/states.py and
-- substituted for the marker line below when the library is loaded.
--
-- Redis does not roll back a script that fails half-way, so every check happens
-- before the first write.

local P = 'minyi:'
local EVENTS = P .. 'events'
local STATS = P .. 'stats'
local OPTOUT = P .. 'optout'
local SMS_QUEUE = P .. 'sms:queue'
local SMS_DEFERRED = P .. 'sms:deferred'
local REPLY_DUE = P .. 'sms:reply-due'
local DLR_DUE = P .. 'sms:dlr-due'
local DLR_HELD_INDEX = P .. 'dlr:held-index'
local MO_INDEX = P .. 'mo:index'
local UNMATCHED = P .. 'replies:unmatched'

--@TRANSITIONS@

local function skey(sid) return P .. 'survey:' .. sid end
local function ekey(sid) return P .. 'survey:' .. sid .. ':events' end
local function open_key(phone) return P .. 'phone:' .. phone .. ':open' end

-- Append one event to the survey's history and to the outbox stream.
local function emit(sid, etype, now_iso, payload)
  local seq = redis.call('HINCRBY', skey(sid), 'seq', 1)
  local ev = '{"id":' .. cjson.encode(sid .. ':' .. seq)
    .. ',"type":' .. cjson.encode(etype)
    .. ',"survey_id":' .. cjson.encode(sid)
    .. ',"seq":' .. seq
    .. ',"time":' .. cjson.encode(now_iso)
    .. ',"payload":' .. payload .. '}'
  redis.call('RPUSH', ekey(sid), ev)
  redis.call('XADD', EVENTS, '*', 'sid', sid, 'seq', tostring(seq), 'event', ev)
  redis.call('HINCRBY', STATS, 'event:' .. etype, 1)
  return seq
end

-- Prefix a JSON object with "from": keeps the caller's JSON untouched (a decode and
-- re-encode through cjson would round large numbers).
local function with_from(from, payload)
  if payload == nil or payload == '' or payload == '{}' then
    return '{"from":' .. cjson.encode(from) .. '}'
  end
  return '{"from":' .. cjson.encode(from) .. ',' .. string.sub(payload, 2)
end

local function allowed(from, to)
  local t = TRANSITIONS[from]
  return t ~= nil and t[to] == true
end

-- Move a survey to `to` if the table allows it; returns false (and writes nothing)
-- otherwise.
local function transition(sid, to, now_iso, payload)
  local sk = skey(sid)
  local from = redis.call('HGET', sk, 'state')
  if not from or not allowed(from, to) then
    return false
  end
  redis.call('HSET', sk, 'state', to, 'updated_at', now_iso)
  emit(sid, 'survey.' .. to, now_iso, with_from(from, payload))
  return true
end

local function close_reply_window(sid)
  local phone = redis.call('HGET', skey(sid), 'phone')
  if phone then redis.call('ZREM', open_key(phone), sid) end
  redis.call('ZREM', REPLY_DUE, sid)
end

-- intake: create a survey unless it exists (idempotent on the core system's id).
-- ARGV: sid, phone, fields_json, now_iso, cap_s, defer_at ('' = send now),
--       ttl_s, accepted_payload, release_at_iso
redis.register_function('minyi_intake', function(_, a)
  local sid, phone, fields, now_iso = a[1], a[2], a[3], a[4]
  local cap_s, defer_at, ttl = tonumber(a[5]), a[6], tonumber(a[7])
  local sk = skey(sid)
  if redis.call('EXISTS', sk) == 1 then
    return {'existing', redis.call('HGET', sk, 'state') or ''}
  end
  local flat = {}
  for k, v in pairs(cjson.decode(fields)) do
    flat[#flat + 1] = k
    flat[#flat + 1] = tostring(v)
  end
  redis.call('HSET', sk, 'state', 'accepted', 'created_at', now_iso, 'updated_at', now_iso,
    'seq', 0, 'id', sid, 'phone', phone, unpack(flat))
  emit(sid, 'survey.accepted', now_iso, a[8])

  local reason, extra = nil, ''
  if redis.call('SISMEMBER', OPTOUT, phone) == 1 then
    reason = 'opted_out'
  elseif cap_s > 0 then
    local last = P .. 'phone:' .. phone .. ':last'
    local prev = redis.call('GET', last)
    if prev and prev ~= sid then
      reason = 'too_frequent'
      extra = ',"previous_survey_id":' .. cjson.encode(prev)
    else
      redis.call('SET', last, sid, 'EX', math.ceil(cap_s))
    end
  end

  local state
  if reason then
    redis.call('HSET', sk, 'reject_reason', reason)
    transition(sid, 'rejected', now_iso, '{"reason":' .. cjson.encode(reason) .. extra .. '}')
    state = 'rejected'
  elseif defer_at ~= '' then
    redis.call('ZADD', SMS_DEFERRED, defer_at, sid)
    redis.call('HSET', sk, 'release_at', a[9])
    transition(sid, 'deferred', now_iso, '{"reason":"quiet_hours","release_at":'
      .. cjson.encode(a[9]) .. '}')
    state = 'deferred'
  else
    redis.call('XADD', SMS_QUEUE, '*', 'sid', sid)
    transition(sid, 'queued', now_iso, '{}')
    state = 'queued'
  end
  if ttl > 0 then
    redis.call('EXPIRE', sk, ttl)
    redis.call('EXPIRE', ekey(sid), ttl)
  end
  return {'created', state, reason or ''}
end)

-- release: deferred surveys whose time has come go to the send queue.
-- ARGV: now_ts, now_iso, limit
redis.register_function('minyi_release', function(_, a)
  local due = redis.call('ZRANGEBYSCORE', SMS_DEFERRED, '-inf', a[1], 'LIMIT', 0, tonumber(a[3]))
  for _, sid in ipairs(due) do
    redis.call('ZREM', SMS_DEFERRED, sid)
    if transition(sid, 'queued', a[2], '{"reason":"quiet_hours_over"}') then
      redis.call('XADD', SMS_QUEUE, '*', 'sid', sid)
    end
  end
  return #due
end)

-- send_begin: the sender takes a queued survey. Rejects it if the citizen opted out
-- meanwhile; counts attempts (a second attempt means a crash or a dropped link may have
-- sent some parts already: reported as sms.resent); allocates the extension code.
-- From here on a reply from the number belongs to this survey (a citizen may answer
-- before the submit_sm_resp is even stored).
-- ARGV: sid, now_iso, ext_digits, ext_ttl_s, now_ts, reply_window_s
-- Returns {'send', attempts, ext, field, value, ...} or {'skip', state} or {'rejected'}.
redis.register_function('minyi_send_begin', function(_, a)
  local sid, now_iso, digits, ext_ttl = a[1], a[2], tonumber(a[3]), tonumber(a[4])
  local sk = skey(sid)
  local st = redis.call('HGET', sk, 'state')
  if st ~= 'queued' then return {'skip', st or ''} end
  local phone = redis.call('HGET', sk, 'phone')
  if redis.call('SISMEMBER', OPTOUT, phone) == 1 then
    redis.call('HSET', sk, 'reject_reason', 'opted_out')
    transition(sid, 'rejected', now_iso, '{"reason":"opted_out"}')
    return {'rejected'}
  end
  redis.call('ZADD', open_key(phone), 'NX', a[5], sid)
  redis.call('EXPIRE', open_key(phone), math.ceil(tonumber(a[6])))
  local attempts = redis.call('HINCRBY', sk, 'submit_attempts', 1)
  if attempts > 1 then
    redis.call('HINCRBY', STATS, 'sms:resent', 1)
    emit(sid, 'sms.resent', now_iso, '{"attempt":' .. attempts .. '}')
  end
  local ext = redis.call('HGET', sk, 'ext')
  if digits > 0 and not ext then
    local n = redis.call('INCR', P .. 'ext:next')
    ext = string.format('%0' .. digits .. 'd', n % math.floor(10 ^ digits))
    redis.call('HSET', sk, 'ext', ext)
    redis.call('SET', P .. 'ext:' .. ext .. ':' .. phone, sid, 'EX', math.ceil(ext_ttl))
  end
  local out = {'send', attempts, ext or ''}
  local all = redis.call('HGETALL', sk)
  for i = 1, #all do out[#out + 1] = all[i] end
  return out
end)

-- Apply one delivery receipt to part `idx` of survey `sid`.
local function apply_receipt(sid, idx, receipt, now_iso)
  local sk = skey(sid)
  local r = cjson.decode(receipt)
  if not r.final then
    redis.call('HSET', sk, 'p' .. idx .. ':interim', r.state)
    return 'interim'
  end
  local fld = 'p' .. idx .. ':dlr'
  if redis.call('HEXISTS', sk, fld) == 1 then return 'duplicate' end
  local total = tonumber(redis.call('HGET', sk, 'parts') or '1')
  redis.call('HSET', sk, fld, r.state)
  if r.state ~= 'delivered' then
    redis.call('HSET', sk, 'p' .. idx .. ':err', r.error or '')
    emit(sid, 'sms.part_failed', now_iso, cjson.encode({
      part = tonumber(idx), parts = total, state = r.state, error = r.error or '' }))
  end
  local n = redis.call('HINCRBY', sk, 'dlr_count', 1)
  if n < total then return 'part' end
  redis.call('ZREM', DLR_DUE, sid)
  local failed = {}
  for i = 1, total do
    local s = redis.call('HGET', sk, 'p' .. i .. ':dlr')
    if s ~= 'delivered' then failed[#failed + 1] = { part = i, state = s or 'none' } end
  end
  local moved
  if #failed == 0 then
    moved = transition(sid, 'delivered', now_iso, '{"parts":' .. total .. '}')
  else
    redis.call('HSET', sk, 'undeliverable_reason', 'receipt')
    moved = transition(sid, 'undeliverable', now_iso, '{"reason":"receipt","parts":' .. total
      .. ',"failed_parts":' .. cjson.encode(failed) .. '}')
  end
  if not moved then
    -- The survey is already past sending (the citizen answered before the receipt
    -- came): the feed still learns how the SMS ended, for the delivery rates.
    emit(sid, 'sms.receipt', now_iso, cjson.encode({
      state = (#failed == 0) and 'delivered' or 'undeliverable', parts = total }))
  end
  return 'final'
end

-- part_submitted: the SMS center accepted part `idx` (submit_sm_resp ESME_ROK).
-- ARGV: sid, idx, total, msgid_key, message_id, bind, now_iso, now_ts, msgid_ttl_s,
--       held_key, dlr_due_ts, reply_due_ts, resent ('1': the part went out more than
--       once on the wire after a dropped link or a lost answer: possibly duplicated)
redis.register_function('minyi_part_submitted', function(_, a)
  local sid, idx, total, mkey, mid = a[1], a[2], tonumber(a[3]), a[4], a[5]
  local now_iso, now_ts = a[7], a[8]
  local sk = skey(sid)
  local fld = 'p' .. idx .. ':mid'
  local seen = redis.call('HEXISTS', sk, fld) == 1
  redis.call('HSET', sk, fld, mid, 'p' .. idx .. ':bind', a[6], 'parts', total)
  redis.call('SET', mkey, sid .. '|' .. idx, 'EX', math.ceil(tonumber(a[9])))
  if a[13] == '1' then
    redis.call('HINCRBY', STATS, 'sms:resent', 1)
    emit(sid, 'sms.resent', now_iso, '{"part":' .. idx .. ',"reason":"no_answer_before_link_lost"}')
  end
  local ok
  if seen then
    ok = tonumber(redis.call('HGET', sk, 'parts_ok') or '0')
  else
    ok = redis.call('HINCRBY', sk, 'parts_ok', 1)
  end
  local result = 'part'
  if ok >= total and redis.call('HGET', sk, 'state') == 'queued' then
    local ids = {}
    for i = 1, total do ids[i] = redis.call('HGET', sk, 'p' .. i .. ':mid') or '' end
    transition(sid, 'submitted', now_iso, '{"parts":' .. total .. ',"message_ids":'
      .. cjson.encode(ids) .. ',"bind":' .. cjson.encode(a[6]) .. '}')
    redis.call('HSET', sk, 'submitted_at', now_iso)
    redis.call('ZADD', DLR_DUE, a[11], sid)
    redis.call('ZADD', REPLY_DUE, a[12], sid)
    local open = open_key(redis.call('HGET', sk, 'phone'))
    redis.call('ZADD', open, now_ts, sid)
    redis.call('EXPIRE', open, math.ceil(tonumber(a[12]) - tonumber(now_ts)))
    result = 'submitted'
  end
  local held = redis.call('GET', a[10])
  if held then
    redis.call('DEL', a[10])
    redis.call('ZREM', DLR_HELD_INDEX, a[10])
    redis.call('HINCRBY', STATS, 'dlr:held_matched', 1)
    apply_receipt(sid, idx, held, now_iso)
  end
  return result
end)

-- part_failed: the SMS center refused part `idx` for good (or we gave up).
-- ARGV: sid, idx, total, reason, status, now_iso
redis.register_function('minyi_part_failed', function(_, a)
  local sid, now_iso = a[1], a[6]
  local sk = skey(sid)
  redis.call('HSET', sk, 'p' .. a[2] .. ':err', a[4], 'undeliverable_reason', a[4])
  emit(sid, 'sms.part_failed', now_iso, cjson.encode({
    part = tonumber(a[2]), parts = tonumber(a[3]), state = 'rejected', error = a[4],
    command_status = a[5] }))
  if transition(sid, 'undeliverable', now_iso, '{"reason":' .. cjson.encode(a[4]) .. '}') then
    return 'undeliverable'
  end
  return 'recorded'
end)

-- receipt: a delivery receipt, matched to its part, or held until its submit_sm_resp
-- has been stored (the classic race: some SMS centers send the receipt first).
-- ARGV: msgid_key, held_key, receipt_json, now_iso, now_ts, held_ttl_s
redis.register_function('minyi_receipt', function(_, a)
  local m = redis.call('GET', a[1])
  if not m then
    redis.call('SET', a[2], a[3], 'EX', math.ceil(tonumber(a[6])))
    redis.call('ZADD', DLR_HELD_INDEX, a[5], a[2])
    redis.call('HINCRBY', STATS, 'dlr:held', 1)
    return {'held', ''}
  end
  local sid, idx = string.match(m, '^(.*)|(%d+)$')
  return {apply_receipt(sid, idx, a[3], a[4]), sid}
end)

-- mo_part: one part of a concatenated MO message; returns the parts when complete.
-- ARGV: key, part_no, text, total, ttl_s, now_ts
redis.register_function('minyi_mo_part', function(_, a)
  local key = a[1]
  redis.call('HSET', key, a[2], a[3])
  redis.call('EXPIRE', key, math.ceil(tonumber(a[5])))
  redis.call('ZADD', MO_INDEX, 'NX', a[6], key)
  if redis.call('HLEN', key) < tonumber(a[4]) then return {'partial'} end
  local parts = redis.call('HGETALL', key)
  redis.call('DEL', key)
  redis.call('ZREM', MO_INDEX, key)
  local out = {'complete'}
  for i = 1, #parts do out[#out + 1] = parts[i] end
  return out
end)

-- mo_flush: take incomplete MO part sets older than the cutoff (their missing parts
-- are not coming); returns {key, n, field, value, ..., key, n, ...}.
-- ARGV: cutoff_ts, limit
redis.register_function('minyi_mo_flush', function(_, a)
  local keys = redis.call('ZRANGEBYSCORE', MO_INDEX, '-inf', a[1], 'LIMIT', 0, tonumber(a[2]))
  local out = {}
  for _, key in ipairs(keys) do
    local parts = redis.call('HGETALL', key)
    redis.call('DEL', key)
    redis.call('ZREM', MO_INDEX, key)
    out[#out + 1] = key
    out[#out + 1] = #parts
    for i = 1, #parts do out[#out + 1] = parts[i] end
  end
  return out
end)

-- Put a survey on the callback dialer's waiting list (gateway/callbacks.lua moves it to
-- its unit's queue when due). kind: 'agent' (to a unit's agents) or 'ivr' (automated).
local CB_WAIT = P .. 'cb:wait'
local function callback_enqueue(sid, kind, priority, due_s, now_s)
  redis.call('HSET', skey(sid), 'cb_kind', kind, 'cb_attempts', 0, 'cb_priority', priority,
    'cb_created', now_s)
  redis.call('ZADD', CB_WAIT, due_s, sid)
end

local function server_time()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end

-- reply: a citizen's understood reply, attached to its survey.
-- ARGV: sid, now_iso, payload_json, rating, opt_out ('1'/'0'), phone
redis.register_function('minyi_reply', function(_, a)
  local sid, now_iso, payload, rating, opt_out, phone = a[1], a[2], a[3], a[4], a[5], a[6]
  local sk = skey(sid)
  local st = redis.call('HGET', sk, 'state')
  if not st or not allowed(st, 'replied') then return {'late', st or ''} end
  redis.call('HINCRBY', sk, 'replies', 1)
  redis.call('HSET', sk, 'rating', rating, 'replied_at', now_iso)
  transition(sid, 'replied', now_iso, payload)
  if opt_out == '1' then
    if redis.call('SADD', OPTOUT, phone) == 1 then
      emit(sid, 'citizen.opted_out', now_iso, '{"source":"sms_reply"}')
    end
  end
  local outcome = 'replied'
  if rating == 'unsatisfied' then
    close_reply_window(sid)
    if transition(sid, 'callback_pending', now_iso, '{"reason":"unsatisfied_reply"}') then
      local now_s = server_time()
      callback_enqueue(sid, 'agent', 5, now_s, now_s)
    end
    outcome = 'callback_pending'
  elseif rating == 'satisfied' or rating == 'basically_satisfied' then
    close_reply_window(sid)
    transition(sid, 'closed', now_iso, '{"reason":' .. cjson.encode(rating) .. '}')
    outcome = 'closed'
  elseif opt_out == '1' then
    close_reply_window(sid)
    transition(sid, 'closed', now_iso, '{"reason":"opted_out"}')
    outcome = 'closed'
  end
  return {outcome, st}
end)

-- unmatched: a reply that belongs to no open survey: kept and reported on the feed
-- (with an empty survey id and its own sequence). A TD is honoured all the same.
-- ARGV: now_iso, payload_json, phone, opt_out ('1'/'0')
redis.register_function('minyi_unmatched', function(_, a)
  redis.call('XADD', UNMATCHED, 'MAXLEN', '~', 1000000, '*', 'reply', a[2], 'at', a[1])
  if a[4] == '1' then redis.call('SADD', OPTOUT, a[3]) end
  local seq = redis.call('INCR', P .. 'replies:unmatched:seq')
  local ev = '{"id":' .. cjson.encode('unmatched:' .. seq) .. ',"type":"reply.unmatched"'
    .. ',"survey_id":"","seq":' .. seq .. ',"time":' .. cjson.encode(a[1])
    .. ',"payload":' .. a[2] .. '}'
  redis.call('XADD', EVENTS, '*', 'sid', '', 'seq', tostring(seq), 'event', ev)
  redis.call('HINCRBY', STATS, 'event:reply.unmatched', 1)
  return seq
end)

-- sweep: reply windows and receipt deadlines that have passed, and receipts held
-- for a submit_sm_resp that never came (kept on the orphan stream, counted).
-- ARGV: now_ts, now_iso, limit, orphan_cutoff_ts, no_reply_ivr ('1': a survey without
--       a reply gets the automated IVR survey call)
redis.register_function('minyi_sweep', function(_, a)
  local now_ts, now_iso, limit = a[1], a[2], tonumber(a[3])
  local n = 0
  for _, hk in ipairs(redis.call('ZRANGEBYSCORE', DLR_HELD_INDEX, '-inf', a[4], 'LIMIT', 0, limit)) do
    redis.call('ZREM', DLR_HELD_INDEX, hk)
    local held = redis.call('GET', hk)
    if held then
      redis.call('DEL', hk)
      redis.call('XADD', P .. 'dlr:orphans', 'MAXLEN', '~', 1000000, '*',
        'key', hk, 'receipt', held, 'at', now_iso)
      redis.call('HINCRBY', STATS, 'dlr:orphaned', 1)
      n = n + 1
    end
  end
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', DLR_DUE, '-inf', now_ts, 'LIMIT', 0, limit)) do
    redis.call('ZREM', DLR_DUE, sid)
    local sk = skey(sid)
    if redis.call('HGET', sk, 'state') == 'submitted' then
      local total = tonumber(redis.call('HGET', sk, 'parts') or '1')
      local missing = {}
      for i = 1, total do
        if redis.call('HEXISTS', sk, 'p' .. i .. ':dlr') == 0 then missing[#missing + 1] = i end
      end
      redis.call('HSET', sk, 'undeliverable_reason', 'no_receipt')
      transition(sid, 'undeliverable', now_iso, '{"reason":"no_receipt","parts":' .. total
        .. ',"missing_parts":' .. cjson.encode(missing) .. '}')
      n = n + 1
    end
  end
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', REPLY_DUE, '-inf', now_ts, 'LIMIT', 0, limit)) do
    local st = redis.call('HGET', skey(sid), 'state')
    close_reply_window(sid)
    if st == 'replied' then
      transition(sid, 'closed', now_iso, '{"reason":"reply_not_understood"}')
    elseif st == 'undeliverable' then
      transition(sid, 'closed', now_iso, '{"reason":"undeliverable"}')
    elseif st then
      if transition(sid, 'no_reply', now_iso, '{}') and a[5] == '1' then
        transition(sid, 'callback_pending', now_iso, '{"reason":"no_reply","kind":"ivr"}')
        local now_s = server_time()
        callback_enqueue(sid, 'ivr', 3, now_s, now_s)
      end
    end
    n = n + 1
  end
  return n
end)

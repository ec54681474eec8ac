-- Callback dialer functions (gateway/dialer/); part of the minyi library, after
-- store.lua, whose local helpers (emit, transition, callback_enqueue) they use.
--
-- A callback's path through Redis (keys: gateway/store/keys.py):
--   cb:wait (zset, due time)  --promote-->  cb:ready:<queue> (zset, priority then age)
--   --claim--> cb:active (hash, callback id -> owner; state 'calling')  --result-->
--   'called' | back to cb:wait (retry) | 'unreachable' | 'closed' (IVR rating)

local CALLABLE = {callback_pending = true, recheck = true}

-- The unit queue for a unit code: the longest configured unit code it starts with
-- (所队 330602510000 -> 县 330602 when only the county has agents).
local function route(unit, units, default_unit)
  local best = ''
  for _, u in ipairs(units) do
    if #u > #best and string.sub(unit, 1, #u) == u then best = u end
  end
  if best == '' then best = default_unit end
  return best
end

-- promote: due callbacks onto their unit's ready queue. Due by the server's clock, the
-- one callback_enqueue used (a client's rounded time could miss a callback just made).
-- ARGV: limit, now_iso, default_unit ('' = none), unit codes...
redis.register_function('minyi_cb_promote', function(_, a)
  need('minyi_cb_promote', a, 3)
  local now_s, now_iso, default_unit = server_time(), a[2], a[3]
  local limit = num('minyi_cb_promote', 'limit', a[1])
  local units = {}
  for i = 4, #a do units[#units + 1] = a[i] end
  local n = 0
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', CB_WAIT, '-inf', now_s, 'LIMIT', 0, limit)) do
    redis.call('ZREM', CB_WAIT, sid)
    local sk = SURVEY(sid)
    local st, kind, unit, pri, created = unpack(redis.call('HMGET', sk, 'state', 'cb_kind',
      'unit_code', 'cb_priority', 'cb_created'))
    if st and CALLABLE[st] then
      local queue
      if kind == 'ivr' then
        queue = 'ivr'
      else
        local u = route(unit or '', units, default_unit)
        queue = (u ~= '') and ('unit:' .. u) or ''
      end
      if queue == '' then
        -- No queue for this unit: parked, reported once, tried again in 5 minutes
        -- (an operator adds the unit's agents; nothing is dropped).
        redis.call('ZADD', CB_WAIT, now_s + 300, sid)
        if redis.call('HSETNX', sk, 'cb_unroutable', now_iso) == 1 then
          emit(sid, 'callback.unroutable', now_iso, '{"unit_code":' .. cjson.encode(unit or '')
            .. ',"retry_every_s":300}')
        end
      else
        local score = (9 - (tonumber(pri) or 5)) * 1e13 + math.floor((tonumber(created) or 0) * 1000)
        redis.call('ZADD', CB_READY(queue), score, sid)
        redis.call('HSET', sk, 'cb_queue', queue)
        redis.call('HDEL', sk, 'cb_unroutable')
        n = n + 1
      end
    end
  end
  return n
end)

-- claim: take up to #ids callbacks of one queue to dial now, one id each.
-- ARGV: queue, now_iso, owner, id_ttl_s, callback ids...
-- Returns a flat list: sid, callback id, attempt, phone, kind, unit, origin (the state
-- it was claimed from: callback_pending or recheck) per claimed call.
redis.register_function('minyi_cb_claim', function(_, a)
  need('minyi_cb_claim', a, 4)
  local queue, now_iso, owner = a[1], a[2], a[3]
  local ttl = num('minyi_cb_claim', 'id_ttl_s', a[4])
  local out = {}
  local i = 5
  while i <= #a do
    local popped = redis.call('ZPOPMIN', CB_READY(queue), 1)
    if #popped == 0 then break end
    local sid, cid = popped[1], a[i]
    local sk = SURVEY(sid)
    local st = redis.call('HGET', sk, 'state')
    if st and CALLABLE[st] then
      local attempt = redis.call('HINCRBY', sk, 'cb_attempts', 1)
      local kind, phone, unit = unpack(redis.call('HMGET', sk, 'cb_kind', 'phone', 'unit_code'))
      redis.call('HSET', sk, 'cb_last', cid)
      redis.call('SET', CB_ID(cid), sid, 'EX', ttl)
      redis.call('HSET', CB_ACTIVE, cid, cjson.encode({sid = sid, owner = owner, queue = queue,
        attempt = attempt, kind = kind or 'agent', at = now_iso, origin = st}))
      transition(sid, 'calling', now_iso, '{"callback_id":' .. cjson.encode(cid)
        .. ',"attempt":' .. attempt .. ',"kind":' .. cjson.encode(kind or 'agent')
        .. ',"queue":' .. cjson.encode(queue) .. '}')
      for _, v in ipairs({sid, cid, tostring(attempt), phone or '', kind or 'agent', unit or '',
          st}) do
        out[#out + 1] = v
      end
      i = i + 1
    end
  end
  return out
end)

-- result: one attempt's outcome, stored once (a second result for the same callback
-- id is ignored: recovery and the live event stream may both report it).
-- ARGV: sid, callback id, now_iso, next_state, attempt_payload, transition_payload,
--       retry_at_s ('' unless next_state is callback_pending), asr_job ('' = none),
--       rating ('' = none), uncount ('1': the call was never placed, the attempt
--       does not count), next_kind ('' = same; 'agent': the next attempts go to an
--       agent, counted afresh: an automated survey answered "unsatisfied")
redis.register_function('minyi_cb_result', function(_, a)
  local fn = 'minyi_cb_result'
  need(fn, a, 10)
  local sid, cid, now_iso, next_state = a[1], a[2], a[3], a[4]
  if TRANSITIONS[next_state] == nil then refuse(fn, 'unknown next state ' .. next_state) end
  object_text(fn, 'attempt payload', a[5])
  object_text(fn, 'transition payload', a[6])
  if next_state == 'callback_pending' then num(fn, 'retry_at_s', a[7]) end
  if redis.call('HDEL', CB_ACTIVE, cid) == 0 then return 'duplicate' end
  if a[10] == '1' then redis.call('HINCRBY', SURVEY(sid), 'cb_attempts', -1) end
  emit(sid, 'callback.attempt', now_iso, a[5])
  local outcome = cjson.decode(a[5]).outcome
  if type(outcome) == 'string' then tally(sid, now_iso, 'callback:' .. outcome) end
  if a[9] ~= '' then redis.call('HSET', SURVEY(sid), 'rating', a[9]) end
  -- who took the call: only that agent may give its disposition
  local ok, attempt = pcall(cjson.decode, a[5])
  redis.call('HSET', SURVEY(sid), 'cb_agent_for', cid, 'cb_agent',
    ok and type(attempt) == 'table' and text_of(attempt.agent) or '')
  if next_state == 'closed' and redis.call('HGET', SURVEY(sid), 'state') == 'calling' then
    transition(sid, 'called', now_iso, '{"callback_id":' .. cjson.encode(cid) .. '}')
  end
  transition(sid, next_state, now_iso, a[6])
  if next_state == 'callback_pending' then
    if a[11] ~= nil and a[11] ~= '' then
      redis.call('HSET', SURVEY(sid), 'cb_kind', a[11], 'cb_attempts', 0)
    end
    redis.call('ZADD', CB_WAIT, a[7], sid)
  end
  if a[8] ~= '' then redis.call('XADD', ASR_JOBS, '*', 'job', a[8]) end
  return 'stored'
end)

-- disposition: the agent's verdict on a connected callback; closes the survey.
-- ARGV: callback id, now_iso, payload_json
-- Returns {status, sid, state}: stored | unknown | stale (a later attempt exists) |
-- state (the survey is not waiting for a disposition) | exists (already given) |
-- agent (the payload names an agent other than the one who took the call; the third
-- value is then that agent).
redis.register_function('minyi_cb_disposition', function(_, a)
  need('minyi_cb_disposition', a, 3)
  local cid, now_iso = a[1], a[2]
  local payload = object_text('minyi_cb_disposition', 'payload', a[3])
  local sid = redis.call('GET', CB_ID(cid))
  if not sid then return {'unknown', '', ''} end
  local sk = SURVEY(sid)
  local st, last, given = unpack(redis.call('HMGET', sk, 'state', 'cb_last', 'disposition_for'))
  if not st then return {'unknown', sid, ''} end
  if given == cid then return {'exists', sid, st} end
  if last ~= cid then return {'stale', sid, st} end
  if st ~= 'called' and st ~= 'transcribed' then return {'state', sid, st} end
  local took_for, took = unpack(redis.call('HMGET', sk, 'cb_agent_for', 'cb_agent'))
  local by = text_of(cjson.decode(payload).agent)
  if by ~= '' and took_for == cid and took and took ~= '' and took ~= by then
    return {'agent', sid, took}
  end
  redis.call('HSET', sk, 'disposition_for', cid, 'disposition', payload)
  emit(sid, 'callback.disposition', now_iso, payload)
  local counted = {}
  for _, tag in ipairs(reasons_of(payload)) do counted[#counted + 1] = 'dreason:' .. tag end
  tally(sid, now_iso, unpack(counted))
  transition(sid, 'closed', now_iso, '{"reason":"disposition","callback_id":'
    .. cjson.encode(cid) .. '}')
  return {'stored', sid, 'closed'}
end)

-- recheck: a second callback (二次回访) after the unit fixed the problem.
-- ARGV: sid, now_iso, payload_json, kind ('agent' | 'ivr'), priority
-- Returns {status, state}: stored | unknown | state (not closed/unreachable).
-- Due at once by the server's clock, the one minyi_cb_promote compares with.
redis.register_function('minyi_cb_recheck', function(_, a)
  local fn = 'minyi_cb_recheck'
  need(fn, a, 5)
  object_text(fn, 'payload', a[3])
  local priority = num(fn, 'priority', a[5])
  local sid, now_iso, now_s = a[1], a[2], server_time()
  local st = redis.call('HGET', SURVEY(sid), 'state')
  if not st then return {'unknown', ''} end
  if not allowed(st, 'recheck') then return {'state', st} end
  transition(sid, 'recheck', now_iso, a[3])
  redis.call('HINCRBY', SURVEY(sid), 'rechecks', 1)
  callback_enqueue(sid, a[4], priority, now_s, now_s)
  return {'stored', 'recheck'}
end)

-- dialer lease: one dialer dials on one Asterisk at a time (pacing counts the calls a
-- dialer placed itself). ARGV: pbx ("host:port"), owner, ttl_s (0 = give it back).
-- Returns 1 while the lease is the owner's.
redis.register_function('minyi_dialer_lease', function(_, a)
  need('minyi_dialer_lease', a, 3)
  local key, owner, ttl = DIALER_LEASE(a[1]), a[2], num('minyi_dialer_lease', 'ttl_s', a[3])
  local holder = redis.call('GET', key)
  if ttl == 0 then
    if holder == owner then redis.call('DEL', key) end
    return 0
  end
  if holder and holder ~= owner then return 0 end
  redis.call('SET', key, owner, 'EX', ttl)
  return 1
end)

-- agent state: an agent's presence changed, as the dialer reads it from AMI (queue
-- membership, pause, the phone's device state: gateway/dialer/agents.py). Stored once per
-- change and put on the feed as agent.state; it belongs to no survey, so it has its own
-- sequence (like reply.unmatched) and the id "agent:<seq>".
-- ARGV: agent, now_iso, state, payload_json (an object; "agent", "state", "from" (the
-- previous state, null the first time) and "since" are put in front here; on_call may
-- name the callback the agent took: "callback_id", "survey_id").
-- Returns the event's seq, or 0 when the agent was already in that state (on the same
-- callback).
redis.register_function('minyi_agent_state', function(_, a)
  local fn = 'minyi_agent_state'
  need(fn, a, 4)
  local agent, now_iso, state = a[1], a[2], a[3]
  local payload = object_text(fn, 'payload', a[4])
  local from = 'null'
  local old = redis.call('HGET', AGENTS, agent)
  if old then
    local ok, rec = pcall(cjson.decode, old)
    if ok and type(rec) == 'table' and type(rec.state) == 'string' then
      local call = text_of(cjson.decode(payload).callback_id)
      if rec.state == state and text_of(rec.callback_id) == call then return 0 end
      from = cjson.encode(rec.state)
    end
  end
  local body = '{"agent":' .. cjson.encode(agent) .. ',"state":' .. cjson.encode(state)
    .. ',"from":' .. from .. ',"since":' .. cjson.encode(now_iso)
  if string.match(payload, '^{%s*}$') then
    body = body .. '}'
  else
    body = body .. ',' .. string.sub(payload, 2)
  end
  redis.call('HSET', AGENTS, agent, body)
  local seq = redis.call('INCR', AGENT_EVENTS_SEQ)
  local ev = '{"id":' .. cjson.encode('agent:' .. seq) .. ',"type":"agent.state"'
    .. ',"survey_id":"","seq":' .. seq .. ',"time":' .. cjson.encode(now_iso)
    .. ',"payload":' .. body .. '}'
  redis.call('XADD', EVENTS, '*', 'sid', '', 'seq', tostring(seq), 'event', ev)
  redis.call('HINCRBY', STATS, 'event:agent.state', 1)
  return seq
end)

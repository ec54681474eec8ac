-- The agents' desk and the supervisors' board (gateway/desk/); part of the minyi
-- library, after store.lua, whose helpers (emit, refuse, need, num, object_text) they
-- use.

-- desk_event: an event of the desk on the feed that belongs to no survey (a login, a
-- logout, a refused login), with the acting user in its payload; its own sequence.
-- ARGV: type, now_iso, payload_json. Returns the seq.
redis.register_function('minyi_desk_event', function(_, a)
  local fn = 'minyi_desk_event'
  need(fn, a, 3)
  local payload = object_text(fn, 'payload', a[3])
  if string.sub(a[1], 1, 5) ~= 'desk.' then refuse(fn, 'type must start with desk.') end
  local seq = redis.call('INCR', DESK_SEQ)
  local ev = '{"id":' .. cjson.encode('desk:' .. seq) .. ',"type":' .. cjson.encode(a[1])
    .. ',"survey_id":"","seq":' .. seq .. ',"time":' .. cjson.encode(a[2])
    .. ',"payload":' .. payload .. '}'
  redis.call('XADD', EVENTS, '*', 'sid', '', 'seq', tostring(seq), 'event', ev)
  redis.call('HINCRBY', STATS, 'event:' .. a[1], 1)
  return seq
end)

-- desk_call: the dialer saw the agent take a callback (AgentConnect: 'pop') or the
-- call end ('ended'): the agent's desk call is recorded (what a reloaded desk shows),
-- the agent of the attempt kept on the survey (cb_agent, with the callback id it
-- belongs to: cb_agent_for), and the desks told on the channel.
-- ARGV: kind ('pop' | 'ended'), callback id, agent, now_iso, ttl_s.
-- Returns the survey id ('' when the callback id is unknown: nothing written).
redis.register_function('minyi_desk_call', function(_, a)
  local fn = 'minyi_desk_call'
  need(fn, a, 5)
  local kind, cid, agent, now_iso = a[1], a[2], a[3], a[4]
  local ttl = num(fn, 'ttl_s', a[5])
  if kind ~= 'pop' and kind ~= 'ended' then refuse(fn, 'kind must be pop or ended') end
  local sid = redis.call('GET', CB_ID(cid))
  if not sid then return '' end
  local call = {callback_id = cid, survey_id = sid, at = now_iso}
  if kind == 'pop' then
    redis.call('HSET', SURVEY(sid), 'cb_agent', agent, 'cb_agent_for', cid)
  else
    local before = redis.call('GET', DESK_CALL(agent))
    local ok, prev = pcall(cjson.decode, before or '')
    if ok and type(prev) == 'table' and prev.callback_id == cid then call.at = prev.at end
    call.ended_at = now_iso
  end
  redis.call('SET', DESK_CALL(agent), cjson.encode(call), 'EX', math.ceil(ttl))
  redis.call('PUBLISH', DESK_CHANNEL, cjson.encode({kind = kind, agent = agent,
    callback_id = cid, survey_id = sid, at = now_iso}))
  return sid
end)

-- The clarifying SMS (issue 11, item 4); part of the minyi library, after store.lua,
-- whose local helpers (emit, call_back, CB_PRIORITY, server_time) it uses.
--
-- minyi_reply queues it (survey field clarify = 'queued', an SMS_QUEUE entry with
-- kind 'clarify'); the sender takes it (clarify_begin), sends the [surveys]
-- clarify_template and stores the SMS center's answer: clarify_sent (clarify = 'sent',
-- survey.clarify_sent on the feed) or clarify_failed (clarify = 'failed', and the
-- survey is called back with reason 'unclear' when callback_on says so). Its reply
-- comes back through minyi_reply like any other.

-- clarify_begin: the sender takes a queued clarifying SMS.
-- ARGV: sid, now_iso
-- Returns {'send', attempts, ext, field, value, ...} (the survey record, as
-- minyi_send_begin) or {'skip', state}: the survey moved on meanwhile (a rating came,
-- the citizen opted out) or the SMS went already.
redis.register_function('minyi_clarify_begin', function(_, a)
  need('minyi_clarify_begin', a, 2)
  local sk = SURVEY(a[1])
  local st, clarify, phone = unpack(redis.call('HMGET', sk, 'state', 'clarify', 'phone'))
  if st ~= 'replied' or clarify ~= 'queued' or not phone then return {'skip', st or ''} end
  if redis.call('SISMEMBER', OPTOUT, phone) == 1 then return {'skip', 'opted_out'} end
  local attempts = redis.call('HINCRBY', sk, 'clarify_attempts', 1)
  local out = {'send', attempts, redis.call('HGET', sk, 'ext') or ''}
  local all = redis.call('HGETALL', sk)
  for i = 1, #all do out[#out + 1] = all[i] end
  return out
end)

-- clarify_sent: the SMS center accepted every part of the clarifying SMS.
-- ARGV: sid, now_iso, parts, bind, message_ids_json (an array)
-- Returns 'sent', or 'duplicate' when it was stored before (a retry after an outage).
redis.register_function('minyi_clarify_sent', function(_, a)
  local fn = 'minyi_clarify_sent'
  need(fn, a, 5)
  local parts = num(fn, 'parts', a[3])
  local ok, ids = pcall(cjson.decode, a[5])
  if not ok or type(ids) ~= 'table' then refuse(fn, 'message ids are not a JSON array') end
  local sk = SURVEY(a[1])
  if redis.call('HGET', sk, 'clarify') ~= 'queued' then return 'duplicate' end
  redis.call('HSET', sk, 'clarify', 'sent', 'clarify_sent_at', a[2])
  emit(a[1], 'survey.clarify_sent', a[2], '{"parts":' .. parts .. ',"bind":'
    .. cjson.encode(a[4]) .. ',"message_ids":' .. json_array(ids) .. '}')
  return 'sent'
end)

-- clarify_failed: the SMS center refused the clarifying SMS for good (or it cannot be
-- rendered). The citizen cannot be asked: called back with reason 'unclear' when
-- unclear_callback is '1', else left to the sweep.
-- ARGV: sid, now_iso, reason, unclear_callback ('1'/'0')
-- Returns 'callback_pending', 'failed' or 'duplicate'.
redis.register_function('minyi_clarify_failed', function(_, a)
  need('minyi_clarify_failed', a, 4)
  local sid, now_iso = a[1], a[2]
  local sk = SURVEY(sid)
  if redis.call('HGET', sk, 'clarify') ~= 'queued' then return 'duplicate' end
  redis.call('HSET', sk, 'clarify', 'failed', 'clarify_error', a[3])
  emit(sid, 'sms.clarify_failed', now_iso, '{"error":' .. cjson.encode(a[3]) .. '}')
  if a[4] == '1' and redis.call('HGET', sk, 'state') == 'replied'
      and call_back(sid, now_iso, 'unclear', CB_PRIORITY.unclear) then
    return 'callback_pending'
  end
  return 'failed'
end)

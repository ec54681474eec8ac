-- ASR transcript and recording functions (see asr/worker.py, recordings/); part of the
-- minyi library, so emit and transition come from store.lua.

local ASR_DONE_TTL = 30 * 86400 -- a job id is remembered this long (seconds)

-- transcript: a transcription job ends, exactly once per job id: the event (transcript
-- or transcript.failed) on the survey's feed, the transcript kept with the survey, and
-- for a dead letter its entry on the dead-letter stream.
-- ARGV: sid, now_iso, event_type ('transcript' | 'transcript.failed'), payload_json,
--       job_id, [dead-letter field, value, ...]
-- Returns 'duplicate' (the job has ended before: nothing written), 'no_survey' (the
-- job is recorded, no event), 'transcribed' (the survey moved called -> transcribed)
-- or 'recorded'.
redis.register_function('minyi_transcript', function(_, a)
  need('minyi_transcript', a, 5)
  local sid, now_iso, etype, payload, job_id = a[1], a[2], a[3], a[4], a[5]
  object_text('minyi_transcript', 'payload', payload)
  if (#a - 5) % 2 ~= 0 then
    refuse('minyi_transcript', 'dead-letter fields come in name, value pairs')
  end
  if etype ~= 'transcript' and etype ~= 'transcript.failed' then
    return redis.error_reply('ERR minyi_transcript: bad event type ' .. tostring(etype))
  end
  if not job_id or job_id == '' then
    return redis.error_reply('ERR minyi_transcript: empty job id')
  end
  if not redis.call('SET', ASR_DONE(job_id), now_iso, 'NX', 'EX', ASR_DONE_TTL) then
    return 'duplicate'
  end
  if #a > 5 then
    local fields = {}
    for i = 6, #a do fields[#fields + 1] = a[i] end
    redis.call('XADD', ASR_DEAD, 'MAXLEN', '~', 1000000, '*', unpack(fields))
    redis.call('HINCRBY', STATS, 'asr:dead', 1)
  end
  local sk = SURVEY(sid)
  if sid == '' or redis.call('EXISTS', sk) == 0 then
    redis.call('HINCRBY', STATS, 'asr:no_survey', 1)
    return 'no_survey'
  end
  emit(sid, etype, now_iso, payload)
  if etype ~= 'transcript' then return 'recorded' end
  -- Keep the transcript with the survey (the API shows it; retention deletes it with
  -- the recording), keyed by callback id, and living as long as the survey record.
  local p = cjson.decode(payload)
  local field = job_id
  if type(p.callback_id) == 'string' and p.callback_id ~= '' then field = p.callback_id end
  local tk = SURVEY_TRANSCRIPTS(sid)
  redis.call('HSET', tk, field, payload)
  local ttl = redis.call('PTTL', sk)
  if ttl > 0 then redis.call('PEXPIRE', tk, ttl) end
  redis.call('HSET', sk, 'transcript_at', now_iso, 'transcript_job', job_id)
  if transition(sid, 'transcribed', now_iso, '{"job_id":' .. cjson.encode(job_id)
      .. ',"callback_id":' .. cjson.encode(p.callback_id or '') .. '}') then
    return 'transcribed'
  end
  return 'recorded'
end)

-- note_event: a fact about a survey that changes no state (emitted only if the survey
-- exists). ARGV: sid, now_iso, event_type, payload_json. Returns the event's seq or 0.
redis.register_function('minyi_note_event', function(_, a)
  need('minyi_note_event', a, 4)
  object_text('minyi_note_event', 'payload', a[4])
  local sid = a[1]
  if sid == '' or redis.call('EXISTS', SURVEY(sid)) == 0 then return 0 end
  return emit(sid, a[3], a[2], a[4])
end)

-- recording_deleted: retention removed a recording's files; forget its index entry and
-- the transcript kept with its survey, and report it on the survey's feed. Idempotent:
-- only the call that removes the index entry emits.
-- ARGV: base, now_iso, payload_json
-- Returns 'unknown' (not indexed), 'emitted' or 'forgotten' (its survey is gone).
redis.register_function('minyi_recording_deleted', function(_, a)
  need('minyi_recording_deleted', a, 3)
  local base, now_iso = a[1], a[2]
  local payload = object_text('minyi_recording_deleted', 'payload', a[3])
  local raw = redis.call('HGET', RECORDINGS, base)
  if not raw then return 'unknown' end
  redis.call('HDEL', RECORDINGS, base)
  redis.call('ZREM', RECORDINGS_CREATED, base)
  redis.call('HINCRBY', STATS, 'recordings:deleted', 1)
  local ok, rec = pcall(cjson.decode, raw)
  if not ok or type(rec) ~= 'table' or type(rec.survey_id) ~= 'string' or rec.survey_id == ''
  then
    return 'forgotten'
  end
  local sid = rec.survey_id
  if redis.call('EXISTS', SURVEY(sid)) == 0 then return 'forgotten' end
  if type(rec.callback_id) == 'string' and rec.callback_id ~= '' then
    redis.call('HDEL', SURVEY_TRANSCRIPTS(sid), rec.callback_id)
  end
  emit(sid, 'recording.deleted', now_iso, payload)
  return 'emitted'
end)

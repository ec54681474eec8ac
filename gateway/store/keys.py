"""Every Redis key the gateway uses, in one screen (arq's constants.py idea).

Workers talk to each other only through these keys, so a big site can run many
processes of each kind against one Redis. Streams carry work; nothing is XACKed
before its effect is stored.

The Lua function library gets these names from here: gateway/store/library.py turns
every constant below into a Lua local of the same name (a string, or for a template a
function of its fields, e.g. ``SURVEY_EVENTS(survey_id)``), and no Lua file types a key.

Redis Cluster is not supported; standalone and Sentinel are (docs/operations.md,
"Redis"). One Redis function changes a survey's keys together with keys shared by all
surveys (EVENTS, STATS, OPTOUT, SMS_QUEUE, the due sets, the callback queues)
atomically, and the only hash tag that would put all of those in one slot puts the
whole keyspace on one node. Cluster would take a redesign of these keys, not a
declaration of them.
"""

PREFIX = "minyi:"

# --- surveys -------------------------------------------------------------------------
# hash: the survey record (fields: see gateway/store/surveys.py)
SURVEY = PREFIX + "survey:{survey_id}"
# list: the survey's event history, JSON strings, oldest first
SURVEY_EVENTS = PREFIX + "survey:{survey_id}:events"
# hash: the survey's transcripts, callback id (or job id) -> transcript payload JSON;
# lives as long as the survey record (store/lua/transcripts.lua)
SURVEY_TRANSCRIPTS = PREFIX + "survey:{survey_id}:transcripts"

# --- the events outbox -----------------------------------------------------------------
# stream: every event of every survey, in commit order. Entry fields:
#   "sid" = survey id ("" for events that belong to no survey), "seq" = per-survey
#   sequence number (decimal), "event" = the event JSON (gateway/store/events.py).
EVENTS = PREFIX + "events"

# --- SMS sending ---------------------------------------------------------------------
# stream: surveys to send now; entry field "sid". Consumer group SMS_GROUP.
SMS_QUEUE = PREFIX + "sms:queue"
SMS_GROUP = "sms"
# zset: deferred surveys (quiet hours), score = unix time to release
SMS_DEFERRED = PREFIX + "sms:deferred"
# zset: submitted/delivered surveys waiting for a reply, score = reply deadline
REPLY_DUE = PREFIX + "sms:reply-due"
# zset: surveys waiting for delivery receipts, score = receipt deadline
DLR_DUE = PREFIX + "sms:dlr-due"

# --- SMS receiving -------------------------------------------------------------------
# stream: raw deliver_sm PDUs stored before deliver_sm_resp is sent; fields "bind",
# "smsc", "pdu" (bytes), "at" (unix time). Consumer group INBOUND_GROUP.
INBOUND = PREFIX + "sms:inbound"
INBOUND_GROUP = "inbound"
# string: message id (normalised) -> "survey_id|part_index", per SMS center
MSGID = PREFIX + "msgid:{smsc}:{message_id}"
# string: a receipt that arrived before its submit_sm_resp was stored (JSON)
DLR_HELD = PREFIX + "dlr:held:{smsc}:{message_id}"
# zset: held receipts by arrival time, for the orphan sweep
DLR_HELD_INDEX = PREFIX + "dlr:held-index"
# stream: receipts that never matched a submit (kept, reported)
DLR_ORPHANS = PREFIX + "dlr:orphans"
# hash: parts of a multi-part MO message, field = part number, value = text
MO_PARTS = PREFIX + "mo:{smsc}:{source}:{ref}:{total}"
# zset: incomplete MO part sets by first-part time, for the flush sweep
MO_PARTS_INDEX = PREFIX + "mo:index"
# stream: replies that matched no survey (kept, reported)
UNMATCHED_REPLIES = PREFIX + "replies:unmatched"
# counter: the seq of the feed's reply.unmatched events (they belong to no survey)
UNMATCHED_REPLIES_SEQ = PREFIX + "replies:unmatched:seq"

# --- citizens ------------------------------------------------------------------------
# set: opted-out phone numbers (TD/退订), honoured for good
OPTOUT = PREFIX + "optout"
# string with TTL = frequency cap: survey id that last surveyed this number
PHONE_LAST = PREFIX + "phone:{phone}:last"
# zset: this number's surveys open for a reply, score = submit time
PHONE_OPEN = PREFIX + "phone:{phone}:open"
# string with TTL = reply window: extension code + phone -> survey id (扩展码)
EXTCODE = PREFIX + "ext:{code}:{phone}"
# counter for extension-code allocation
EXTCODE_NEXT = PREFIX + "ext:next"

# --- webhook feed (per endpoint) -------------------------------------------------------
# consumer group on EVENTS, one per endpoint
WEBHOOK_GROUP = "webhook:{endpoint}"
# zset: events of one survey waiting to be delivered to one endpoint, score = seq
WEBHOOK_WAIT = PREFIX + "wh:{endpoint}:wait:{survey_id}"
# zset: surveys with events to deliver to the endpoint, score = next attempt time
WEBHOOK_DUE = PREFIX + "wh:{endpoint}:due"
# hash: survey id -> last seq delivered to the endpoint
WEBHOOK_DELIVERED = PREFIX + "wh:{endpoint}:delivered"
# hash: survey id -> JSON retry state {attempts, first_failed_at}
WEBHOOK_RETRY = PREFIX + "wh:{endpoint}:retry"
# hash: survey id -> lease owner token (a process delivering it now)
WEBHOOK_LEASE = PREFIX + "wh:{endpoint}:lease"
# stream: dead letters (event JSON + last error), replayable
WEBHOOK_DEAD = PREFIX + "wh:{endpoint}:dead"
# hash: survey id -> seq of its dead letter: the survey's later events wait behind it
# (per-survey order) until the dead letter is replayed
WEBHOOK_PARKED = PREFIX + "wh:{endpoint}:parked"
# hash: survey id -> "<batch id> <last seq>": the stored batch its head run went out in
# (batch_max > 1) and where that run ends, until the batch is delivered; a retry, by
# any process, sends the same batch again (store/lua/webhooks.lua, minyi_wh_fail's pin,
# minyi_wh_batch_done)
WEBHOOK_BATCH_OF = PREFIX + "wh:{endpoint}:batchof"
# hash: batch id -> JSON [[survey id, first seq, last seq], ...] (its members, in
# order), and "<batch id>:body" -> the bytes it first went out with
WEBHOOK_BATCHES = PREFIX + "wh:{endpoint}:batches"

# --- operations ----------------------------------------------------------------------
# hash: counters for metrics (field -> integer)
STATS = PREFIX + "stats"
# hash: instance name -> JSON report of that process's live parts (its binds, its
# dialer), rewritten every few seconds (gateway/store/status.py): what /healthz and
# /metrics of any API process show of the processes that have no page of their own
STATUS = PREFIX + "status"

# --- per-unit figures (the `tally` of store/lua/store.lua; read by gateway/store/tallies.py)
# Kept by the same functions that move the states, never by scanning surveys. Fields:
# see gateway/store/tallies.py. A unit code is [A-Za-z0-9_], so "day"/"total" cannot clash.
# hash: one unit's counters for one local day (YYYY-MM-DD in [surveys] timezone),
# kept 400 days after its last write
TALLY_DAY = PREFIX + "tally:day:{unit}:{day}"
# hash: one unit's counters since the start (the labelled /metrics series)
TALLY_TOTAL = PREFIX + "tally:total:{unit}"
# set: the unit codes that have counters
TALLY_UNITS = PREFIX + "tally:units"

# string: the era of the master serving now, a tag of its run id and replication id
# (minyi_era in store/lua/store.lua). A restarted master, or a replica promoted by a
# failover, has a new one: writes the old one lost cannot come back under it, and
# every event id names the era it was written in (gateway/store/events.py). Set by
# every gateway connection when it connects (gateway/store/connection.py).
ERA = PREFIX + "era"

# --- callback dialer (store/lua/callbacks.lua, gateway/dialer/) ----------------------
# zset: callbacks waiting for their (next) attempt, score = unix time due
CB_WAIT = PREFIX + "cb:wait"
# zset: callbacks due, per queue ("unit:<code>" or "ivr"), score = priority band + age
CB_READY = PREFIX + "cb:ready:{queue}"
# hash: callback id -> JSON {sid, owner, queue, attempt, kind, at}: calls in progress
CB_ACTIVE = PREFIX + "cb:active"
# string with TTL: callback id -> survey id (for the agent's disposition)
CB_ID = PREFIX + "cb:id:{callback_id}"
# string with TTL: a live dialer process (its calls are not adopted by others)
DIALER_OWNER = PREFIX + "dialer:owner:{owner}"
# string with TTL: the dialer that dials on one Asterisk ("host:port") now
DIALER_LEASE = PREFIX + "dialer:lease:{pbx}"

# --- the agents' desk and the supervisors' board (gateway/desk/, store/lua/desk.lua) -------
# hash with TTL (the idle limit): one login session, by the SHA-256 of its cookie;
# fields user, role, csrf, login_at (unix), cred (fingerprint of the PIN hash it was
# opened with: a changed PIN ends it)
DESK_SESSION = PREFIX + "desk:session:{digest}"
# counter with TTL: failed logins of one user id in the current window (a wrong PIN
# more than LOGIN_FAILS_MAX times locks the id until the window ends)
DESK_LOGIN_FAILS = PREFIX + "desk:fails:{user}"
# string with TTL: the agent's call now or last, JSON {callback_id, survey_id, at,
# ended_at}; what a desk shows after a reload
DESK_CALL = PREFIX + "desk:call:{agent}"
# pub/sub channel: {"kind": "pop" | "ended", "agent", "callback_id", "survey_id", "at"}
DESK_CHANNEL = PREFIX + "desk:pops"
# counter: the seq of the feed's desk events (desk.login...; they belong to no survey)
DESK_SEQ = PREFIX + "desk:seq"

# --- agents' presence (store/lua/callbacks.lua minyi_agent_state, gateway/dialer/agents.py)
# hash: agent name -> JSON {agent, state, from, since, units, interface, reason}: each
# agent's last state as the dialer read it from AMI (free, ringing, on_call, wrapup,
# paused, unreachable, logged_out)
AGENTS = PREFIX + "agents"
# counter: the seq of the feed's agent.state events (they belong to no survey)
AGENT_EVENTS_SEQ = PREFIX + "agents:seq"

# --- ASR (asr/jobs.py, asr/worker.py, store/lua/transcripts.lua) ---------------------
# stream: finished recordings to transcribe; field "job" = JSON (asr/jobs.py).
# Consumer group ASR_GROUP.
ASR_JOBS = PREFIX + "asr:jobs"
ASR_GROUP = "asr"
# stream: dead letters; fields "job" (the entry's raw job field), "entry_id", "reason",
# "detail", "attempts", "at". Kept for replay (re-XADD "job" to ASR_JOBS).
ASR_DEAD = PREFIX + "asr:dead"
# string with a 30-day TTL: the job has ended in its event (idempotency, set by Lua)
ASR_DONE = PREFIX + "asr:done:{job_id}"
# hash: stream entry id -> JSON {reason, detail, leg} of its last retryable failure
ASR_LAST_ERROR = PREFIX + "asr:last-error"

# --- recordings (recordings/index.py, recordings/retention.py) ---------------------------
# hash: base -> JSON {"survey_id", "callback_id", "created_ts", "files": [file names]}
RECORDINGS = PREFIX + "recordings"
# zset: base -> created_ts (unix seconds), for retention's range scan
RECORDINGS_CREATED = PREFIX + "recordings:created"

'use strict';
// An SMS center built on the npm `smpp` package, for Minyi Gateway's tests: a peer the
// project did not write, so the SMPP client is never tested only against its own
// simulator (smsc/). It binds ESMEs from an accounts list, answers submit_sm, sends
// delivery receipts in the Appendix B text form carriers use (any stat, any err),
// throttles every Nth submit, drops the link mid-batch, and delivers MO replies, long
// ones in parts with an 8-bit or a 16-bit concatenation UDH. A deliver_sm is delivered
// again (on the next bind) until the ESME acknowledges it.
//
//   node server.js --account minyi:secret [--port 0] [--control-port 0]
//
// Prints one line `ready smpp=<port> control=<port>` once listening. The control
// channel is HTTP on 127.0.0.1 (tests/peers/npm_smsc.py drives it):
//
//   GET  /stats                 counters, binds, deliveries not yet acknowledged
//   GET  /submits?since=N       every answered submit_sm from index N
//   GET  /deliveries?since=N    every receipt and MO deliver_sm, acknowledged or not
//   POST /behaviour {throttle_every, outcomes: [{pattern, stat, err}], dlr_delay_ms}
//   POST /drop {after}          drop every link now, or after `after` more submit_sm
//                               (the one that would come next is lost unanswered)
//   POST /mo {source, dest, text, split: "udh8"|"udh16", reverse}

const http = require('http');
const smpp = require('smpp');

const ESME_ROK = 0x00;
const ESME_RTHROTTLED = 0x58; // SMPP 3.4 §5.1.3
const ESME_RBINDFAIL = 0x0d;
const ESM_CLASS_RECEIPT = 0x04; // SMPP 3.4 §5.2.12: SMSC delivery receipt
const ESM_CLASS_UDHI = 0x40;
const DATA_CODING_UCS2 = 0x08;
const IEI_CONCAT_8BIT = 0x00; // 3GPP TS 23.040 §9.2.3.24.1
const IEI_CONCAT_16BIT = 0x08; // §9.2.3.24.8
const MAX_SHORT_MESSAGE = 140;

function parseArgs(argv) {
  const out = { port: 0, controlPort: 0, accounts: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port') out.port = Number(argv[++i]);
    else if (arg === '--control-port') out.controlPort = Number(argv[++i]);
    else if (arg === '--account') {
      const [user, pass] = argv[++i].split(':');
      out.accounts[user] = pass;
    } else throw new Error(`unknown argument ${arg}`);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const counters = {
  connections: 0, binds: 0, bind_failed: 0, drops: 0, submit_sm: 0, accepted: 0,
  throttled: 0, duplicates: 0, lost_in_drop: 0, deliver_sent: 0, deliver_acked: 0,
  deliver_resent: 0,
};
const behaviour = { throttle_every: 0, outcomes: [], dlr_delay_ms: 0 };
const submits = [];
const deliveries = [];
const seen = new Set();
const sessions = new Set();
let admitted = 0;
let nextMessage = 0x1000;
let dropAfter = null;
let moReference = 0;

// --- receipts and MO: deliver_sm, delivered again until acknowledged ------------------

function smppDate(date) {
  const p = (n) => String(n).padStart(2, '0');
  return p(date.getFullYear() % 100) + p(date.getMonth() + 1) + p(date.getDate())
    + p(date.getHours()) + p(date.getMinutes());
}

function outcomeFor(dest) {
  for (const rule of behaviour.outcomes) {
    if (new RegExp(rule.pattern).test(dest)) return rule;
  }
  return { stat: 'DELIVRD', err: 0 };
}

function queueDelivery(kind, params, extra) {
  const delivery = {
    index: deliveries.length, kind, params, acked: false, attempts: 0, session: null, ...extra,
  };
  deliveries.push(delivery);
  pump();
  return delivery;
}

function receivers() {
  return [...sessions].filter((s) => s.bound && s.kind !== 'transmitter');
}

function pump() {
  const targets = receivers();
  if (!targets.length) return;
  let i = 0;
  for (const d of deliveries) {
    if (d.acked || d.session) continue;
    const session = targets[i++ % targets.length];
    d.session = session;
    d.attempts += 1;
    counters.deliver_sent += 1;
    if (d.attempts > 1) counters.deliver_resent += 1;
    session.send(new smpp.PDU('deliver_sm', d.params), (resp) => {
      d.session = null;
      if (resp.command_status === ESME_ROK) {
        d.acked = true;
        counters.deliver_acked += 1;
      } else {
        setTimeout(pump, 200);
      }
    });
  }
}

function receipt(record) {
  const rule = outcomeFor(record.dest);
  const now = new Date();
  const text = `id:${record.message_id} sub:001 dlvrd:${rule.stat === 'DELIVRD' ? '001' : '000'}`
    + ` submit date:${smppDate(now)} done date:${smppDate(now)}`
    + ` stat:${rule.stat} err:${String(rule.err || 0).padStart(3, '0')} text:`;
  const params = {
    source_addr: record.dest,
    destination_addr: record.source,
    esm_class: ESM_CLASS_RECEIPT,
    data_coding: 0,
    short_message: Buffer.from(text, 'ascii'),
  };
  const queue = () => queueDelivery('dlr', params, { message_id: record.message_id, stat: rule.stat });
  if (behaviour.dlr_delay_ms > 0) setTimeout(queue, behaviour.dlr_delay_ms);
  else queue();
}

function ucs2(text) {
  return Buffer.from(text, 'utf16le').swap16();
}

// Cut UTF-16 code units into parts of at most `room` octets, never between the two
// halves of a surrogate pair.
function chunks(text, room) {
  const units = [];
  for (const ch of text) units.push(ch);
  const out = [];
  let current = '';
  for (const ch of units) {
    if ((current.length + ch.length) * 2 > room) {
      out.push(current);
      current = '';
    }
    current += ch;
  }
  out.push(current);
  return out;
}

function injectMo({ source, dest, text, split = 'udh8', reverse = false }) {
  const whole = ucs2(text);
  const base = { source_addr: source, destination_addr: dest, data_coding: DATA_CODING_UCS2 };
  if (whole.length <= MAX_SHORT_MESSAGE) {
    return [queueDelivery('mo', { ...base, short_message: whole }, { text }).index];
  }
  const udhLength = split === 'udh16' ? 7 : 6;
  const parts = chunks(text, MAX_SHORT_MESSAGE - udhLength);
  moReference = (moReference + 1) & 0xffff;
  const ref = split === 'udh16' ? moReference : moReference & 0xff;
  const pdus = parts.map((part, i) => {
    const udh = split === 'udh16'
      ? Buffer.from([6, IEI_CONCAT_16BIT, 4, ref >> 8, ref & 0xff, parts.length, i + 1])
      : Buffer.from([5, IEI_CONCAT_8BIT, 3, ref, parts.length, i + 1]);
    return {
      ...base,
      esm_class: ESM_CLASS_UDHI,
      short_message: Buffer.concat([udh, ucs2(part)]),
    };
  });
  if (reverse) pdus.reverse();
  return pdus.map((params) => queueDelivery('mo', params, { text }).index);
}

// --- sessions ------------------------------------------------------------------------

function concatInfo(udhList) {
  for (const udh of udhList || []) {
    if (udh[0] === IEI_CONCAT_8BIT && udh.length >= 5) return [udh[2], udh[3], udh[4]];
    if (udh[0] === IEI_CONCAT_16BIT && udh.length >= 6) return [(udh[2] << 8) | udh[3], udh[4], udh[5]];
  }
  return null;
}

function dropAll() {
  let n = 0;
  for (const s of sessions) {
    if (!s.dropped) {
      s.dropped = true;
      s.destroy();
      n += 1;
    }
  }
  counters.drops += n;
  return n;
}

function onSubmit(session, pdu) {
  counters.submit_sm += 1;
  if (dropAfter !== null) {
    if (dropAfter === 0) {
      dropAfter = null;
      counters.lost_in_drop += 1;
      dropAll();
      return;
    }
    dropAfter -= 1;
  }
  admitted += 1;
  const sm = pdu.short_message || {};
  const record = {
    index: submits.length,
    at: Date.now() / 1000,
    source: pdu.source_addr,
    dest: pdu.destination_addr,
    data_coding: pdu.data_coding,
    esm_class: pdu.esm_class,
    registered_delivery: pdu.registered_delivery,
    text: typeof sm.message === 'string' ? sm.message : '',
    part: concatInfo(sm.udh),
    status: ESME_ROK,
    message_id: '',
    duplicate: false,
  };
  submits.push(record);
  if (behaviour.throttle_every && admitted % behaviour.throttle_every === 0) {
    record.status = ESME_RTHROTTLED;
    counters.throttled += 1;
    session.send(pdu.response({ command_status: ESME_RTHROTTLED }));
    return;
  }
  counters.accepted += 1;
  record.message_id = (nextMessage++).toString(16);
  const key = JSON.stringify([record.dest, record.text, record.part && record.part.slice(1)]);
  if (seen.has(key)) {
    record.duplicate = true;
    counters.duplicates += 1;
  }
  seen.add(key);
  session.send(pdu.response({ message_id: record.message_id }));
  if (record.registered_delivery & 0x01) receipt(record);
}

function onBind(session, pdu, kind) {
  session.pause();
  if (args.accounts[pdu.system_id] !== pdu.password) {
    counters.bind_failed += 1;
    session.send(pdu.response({ command_status: ESME_RBINDFAIL }));
    session.close();
    return;
  }
  session.send(pdu.response({ system_id: 'npm-smpp' }));
  session.bound = true;
  session.kind = kind;
  counters.binds += 1;
  session.resume();
  pump();
}

const server = smpp.createServer((session) => {
  counters.connections += 1;
  sessions.add(session);
  session.on('bind_transceiver', (pdu) => onBind(session, pdu, 'transceiver'));
  session.on('bind_transmitter', (pdu) => onBind(session, pdu, 'transmitter'));
  session.on('bind_receiver', (pdu) => onBind(session, pdu, 'receiver'));
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('error', () => {}); // a reset by the peer: 'close' follows
  session.on('close', () => {
    sessions.delete(session);
    for (const d of deliveries) {
      if (d.session === session) d.session = null; // never acknowledged: deliver again
    }
  });
});

// --- control ---------------------------------------------------------------------------

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try {
        resolve(body ? JSON.parse(body) : {});
      } catch (e) {
        reject(e);
      }
    });
  });
}

function publicDelivery(d) {
  const { params, session, ...rest } = d;
  return { ...rest, in_flight: session !== null };
}

const control = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const since = Number(url.searchParams.get('since') || 0);
  const reply = (status, obj) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(obj));
  };
  try {
    if (req.method === 'GET' && url.pathname === '/stats') {
      return reply(200, {
        ...counters,
        bound: receivers().length + [...sessions].filter((s) => s.bound && s.kind === 'transmitter').length,
        pending_deliveries: deliveries.filter((d) => !d.acked).length,
      });
    }
    if (req.method === 'GET' && url.pathname === '/submits') {
      return reply(200, { next: submits.length, submits: submits.slice(since) });
    }
    if (req.method === 'GET' && url.pathname === '/deliveries') {
      return reply(200, { next: deliveries.length, deliveries: deliveries.slice(since).map(publicDelivery) });
    }
    const body = await readJson(req);
    if (req.method === 'POST' && url.pathname === '/behaviour') {
      for (const key of Object.keys(body)) {
        if (!(key in behaviour)) return reply(400, { error: `unknown behaviour ${key}` });
      }
      Object.assign(behaviour, body);
      return reply(200, behaviour);
    }
    if (req.method === 'POST' && url.pathname === '/drop') {
      if (body.after) {
        dropAfter = Number(body.after);
        return reply(200, { dropped: 0 });
      }
      return reply(200, { dropped: dropAll() });
    }
    if (req.method === 'POST' && url.pathname === '/mo') {
      return reply(200, { deliveries: injectMo(body) });
    }
    return reply(404, { error: 'no such endpoint' });
  } catch (e) {
    return reply(400, { error: String(e) });
  }
});

server.listen(args.port, '127.0.0.1', () => {
  control.listen(args.controlPort, '127.0.0.1', () => {
    process.stdout.write(`ready smpp=${server.address().port} control=${control.address().port}\n`);
  });
});

process.on('SIGTERM', () => {
  for (const s of sessions) s.destroy();
  server.close();
  control.close();
  process.exit(0);
});

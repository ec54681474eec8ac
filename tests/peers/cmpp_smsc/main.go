// An SMS center (a China Mobile ISMG) for the gateway's CMPP tests, built on the
// server side of gocmpp, an independent CMPP 2.0/3.0 implementation in Go. The
// gateway's CMPP client is tested against it, so that it is never tested only
// against its own codec.
//
// It is copied into a copy of gocmpp (examples/minyi-smsc) at test time and built
// offline there: GOFLAGS=-mod=vendor GOPROXY=off go build (tests/peers/gocmpp.py).
//
// What it does beyond gocmpp's example server:
//   - checks the SP's login (Source_Addr, the MD5 authenticator) and answers with its
//     own authenticator;
//   - answers every CMPP_SUBMIT with a unique Msg_Id laid out as the spec says (time,
//     gateway code, sequence), or with Result 8 (flow control) every Nth submit;
//   - sends a status report for each accepted submit that asks for one, with a Stat
//     chosen by the destination's last digits (default DELIVRD);
//   - injects MO messages (1 part or several, UCS-2 or GBK, 8- or 16-bit UDH);
//   - keeps every CMPP_DELIVER until its CMPP_DELIVER_RESP and sends it again on a
//     later connection when the link dropped before the answer;
//   - drops the link on request (now, or after the Nth next submit, unanswered);
//   - records every submit and delivery, and reassembles long messages.
//
// Control (HTTP on loopback, JSON):
//
//	GET  /submits?since=N      answered (or dropped) submits from index N
//	GET  /deliveries?since=N   status reports and MO messages with their attempts
//	GET  /messages             the texts as a handset would show them, reassembled
//	GET  /stats                counters
//	POST /behaviour {...}      stat, stat_by_suffix, result8_every, report_delay_ms,
//	                           auto_reply (suffix -> text), auto_reply_delay_ms
//	POST /mo {source, dest, text, encoding: "ucs2"|"gbk", parts, udh16, reverse}
//	POST /drop {after: N}      0: close every connection now
//
// On start it prints one JSON line to stdout: {"cmpp_port": P, "control_port": Q}.
package main

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	cmpp "github.com/bigwhite/gocmpp"
	cmpputils "github.com/bigwhite/gocmpp/utils"
)

type behaviour struct {
	Stat             string            `json:"stat"`
	StatBySuffix     map[string]string `json:"stat_by_suffix"`
	Result8Every     int               `json:"result8_every"`
	ReportDelayMs    int               `json:"report_delay_ms"`
	AutoReply        map[string]string `json:"auto_reply"`
	AutoReplyDelayMs int               `json:"auto_reply_delay_ms"`
}

type submitRec struct {
	Index       int     `json:"index"`
	Dest        string  `json:"dest"`
	SrcId       string  `json:"src_id"`
	ServiceId   string  `json:"service_id"`
	MsgSrc      string  `json:"msg_src"`
	FeeUserType int     `json:"fee_user_type"`
	FeeType     string  `json:"fee_type"`
	FeeCode     string  `json:"fee_code"`
	MsgFmt      int     `json:"msg_fmt"`
	TpUdhi      int     `json:"tp_udhi"`
	PkTotal     int     `json:"pk_total"`
	PkNumber    int     `json:"pk_number"`
	Registered  int     `json:"registered_delivery"`
	ContentHex  string  `json:"content_hex"`
	Text        string  `json:"text"`
	MsgId       string  `json:"msg_id"`
	Status      int     `json:"status"`
	At          float64 `json:"at"`
	Duplicate   bool    `json:"duplicate"`
	Dropped     bool    `json:"dropped"`
	content     []byte
	conn        *cmpp.Conn
}

type delivery struct {
	Id          int     `json:"id"`
	Kind        string  `json:"kind"` // "dlr" or "mo"
	Source      string  `json:"source"`
	Dest        string  `json:"dest"`
	MsgId       string  `json:"msg_id"` // a report's: the submit's Msg_Id
	Stat        string  `json:"stat"`
	Text        string  `json:"text"`
	FirstSentAt float64 `json:"first_sent_at"`
	Attempts    int     `json:"attempts"`
	Acked       bool    `json:"acked"`
	msgId       uint64
	udhi        uint8
	fmt         uint8
	registered  uint8
	content     []byte
	conn        *cmpp.Conn
	seq         uint32
	lastSent    time.Time
}

type smsc struct {
	mu         sync.Mutex
	typ        cmpp.Type
	spId       string
	secret     string
	gateway    uint64
	seq16      uint64
	b          behaviour
	submits    []*submitRec
	deliveries []*delivery
	seen       map[string]bool
	conns      []*cmpp.Conn
	count      int
	accepted   int
	dropAfter  int
	logins     int
	refused    int
	drops      int
}

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// A Msg_Id as CMPP 7.4.3.2 lays it out: month, day, hour, minute, second, the
// ISMG's code (22 bits), a sequence number (16 bits).
func (s *smsc) nextMsgId() uint64 {
	t := time.Now()
	s.seq16 = (s.seq16 + 1) & 0xFFFF
	v := uint64(t.Month())
	v = v<<5 | uint64(t.Day())
	v = v<<5 | uint64(t.Hour())
	v = v<<6 | uint64(t.Minute())
	v = v<<6 | uint64(t.Second())
	v = v<<22 | (s.gateway & 0x3FFFFF)
	return v<<16 | s.seq16
}

func (s *smsc) login(r *cmpp.Response, p *cmpp.Packet, req *cmpp.CmppConnReqPkt) (bool, error) {
	expected := md5.Sum(bytes.Join([][]byte{[]byte(cmpputils.OctetString(s.spId, 6)),
		make([]byte, 9), []byte(s.secret), []byte(cmpputils.TimeStamp2Str(req.Timestamp))}, nil))
	var status uint8
	if req.SrcAddr != cmpputils.OctetString(s.spId, 6) {
		status = cmpp.ErrnoConnInvalidSrcAddr
	} else if req.AuthSrc != string(expected[:]) {
		status = cmpp.ErrnoConnAuthFailed
	}
	switch resp := r.Packer.(type) {
	case *cmpp.Cmpp3ConnRspPkt:
		resp.Status, resp.AuthSrc, resp.Secret, resp.Version = uint32(status), req.AuthSrc, s.secret, cmpp.V30
	case *cmpp.Cmpp2ConnRspPkt:
		resp.Status, resp.AuthSrc, resp.Secret, resp.Version = status, req.AuthSrc, s.secret, cmpp.V20
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if status != 0 {
		s.refused++
		return false, cmpp.ConnRspStatusErrMap[status]
	}
	s.logins++
	p.Conn.SetState(cmpp.CONN_AUTHOK)
	s.conns = append(s.conns, p.Conn)
	return false, nil
}

type submitFields struct {
	seq                    uint32
	pkTotal, pkNumber, reg uint8
	serviceId, msgSrc      string
	feeUserType            uint8
	feeType, feeCode       string
	tpUdhi, msgFmt         uint8
	srcId                  string
	dests                  []string
	content                string
}

func (s *smsc) submit(r *cmpp.Response, p *cmpp.Packet, f submitFields) (bool, error) {
	s.mu.Lock()
	s.count++
	rec := &submitRec{
		Index: len(s.submits), SrcId: f.srcId, ServiceId: f.serviceId, MsgSrc: f.msgSrc,
		FeeUserType: int(f.feeUserType), FeeType: f.feeType, FeeCode: f.feeCode,
		MsgFmt: int(f.msgFmt), TpUdhi: int(f.tpUdhi), PkTotal: int(f.pkTotal),
		PkNumber: int(f.pkNumber), Registered: int(f.reg), At: now(),
		ContentHex: hex.EncodeToString([]byte(f.content)), content: []byte(f.content),
		conn: p.Conn,
	}
	if len(f.dests) > 0 {
		rec.Dest = f.dests[0]
	}
	_, _, _, rec.Text = split(rec.content, f.tpUdhi, f.msgFmt)
	s.submits = append(s.submits, rec)
	var result uint32
	var msgId uint64
	drop := false
	if s.b.Result8Every > 0 && s.count%s.b.Result8Every == 0 {
		result = uint32(cmpp.ErrnoSubmitNotPassFlowControl)
		rec.Status = int(result)
	} else {
		msgId = s.nextMsgId()
		rec.MsgId = strconv.FormatUint(msgId, 10)
		key := rec.Dest + "|" + rec.ContentHex
		rec.Duplicate = s.seen[key]
		s.seen[key] = true
		s.accepted++
		if s.dropAfter > 0 {
			s.dropAfter--
			drop = s.dropAfter == 0
		}
		rec.Dropped = drop
	}
	s.mu.Unlock()
	switch resp := r.Packer.(type) {
	case *cmpp.Cmpp3SubmitRspPkt:
		resp.MsgId, resp.Result = msgId, result
	case *cmpp.Cmpp2SubmitRspPkt:
		resp.MsgId, resp.Result = msgId, uint8(result)
	}
	if result == 0 && f.reg == 1 {
		s.scheduleReport(rec, msgId)
	}
	if drop {
		// Accepted, but the answer never leaves: the SP must send it again (and
		// report it as possibly duplicated).
		s.mu.Lock()
		s.drops++
		s.mu.Unlock()
		p.Conn.Close()
		return false, fmt.Errorf("link dropped on request")
	}
	return false, nil
}

func (s *smsc) statFor(dest string) string {
	longest := ""
	stat := s.b.Stat
	for suffix, st := range s.b.StatBySuffix {
		if strings.HasSuffix(dest, suffix) && len(suffix) > len(longest) {
			longest, stat = suffix, st
		}
	}
	return stat
}

func (s *smsc) scheduleReport(rec *submitRec, msgId uint64) {
	s.mu.Lock()
	stat := s.statFor(rec.Dest)
	delay := time.Duration(s.b.ReportDelayMs) * time.Millisecond
	reply, replyDelay := "", time.Duration(s.b.AutoReplyDelayMs)*time.Millisecond
	if rec.PkNumber <= 1 {
		for suffix, text := range s.b.AutoReply {
			if strings.HasSuffix(rec.Dest, suffix) {
				reply = text
			}
		}
	}
	s.mu.Unlock()
	stamp := time.Now().Format("0601021504")
	var content []byte
	if s.typ == cmpp.V30 {
		// 3.0's layout (7.4.5.1): Dest_terminal_Id is 32 octets, 71 in all.
		w := new(bytes.Buffer)
		binary.Write(w, binary.BigEndian, msgId)
		w.WriteString(pad(stat, 7) + pad(stamp, 10) + pad(stamp, 10) + pad(rec.Dest, 32))
		binary.Write(w, binary.BigEndian, uint32(rec.Index))
		content = w.Bytes()
	} else {
		pkt := &cmpp.CmppReceiptPkt{MsgId: msgId, Stat: stat, SubmitTime: stamp, DoneTime: stamp,
			DestTerminalId: rec.Dest, SmscSequence: uint32(rec.Index)}
		content, _ = pkt.Pack()
	}
	d := &delivery{Kind: "dlr", Source: rec.Dest, Dest: rec.SrcId, MsgId: strconv.FormatUint(msgId, 10),
		Stat: stat, registered: 1, content: content, conn: rec.conn}
	time.AfterFunc(delay, func() {
		s.deliver(d)
		if reply != "" {
			time.AfterFunc(replyDelay, func() { s.injectMo(rec.Dest, rec.SrcId, reply, "ucs2", 1, false, false) })
		}
	})
}

func pad(v string, n int) string {
	if len(v) >= n {
		return v[:n]
	}
	return v + strings.Repeat("\x00", n-len(v))
}

// deliver records a CMPP_DELIVER and sends it on a live connection (the one the
// submit came on when it is still up).
func (s *smsc) deliver(d *delivery) {
	s.mu.Lock()
	d.Id = len(s.deliveries)
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	s.send(d)
}

func (s *smsc) liveConn(prefer *cmpp.Conn) *cmpp.Conn {
	if prefer != nil && prefer.State == cmpp.CONN_AUTHOK {
		return prefer
	}
	for i := len(s.conns) - 1; i >= 0; i-- {
		if s.conns[i].State == cmpp.CONN_AUTHOK {
			return s.conns[i]
		}
	}
	return nil
}

func (s *smsc) send(d *delivery) {
	s.mu.Lock()
	if d.Acked {
		s.mu.Unlock()
		return
	}
	conn := s.liveConn(d.conn)
	if conn == nil {
		s.mu.Unlock()
		return // sent again by the redelivery loop once the SP is back
	}
	d.conn = conn
	d.seq = <-conn.SeqId
	d.Attempts++
	d.lastSent = time.Now()
	if d.FirstSentAt == 0 {
		d.FirstSentAt = now()
	}
	if d.msgId == 0 {
		d.msgId = s.nextMsgId()
	}
	s.mu.Unlock()
	var pkt cmpp.Packer
	if s.typ == cmpp.V30 {
		pkt = &cmpp.Cmpp3DeliverReqPkt{MsgId: d.msgId, DestId: d.Dest, ServiceId: "", TpUdhi: d.udhi,
			MsgFmt: d.fmt, SrcTerminalId: d.Source, RegisterDelivery: d.registered,
			MsgLength: uint8(len(d.content)), MsgContent: string(d.content)}
	} else {
		pkt = &cmpp.Cmpp2DeliverReqPkt{MsgId: d.msgId, DestId: d.Dest, ServiceId: "", TpUdhi: d.udhi,
			MsgFmt: d.fmt, SrcTerminalId: d.Source, RegisterDelivery: d.registered,
			MsgLength: uint8(len(d.content)), MsgContent: string(d.content)}
	}
	conn.SendPkt(pkt, d.seq)
}

func (s *smsc) acked(conn *cmpp.Conn, seq uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.deliveries) - 1; i >= 0; i-- {
		d := s.deliveries[i]
		if d.conn == conn && d.seq == seq && !d.Acked {
			d.Acked = true
			return
		}
	}
}

// redeliver sends again what was not answered: its link dropped, or it waited 5 s.
func (s *smsc) redeliver() {
	for range time.Tick(200 * time.Millisecond) {
		s.mu.Lock()
		var again []*delivery
		for _, d := range s.deliveries {
			if d.Acked {
				continue
			}
			stale := d.conn == nil || d.conn.State != cmpp.CONN_AUTHOK || time.Since(d.lastSent) > 5*time.Second
			if stale {
				again = append(again, d)
			}
		}
		s.mu.Unlock()
		for _, d := range again {
			s.send(d)
		}
	}
}

func encodeText(text, encoding string) ([]byte, uint8) {
	if encoding == "gbk" {
		out, _ := cmpputils.Utf8ToGB18030(text)
		return []byte(out), 15
	}
	out, _ := cmpputils.Utf8ToUcs2(text)
	return []byte(out), 8
}

// injectMo sends a citizen's message, in `parts` parts (or as many as it needs).
func (s *smsc) injectMo(source, dest, text, encoding string, parts int, udh16, reverse bool) []int {
	runes := []rune(text)
	full, fmtCode := encodeText(text, encoding)
	room := 140
	if len(full) > room || parts > 1 {
		room = 134
		if udh16 {
			room = 133
		}
	}
	// Cut the text by characters so that each chunk fits `room` octets, and into at
	// least `parts` chunks.
	var chunks [][]byte
	per := len(runes)
	if parts > 1 {
		per = (len(runes) + parts - 1) / parts
	}
	for start := 0; start < len(runes); {
		end := start + per
		if end > len(runes) {
			end = len(runes)
		}
		for {
			b, _ := encodeText(string(runes[start:end]), encoding)
			if len(b) <= room || end-start <= 1 {
				chunks = append(chunks, b)
				break
			}
			end--
		}
		start = end
	}
	ref := rand.Intn(0xFFFF)
	var out []*delivery
	for i, chunk := range chunks {
		d := &delivery{Kind: "mo", Source: source, Dest: dest, Text: text, fmt: fmtCode}
		if len(chunks) > 1 {
			var udh []byte
			if udh16 {
				udh = []byte{6, 8, 4, byte(ref >> 8), byte(ref), byte(len(chunks)), byte(i + 1)}
			} else {
				udh = []byte{5, 0, 3, byte(ref), byte(len(chunks)), byte(i + 1)}
			}
			d.udhi, d.content = 1, append(udh, chunk...)
		} else {
			d.content = chunk
		}
		out = append(out, d)
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	var ids []int
	for _, d := range out {
		s.deliver(d)
		ids = append(ids, d.Id)
	}
	return ids
}

// split returns where a part belongs (its UDH's reference, "" when it has none; the
// total and its number) and its text.
func split(content []byte, udhi, msgFmt uint8) (string, int, int, string) {
	ref, total, seq := "", 1, 1
	if udhi&1 == 1 && len(content) > 0 && int(content[0])+1 <= len(content) {
		udh := content[1 : int(content[0])+1]
		content = content[int(content[0])+1:]
		for i := 0; i+1 < len(udh); {
			iei, l := udh[i], int(udh[i+1])
			if i+2+l > len(udh) {
				break
			}
			data := udh[i+2 : i+2+l]
			if iei == 0 && l == 3 {
				ref, total, seq = fmt.Sprintf("8-%d", data[0]), int(data[1]), int(data[2])
			} else if iei == 8 && l == 4 {
				ref, total, seq = fmt.Sprintf("16-%d", int(data[0])<<8|int(data[1])), int(data[2]), int(data[3])
			}
			i += 2 + l
		}
	}
	var text string
	switch msgFmt {
	case 8:
		text, _ = cmpputils.Ucs2ToUtf8(string(content))
	case 15:
		text, _ = cmpputils.GB18030ToUtf8(string(content))
	default:
		text = string(content)
	}
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	return ref, total, seq, text
}

type message struct {
	Dest     string `json:"dest"`
	SrcId    string `json:"src_id"`
	Parts    int    `json:"parts"`
	Text     string `json:"text"`
	Complete bool   `json:"complete"`
}

// messages reassembles what each handset would show, from the accepted submits.
func (s *smsc) messages() []message {
	s.mu.Lock()
	defer s.mu.Unlock()
	type group struct {
		m     message
		parts map[int]string
	}
	groups := map[string]*group{}
	var order []string
	for _, rec := range s.submits {
		if rec.Status != 0 {
			continue
		}
		ref, total, seq, text := split(rec.content, uint8(rec.TpUdhi), uint8(rec.MsgFmt))
		if ref == "" {
			ref = "single-" + strconv.Itoa(rec.Index)
		}
		gk := fmt.Sprintf("%s|%s|%d", rec.Dest, ref, total)
		g, ok := groups[gk]
		if !ok {
			g = &group{m: message{Dest: rec.Dest, SrcId: rec.SrcId, Parts: total}, parts: map[int]string{}}
			groups[gk] = g
			order = append(order, gk)
		}
		g.parts[seq] = text
	}
	out := []message{}
	for _, gk := range order {
		g := groups[gk]
		seqs := make([]int, 0, len(g.parts))
		for k := range g.parts {
			seqs = append(seqs, k)
		}
		sort.Ints(seqs)
		var b strings.Builder
		for _, k := range seqs {
			b.WriteString(g.parts[k])
		}
		g.m.Text, g.m.Complete = b.String(), len(g.parts) == g.m.Parts
		out = append(out, g.m)
	}
	return out
}

func (s *smsc) dropNow() int {
	s.mu.Lock()
	var live []*cmpp.Conn
	for _, c := range s.conns {
		if c.State != cmpp.CONN_CLOSED {
			live = append(live, c)
		}
	}
	s.drops += len(live)
	s.mu.Unlock()
	for _, c := range live {
		c.Close()
	}
	return len(live)
}

func (s *smsc) serveCmpp(r *cmpp.Response, p *cmpp.Packet, l *log.Logger) (bool, error) {
	switch req := p.Packer.(type) {
	case *cmpp.CmppConnReqPkt:
		return s.login(r, p, req)
	case *cmpp.Cmpp3SubmitReqPkt:
		return s.submit(r, p, submitFields{req.SeqId, req.PkTotal, req.PkNumber, req.RegisteredDelivery,
			req.ServiceId, req.MsgSrc, req.FeeUserType, req.FeeType, req.FeeCode, req.TpUdhi, req.MsgFmt,
			req.SrcId, req.DestTerminalId, req.MsgContent})
	case *cmpp.Cmpp2SubmitReqPkt:
		return s.submit(r, p, submitFields{req.SeqId, req.PkTotal, req.PkNumber, req.RegisteredDelivery,
			req.ServiceId, req.MsgSrc, req.FeeUserType, req.FeeType, req.FeeCode, req.TpUdhi, req.MsgFmt,
			req.SrcId, req.DestTerminalId, req.MsgContent})
	case *cmpp.Cmpp3DeliverRspPkt:
		s.acked(p.Conn, req.SeqId)
	case *cmpp.Cmpp2DeliverRspPkt:
		s.acked(p.Conn, req.SeqId)
	}
	return false, nil
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func since(r *http.Request) int {
	n, _ := strconv.Atoi(r.URL.Query().Get("since"))
	if n < 0 {
		n = 0
	}
	return n
}

func (s *smsc) control() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/submits", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := since(r)
		out := []*submitRec{}
		for i := n; i < len(s.submits) && i < n+1000; i++ {
			out = append(out, s.submits[i])
		}
		writeJSON(w, map[string]interface{}{"next": n + len(out), "submits": out})
	})
	mux.HandleFunc("/deliveries", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := since(r)
		out := []*delivery{}
		for i := n; i < len(s.deliveries) && i < n+1000; i++ {
			out = append(out, s.deliveries[i])
		}
		writeJSON(w, map[string]interface{}{"next": n + len(out), "deliveries": out})
	})
	mux.HandleFunc("/messages", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]interface{}{"messages": s.messages()})
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		unacked := 0
		for _, d := range s.deliveries {
			if !d.Acked {
				unacked++
			}
		}
		writeJSON(w, map[string]interface{}{"submits": s.count, "accepted": s.accepted,
			"logins": s.logins, "refused_logins": s.refused, "drops": s.drops,
			"deliveries": len(s.deliveries), "unacked": unacked})
	})
	mux.HandleFunc("/behaviour", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method == http.MethodPost {
			if err := json.NewDecoder(r.Body).Decode(&s.b); err != nil && err != io.EOF {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		writeJSON(w, s.b)
	})
	mux.HandleFunc("/mo", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Source, Dest, Text, Encoding string
			Parts                        int
			Udh16, Reverse               bool
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Source == "" || req.Dest == "" {
			http.Error(w, "need source, dest and text", http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]interface{}{"deliveries": s.injectMo(req.Source, req.Dest, req.Text,
			req.Encoding, req.Parts, req.Udh16, req.Reverse)})
	})
	mux.HandleFunc("/drop", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ After int }
		json.NewDecoder(r.Body).Decode(&req)
		if req.After > 0 {
			s.mu.Lock()
			s.dropAfter = req.After
			s.mu.Unlock()
			writeJSON(w, map[string]interface{}{"armed_after": req.After})
			return
		}
		writeJSON(w, map[string]interface{}{"dropped": s.dropNow()})
	})
	return mux
}

func main() {
	version := flag.Int("version", 3, "CMPP version: 2 or 3")
	spId := flag.String("sp-id", "901234", "the SP's code (Source_Addr)")
	secret := flag.String("secret", "s3cret", "the shared secret")
	gateway := flag.Uint64("gateway", 1234, "this ISMG's code, in every Msg_Id")
	activeTest := flag.Duration("active-test", 5*time.Second, "CMPP_ACTIVE_TEST interval")
	verbose := flag.Bool("verbose", false, "gocmpp's per-packet log on stderr")
	flag.Parse()

	s := &smsc{spId: *spId, secret: *secret, gateway: *gateway, seen: map[string]bool{},
		b: behaviour{Stat: "DELIVRD", StatBySuffix: map[string]string{}, AutoReply: map[string]string{}}}
	s.typ = cmpp.V30
	if *version == 2 {
		s.typ = cmpp.V20
	}
	logOut := io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ctl, s.control())
	go s.redeliver()
	srv := &cmpp.Server{Handler: cmpp.HandlerFunc(s.serveCmpp), Typ: s.typ, T: *activeTest, N: 3,
		ErrorLog: log.New(logOut, "cmppserver: ", log.LstdFlags)}
	fmt.Printf("{\"cmpp_port\": %d, \"control_port\": %d}\n",
		ln.Addr().(*net.TCPAddr).Port, ctl.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(srv.Serve(ln))
}

package hmi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// Overview is the operator's line overview: what the live stream sends
// and GET /api/v1/line answers.
type Overview struct {
	Seq        uint64               `json:"seq"` // increases with every update
	At         time.Time            `json:"at"`
	Demo       bool                 `json:"demo"`
	Batch      string               `json:"batch"`
	Line       line.Snapshot        `json:"line"`
	RatePerMin float64              `json:"rate_per_min"` // units triggered, last 60 s
	LastUnits  []Unit               `json:"last_units"`   // newest first
	Alarms     []Alarm              `json:"alarms"`       // newest first
	Pools      []tracecode.PoolStat `json:"pools"`
	Links      []Link               `json:"links"`
	// Ops is the multi-batch line's own overview (without its runner
	// snapshot, which is Line): the batch and its work order, levels,
	// codes left with warnings, purge guide, challenge test, ready for
	// the next batch. Absent with a bare runner.
	Ops *line.Overview `json:"line_overview,omitempty"`
}

// Unit is one of the last units decided.
type Unit struct {
	Item   uint32    `json:"item"`
	Code   string    `json:"code"`
	Pass   bool      `json:"pass"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Alarm is a device alarm as the line raised it, and who acknowledged it.
type Alarm struct {
	ID      string    `json:"id"`
	Device  string    `json:"device"`
	Text    string    `json:"text"`
	Raised  time.Time `json:"raised"`
	Cleared time.Time `json:"cleared,omitzero"`
	AckBy   string    `json:"ack_by,omitempty"`
	AckAt   time.Time `json:"ack_at,omitzero"`
}

// Link is a device's link: up or not, and the age of its last message.
type Link struct {
	Device string  `json:"device"`
	Up     bool    `json:"up"`
	AgeMs  float64 `json:"age_ms"` // -1: unknown
	Fault  string  `json:"fault,omitempty"`
	// State is up, down or unknown (no message yet), when the line says.
	State string `json:"state,omitempty"`
}

// Linker is an optional ability of a Line: each device's link.
type Linker interface{ Links() []Link }

const (
	lastUnits = 20
	maxAlarms = 50
	// coalesce: updates closer together than this reach clients as one.
	coalesce = 50 * time.Millisecond
)

// hub follows the line and fans the overview out to live clients. The
// JSON is encoded once per broadcast, however many clients listen.
type hub struct {
	s *Server

	mu      sync.Mutex
	ov      Overview
	rate    []rateSample
	alarmN  int
	clients map[chan []byte]struct{}
	last    []byte // the latest encoded overview
	poolsAt time.Time
}

type rateSample struct {
	t time.Time
	n uint64
}

func newHub(s *Server) *hub {
	h := &hub{s: s, clients: map[chan []byte]struct{}{}}
	h.ov = Overview{Demo: s.cfg.Demo, Batch: s.cfg.Batch, LastUnits: []Unit{}, Alarms: []Alarm{}, Pools: []tracecode.PoolStat{}, Links: []Link{}}
	h.refresh(context.Background(), s.cfg.Line.Snapshot(), nil)
	return h
}

func (h *hub) run(ctx context.Context) {
	ch, stop := h.s.cfg.Line.Subscribe()
	defer stop()
	var lch <-chan line.Overview // the multi-batch line's own changes
	if lo := h.s.cfg.Overview; lo != nil {
		c, lstop := lo.Subscribe()
		defer lstop()
		lch = c
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := false
	var lastSent time.Time
	tick := time.NewTicker(time.Second) // link ages and the rate move without events
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-ch:
			h.refresh(ctx, u.Snapshot, u.Actions)
			if wait := coalesce - time.Since(lastSent); wait > 0 {
				if !pending {
					pending = true
					timer.Reset(wait)
				}
				continue
			}
			h.broadcast()
			lastSent = time.Now()
		case o := <-lch:
			h.refreshWith(ctx, h.s.cfg.Line.Snapshot(), nil, &o)
			if wait := coalesce - time.Since(lastSent); wait > 0 {
				if !pending {
					pending = true
					timer.Reset(wait)
				}
				continue
			}
			h.broadcast()
			lastSent = time.Now()
		case <-timer.C:
			pending = false
			h.broadcast()
			lastSent = time.Now()
		case <-tick.C:
			h.refresh(ctx, h.s.cfg.Line.Snapshot(), nil)
			h.broadcast()
			lastSent = time.Now()
		}
	}
}

// refresh applies a snapshot and the actions that led to it.
func (h *hub) refresh(ctx context.Context, snap line.Snapshot, acts []line.Action) {
	h.refreshWith(ctx, snap, acts, nil)
}

// refreshWith is refresh with the multi-batch line's overview when the
// caller has it already (nil: read it, if there is a line).
func (h *hub) refreshWith(ctx context.Context, snap line.Snapshot, acts []line.Action, lo *line.Overview) {
	now := h.s.cfg.Now()
	var pools []tracecode.PoolStat
	h.mu.Lock()
	readPools := now.Sub(h.poolsAt) >= time.Second
	h.mu.Unlock()
	if readPools {
		if p, err := h.s.cfg.Store.Pools(ctx); err == nil {
			pools = p
		}
	}
	var links []Link
	if l, ok := h.s.cfg.Line.(Linker); ok {
		links = l.Links()
	}
	if lo == nil && h.s.cfg.Overview != nil {
		o := h.s.cfg.Overview.Snapshot()
		lo = &o
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if lo != nil {
		defer h.fromLine(*lo)
	}
	if readPools {
		h.poolsAt = now
		if pools != nil {
			h.ov.Pools = pools
		}
	}
	h.ov.Seq++
	h.ov.At = now
	h.ov.Line = snap
	for _, a := range acts {
		switch a := a.(type) {
		case line.Verdict:
			u := Unit{Item: a.Item, Code: string(a.Code), Pass: a.Pass, At: a.Received}
			if !a.Pass {
				u.Reason = a.Reason.String()
			}
			h.ov.LastUnits = append([]Unit{u}, h.ov.LastUnits...)
			if len(h.ov.LastUnits) > lastUnits {
				h.ov.LastUnits = h.ov.LastUnits[:lastUnits]
			}
		case line.Alarm:
			h.alarm(a, now)
		}
	}
	// Rate: triggered units over the last 60 s.
	h.rate = append(h.rate, rateSample{now, snap.Counters.Triggered})
	i := 0
	for i < len(h.rate)-1 && now.Sub(h.rate[i].t) > time.Minute {
		i++
	}
	h.rate = h.rate[i:]
	if first := h.rate[0]; now.Sub(first.t) >= time.Second && snap.Counters.Triggered >= first.n {
		h.ov.RatePerMin = float64(snap.Counters.Triggered-first.n) / now.Sub(first.t).Minutes()
	} else if len(h.rate) == 1 {
		h.ov.RatePerMin = 0
	}
	if links == nil {
		links = linksFromFaults(snap)
	}
	h.ov.Links = links
	h.last = nil
}

// fromLine takes what the multi-batch line keeps itself. h.mu is held.
func (h *hub) fromLine(o line.Overview) {
	o.Runner = nil // the same as h.ov.Line
	h.ov.Ops = &o
	if o.Batch != nil {
		h.ov.Batch = o.Batch.ID
	}
	h.ov.RatePerMin = o.RatePerMin
	h.ov.LastUnits = make([]Unit, 0, len(o.Units))
	for _, u := range o.Units {
		h.ov.LastUnits = append(h.ov.LastUnits, Unit{Item: u.Item, Code: string(u.Code), Pass: u.Pass, Reason: u.Reason, At: u.At})
	}
	h.ov.Alarms = make([]Alarm, 0, len(o.Alarms))
	for _, a := range o.Alarms {
		al := Alarm{ID: strconv.FormatUint(a.ID, 10), Device: a.Device, Text: a.Text, Raised: a.Raised, AckBy: a.AckBy}
		if a.ClearedAt != nil {
			al.Cleared = *a.ClearedAt
		}
		if a.AckAt != nil {
			al.AckAt = *a.AckAt
		}
		h.ov.Alarms = append(h.ov.Alarms, al)
	}
	h.ov.Links = make([]Link, 0, len(o.Devices))
	for _, d := range o.Devices {
		h.ov.Links = append(h.ov.Links, Link{Device: d.Name, Up: d.Link == "up", AgeMs: float64(d.AgeMs), Fault: d.Error, State: d.Link})
	}
	h.ov.Pools = make([]tracecode.PoolStat, 0, len(o.Codes))
	for _, c := range o.Codes {
		h.ov.Pools = append(h.ov.Pools, tracecode.PoolStat{Pool: fmt.Sprintf("L%d %s", c.Level, c.Pool), Available: c.Available})
	}
}

// linksFromFaults: without a Linker, each faulted device is shown down.
func linksFromFaults(snap line.Snapshot) []Link {
	links := []Link{}
	for d, f := range snap.Faults {
		links = append(links, Link{Device: d, Up: false, AgeMs: -1, Fault: f})
	}
	slices.SortFunc(links, func(a, b Link) int {
		if a.Device < b.Device {
			return -1
		}
		return 1
	})
	return links
}

// alarm adds a raised alarm or marks the device's open one cleared.
func (h *hub) alarm(a line.Alarm, now time.Time) {
	if a.Clear {
		for i := range h.ov.Alarms {
			if h.ov.Alarms[i].Device == a.Device && h.ov.Alarms[i].Cleared.IsZero() {
				h.ov.Alarms[i].Cleared = now
			}
		}
		return
	}
	h.alarmN++
	al := Alarm{ID: strconv.Itoa(h.alarmN), Device: a.Device, Text: a.Text, Raised: now}
	h.ov.Alarms = append([]Alarm{al}, h.ov.Alarms...)
	if len(h.ov.Alarms) > maxAlarms {
		h.ov.Alarms = h.ov.Alarms[:maxAlarms]
	}
}

// ack records who acknowledged alarm id: through the line when it keeps
// the alarms, else here (journaled as alarm.ack).
func (h *hub) ack(ctx context.Context, id string, u accounts.User) (Alarm, error) {
	if lo := h.s.cfg.Overview; lo != nil {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return Alarm{}, fail(404, "not_found", "alarm "+id)
		}
		// A second acknowledgement (two operators tapping the same alarm)
		// answers with the alarm as it stands: who acknowledged it, when.
		// Nothing more is journaled.
		if err := lo.AcknowledgeAlarm(ctx, n, u.ID); err != nil && !errors.Is(err, line.ErrAcknowledged) {
			if errors.Is(err, line.ErrNoAlarm) {
				return Alarm{}, fail(404, "not_found", "alarm "+id)
			}
			return Alarm{}, err
		}
		h.refresh(ctx, h.s.cfg.Line.Snapshot(), nil)
		h.broadcast()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, a := range h.ov.Alarms {
			if a.ID == id {
				return a, nil
			}
		}
		return Alarm{}, fail(404, "not_found", "alarm "+id)
	}
	h.mu.Lock()
	idx := slices.IndexFunc(h.ov.Alarms, func(a Alarm) bool { return a.ID == id })
	if idx < 0 {
		h.mu.Unlock()
		return Alarm{}, fail(404, "not_found", "alarm "+id)
	}
	if h.ov.Alarms[idx].AckBy != "" {
		a := h.ov.Alarms[idx]
		h.mu.Unlock()
		return a, nil
	}
	a := h.ov.Alarms[idx]
	h.mu.Unlock()
	b, _ := json.Marshal(map[string]string{"alarm": a.ID, "device": a.Device, "text": a.Text})
	if err := h.s.cfg.Journal.Record(ctx, accounts.Entry{Type: "alarm.ack", Value: string(b)}, u.ID); err != nil {
		return Alarm{}, err
	}
	h.mu.Lock()
	if idx = slices.IndexFunc(h.ov.Alarms, func(a Alarm) bool { return a.ID == id }); idx >= 0 {
		h.ov.Alarms[idx].AckBy, h.ov.Alarms[idx].AckAt = u.ID, h.s.cfg.Now()
		a = h.ov.Alarms[idx]
	}
	h.ov.Seq++
	h.last = nil
	h.mu.Unlock()
	h.broadcast()
	return a, nil
}

// current returns the overview's JSON.
func (h *hub) current() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.encodeLocked()
}

func (h *hub) encodeLocked() []byte {
	if h.last == nil {
		b, err := json.Marshal(h.ov)
		if err != nil {
			h.s.log.Error("hmi: encoding the overview", "err", err)
			return []byte("{}")
		}
		h.last = b
	}
	return h.last
}

// broadcast sends the latest overview to every client; a client that has
// not taken the previous one gets this one instead (never blocks).
func (h *hub) broadcast() {
	h.mu.Lock()
	b := h.encodeLocked()
	for ch := range h.clients {
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- b:
		default:
		}
	}
	h.mu.Unlock()
}

func (h *hub) join() (chan []byte, func()) {
	ch := make(chan []byte, 1)
	h.mu.Lock()
	h.clients[ch] = struct{}{}
	ch <- h.encodeLocked()
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.clients, ch)
		h.mu.Unlock()
	}
}

// Clients is the number of live clients connected.
func (s *Server) Clients() int {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	return len(s.live.clients)
}

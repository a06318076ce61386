package line

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/aggregation"
)

// The line journals in the ledger (records: they change no code) every
// operator command, accepted or refused with the refusal, and every alarm
// raised, cleared and acknowledged — who and when — in the batch's audit
// trail when there is a batch.

// recordFunc journals one record durably.
type recordFunc func(ctx context.Context, typ, batch, value string, by aggregation.Actor) error

// journal records v (as JSON) under type typ; user "" is the line itself.
// A journal that fails is logged: the command or alarm it records has
// happened already.
func (l *Line) journal(ctx context.Context, typ, batch string, v any, user string) {
	by := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "line"}
	if user != "" {
		by = aggregation.Actor{Kind: aggregation.ActorUser, ID: user}
	}
	b, err := json.Marshal(v)
	if err != nil {
		l.log.Error("journal: encoding record", "type", typ, "err", err)
		return
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.IOTimeout)
	defer cancel()
	if err := l.rec(c, typ, batch, string(b), by); err != nil {
		l.log.Error("journal record", "type", typ, "batch", batch, "err", err)
	}
}

// CommandRecord is the value of a "command" record.
type CommandRecord struct {
	Command  string `json:"command"`
	Args     any    `json:"args,omitempty"`
	Accepted bool   `json:"accepted"`
	Refusal  string `json:"refusal,omitempty"`
}

func (l *Line) journalCommand(ctx context.Context, batch, cmd string, args any, user string, err error) {
	rec := CommandRecord{Command: cmd, Args: args, Accepted: err == nil}
	if err != nil {
		rec.Refusal = err.Error()
	}
	l.journal(ctx, "command", batch, rec, user)
}

// AlarmView is one alarm as the overview shows it.
type AlarmView struct {
	ID     uint64    `json:"id"`
	Device string    `json:"device"`
	Text   string    `json:"text"`
	Batch  string    `json:"batch,omitempty"`
	Raised time.Time `json:"raised"`
	// Active: a condition that holds (a device fault) and has not cleared;
	// an alarm that is a message only is never active, it is acknowledged.
	Active    bool       `json:"active"`
	ClearedAt *time.Time `json:"cleared_at,omitempty"`
	AckBy     string     `json:"ack_by,omitempty"`
	AckAt     *time.Time `json:"ack_at,omitempty"`
}

// ErrNoUser: an operation of a person named none. The HMI fills the user
// from the session; an empty one is a wiring bug, refused before anything.
var ErrNoUser = errors.New("no user named")

func needUser(what, user string) error {
	if strings.TrimSpace(user) == "" {
		return fmt.Errorf("%s: %w", what, ErrNoUser)
	}
	return nil
}

// ErrNoAlarm: no alarm has that id (or it is too old to be kept).
var ErrNoAlarm = errors.New("no such alarm")

// ErrAcknowledged: the alarm was acknowledged already.
var ErrAcknowledged = errors.New("alarm already acknowledged")

// alarmKeep bounds the alarms kept (the ledger keeps them all).
const alarmKeep = 200

type alarmBook struct {
	mu   sync.Mutex
	list []AlarmView // oldest first
	next uint64
}

// raise adds an alarm, unless the same is active already; it returns the
// alarm's id and whether it is new.
func (b *alarmBook) raise(device, text, batch string, at time.Time, active bool) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.list {
		if a := &b.list[i]; a.Device == device && a.Text == text && a.AckAt == nil && (a.Active || !active) {
			return a.ID, false
		}
	}
	b.next++
	b.list = append(b.list, AlarmView{ID: b.next, Device: device, Text: text, Batch: batch, Raised: at, Active: active})
	if len(b.list) > alarmKeep {
		b.list = append(b.list[:0:0], b.list[len(b.list)-alarmKeep:]...)
	}
	return b.next, true
}

// clear marks every active alarm of device cleared; it returns their ids.
func (b *alarmBook) clear(device string, at time.Time) []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []uint64
	for i := range b.list {
		if a := &b.list[i]; a.Active && a.Device == device {
			a.Active = false
			t := at
			a.ClearedAt = &t
			ids = append(ids, a.ID)
		}
	}
	return ids
}

func (b *alarmBook) ack(id uint64, user string, at time.Time) (AlarmView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.list {
		a := &b.list[i]
		if a.ID != id {
			continue
		}
		if a.AckAt != nil {
			return *a, fmt.Errorf("alarm %d: acknowledged by %s at %s: %w", id, a.AckBy, a.AckAt.Format(time.RFC3339), ErrAcknowledged)
		}
		t := at
		a.AckBy, a.AckAt = user, &t
		return *a, nil
	}
	return AlarmView{}, fmt.Errorf("alarm %d: %w", id, ErrNoAlarm)
}

// view lists the alarms that need attention (active or not acknowledged),
// then the most recent others, newest first, at most 50.
func (b *alarmBook) view() []AlarmView {
	b.mu.Lock()
	defer b.mu.Unlock()
	var open, done []AlarmView
	for i := len(b.list) - 1; i >= 0; i-- {
		a := b.list[i]
		if a.Active || a.AckAt == nil {
			open = append(open, a)
		} else if len(done) < 20 {
			done = append(done, a)
		}
	}
	out := append(open, done...)
	if len(out) > 50 {
		out = out[:50]
	}
	return out
}

// raiseAlarm records an alarm raised (journaled if new). active: a
// condition that holds until it clears (a device fault); otherwise a
// message to acknowledge.
func (l *Line) raiseAlarm(ctx context.Context, device, text, batch string, active bool) {
	id, isNew := l.alarms.raise(device, text, batch, time.Now(), active)
	if isNew {
		l.journal(ctx, "alarm", batch, map[string]any{"id": id, "device": device, "text": text}, "")
		l.subs.notify()
	}
}

// clearAlarm records a device's alarms cleared (journaled).
func (l *Line) clearAlarm(ctx context.Context, device, batch string) {
	for _, id := range l.alarms.clear(device, time.Now()) {
		l.journal(ctx, "alarm", batch, map[string]any{"id": id, "device": device, "cleared": true}, "")
	}
	l.subs.notify()
}

// collectAlarms records a runner's alarms until stop, then what is left.
func (l *Line) collectAlarms(run *batchRun, stop <-chan struct{}) {
	ctx := context.Background()
	handle := func(a Alarm) {
		if a.Clear {
			l.clearAlarm(ctx, a.Device, run.spec.ID)
		} else {
			// A fault (the line holds it until the device answers) is
			// active; any other alarm is a message to acknowledge. The
			// runner's snapshot is as new as the step that raised it.
			_, fault := run.r.Snapshot().Faults[a.Device]
			l.raiseAlarm(ctx, a.Device, a.Text, run.spec.ID, fault)
		}
	}
	for {
		select {
		case a := <-run.r.alarms:
			handle(a)
		case <-stop:
			for {
				select {
				case a := <-run.r.alarms:
					handle(a)
				default:
					return
				}
			}
		}
	}
}

// AcknowledgeAlarm records that user saw alarm id (journaled "alarm.ack"
// with who and when). It does not clear the condition: a device fault
// clears when the device answers; a reject-gate or labeller fault needs
// the line's acknowledge command (CmdAck) once the units are retrieved.
func (l *Line) AcknowledgeAlarm(ctx context.Context, id uint64, user string) error {
	if err := needUser("acknowledge alarm", user); err != nil {
		return err
	}
	a, err := l.alarms.ack(id, user, time.Now())
	if err != nil {
		return err
	}
	l.journal(ctx, "alarm.ack", a.Batch, map[string]any{"id": id, "device": a.Device, "text": a.Text}, user)
	l.subs.notify()
	return nil
}

// Alarms lists the alarms that need attention, then recent others.
func (l *Line) Alarms() []AlarmView { return l.alarms.view() }

// reloadAlarms puts back the alarms of batch that an earlier process raised
// and nobody acknowledged (the batch's release waits for them), from the
// batch's audit trail. Their conditions are not active any more: the
// devices are connected anew.
func (l *Line) reloadAlarms(ctx context.Context, batch string) error {
	type rec struct {
		ID      json.Number `json:"id"`
		Device  string      `json:"device"`
		Text    string      `json:"text"`
		Cleared bool        `json:"cleared"`
	}
	var open []AlarmView
	idx := map[string]int{}
	err := l.store.Trail(ctx, batch, func(ev aggregation.Event) error {
		if ev.Kind != aggregation.EvRecord || (ev.Reason != "alarm" && ev.Reason != "alarm.ack") {
			return nil
		}
		var r rec
		if json.Unmarshal([]byte(ev.Answer), &r) != nil || r.ID == "" {
			return nil // not one of the line's own
		}
		id, err := strconv.ParseUint(string(r.ID), 10, 64)
		if err != nil {
			return nil
		}
		switch {
		case ev.Reason == "alarm" && !r.Cleared:
			idx[r.ID.String()] = len(open)
			open = append(open, AlarmView{ID: id, Device: r.Device, Text: r.Text, Batch: batch, Raised: ev.At})
		case ev.Reason == "alarm" && r.Cleared:
			if i, ok := idx[r.ID.String()]; ok {
				t := ev.At
				open[i].ClearedAt = &t
			}
		default: // alarm.ack
			if i, ok := idx[r.ID.String()]; ok {
				t := ev.At
				open[i].AckBy, open[i].AckAt = ev.Actor.ID, &t
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.alarms.mu.Lock()
	defer l.alarms.mu.Unlock()
	for _, a := range open {
		if a.AckAt == nil {
			l.alarms.list = append(l.alarms.list, a)
		}
	}
	if len(l.alarms.list) > alarmKeep {
		l.alarms.list = append(l.alarms.list[:0:0], l.alarms.list[len(l.alarms.list)-alarmKeep:]...)
	}
	return nil
}

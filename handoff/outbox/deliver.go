package outbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tracline/tracline/internal/killpoint"
)

// Run delivers until ctx ends: it steps whenever something is due, when
// Kick is called (a new document, a resend) and at least every minute.
// Stopping it mid-exchange loses nothing: a send whose answer was not
// journaled is sent again, with the same idempotency key, by the next Run.
func (o *Outbox) Run(ctx context.Context) error {
	for {
		next, err := o.Step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := time.Minute
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(o.clock.Now()), 0))
		}
		if err != nil { // the ledger or a file: not too often
			o.log.Error("outbox step", "err", err)
			wait = max(wait, 5*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-o.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// Step does what is due now: sends, status questions, telling the ledger
// about delivered documents. Endpoints are served in parallel, each one's
// work in turn. It returns when the next thing is due (zero if nothing is
// waiting) and the first error it met (the others are retried too).
func (o *Outbox) Step(ctx context.Context) (time.Time, error) {
	o.stepMu.Lock()
	defer o.stepMu.Unlock()
	docs, err := o.List(ctx, "")
	if err != nil {
		return time.Time{}, err
	}
	now := o.clock.Now()
	type work struct {
		id string
		i  int
	}
	byEP := map[string][]work{}
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, d := range docs {
		if d.Replaces != "" {
			keep(o.repair(ctx, d))
		}
		if d.State == Superseded {
			continue
		}
		if d.State == Delivered && !d.HandedOff {
			keep(o.handOffNow(ctx, d.ID))
		}
		for i, dl := range d.Deliveries {
			if dl.State != Pending && dl.State != Sending && dl.State != Processing {
				continue
			}
			if _, ok := o.eps[dl.Endpoint]; !ok {
				o.log.Warn("outbox: a document's endpoint is no longer configured", "doc", d.ID, "endpoint", dl.Endpoint)
				continue
			}
			if !dl.NextAt.After(now) {
				byEP[dl.Endpoint] = append(byEP[dl.Endpoint], work{d.ID, i})
			}
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, ws := range byEP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, w := range ws {
				if ctx.Err() != nil {
					return
				}
				if err := o.deliver(ctx, w.id, w.i, o.eps[name]); err != nil {
					mu.Lock()
					keep(err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	next, err := o.nextDue(ctx)
	keep(err)
	return next, first
}

// nextDue is the earliest NextAt of a delivery still under way.
func (o *Outbox) nextDue(ctx context.Context) (time.Time, error) {
	docs, err := o.List(ctx, "")
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	for _, d := range docs {
		if d.State == Superseded {
			continue
		}
		if d.State == Delivered && !d.HandedOff {
			return o.clock.Now(), nil
		}
		for _, dl := range d.Deliveries {
			if dl.State != Pending && dl.State != Sending && dl.State != Processing {
				continue
			}
			if _, ok := o.eps[dl.Endpoint]; ok && (next.IsZero() || dl.NextAt.Before(next)) {
				next = dl.NextAt
			}
		}
	}
	return next, nil
}

// repair finishes a replacement a crash interrupted (the new version was
// journaled, the old one not yet marked).
func (o *Outbox) repair(ctx context.Context, d Document) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.supersede(ctx, d.Replaces, d.ID, system)
}

// deliver makes one exchange for delivery i of document id: a send or a
// status question, journaling before (a send) and after (its answer).
func (o *Outbox) deliver(ctx context.Context, id string, i int, ep Endpoint) error {
	o.mu.Lock()
	d, err := o.get(ctx, id)
	if err != nil {
		o.mu.Unlock()
		return err
	}
	now := o.clock.Now()
	if i >= len(d.Deliveries) || d.ReplacedBy != "" || d.Deliveries[i].NextAt.After(now) {
		o.mu.Unlock()
		return nil
	}
	dl := &d.Deliveries[i]
	ad := o.adapters[ep.Kind]
	switch dl.State {
	case Pending, Sending:
		outcome := "begun"
		if dl.State == Sending {
			outcome = "begun (again: the previous send's answer was never journaled)"
		}
		dl.Sends++
		if dl.Sends == 1 || dl.Since.IsZero() {
			dl.Since = now
		}
		dl.State = Sending
		d.Last = &Attempt{Endpoint: ep.Name, Op: "send", N: dl.Sends, At: now, Outcome: outcome}
		err := o.save(ctx, &d, recAttempt, system)
		o.mu.Unlock()
		if err != nil {
			return err
		}
		ans, err := o.send(ctx, ad, ep, d)
		if ctx.Err() != nil {
			return nil // stopped: the send stays journaled as begun and is made again
		}
		if err == nil && ans.Outcome == Accepted {
			killpoint.Hit(killpoint.HandoffAccepted) // crash campaign only (inert unless armed)
		}
		return o.answer(ctx, id, i, ep, "send", ans, err)
	case Processing:
		job := dl.Job
		o.mu.Unlock()
		ans, err := ad.Poll(ctx, ep, job)
		if ctx.Err() != nil {
			return nil
		}
		return o.answer(ctx, id, i, ep, "poll", ans, err)
	default:
		o.mu.Unlock()
		return nil
	}
}

// send opens the document's file, checks it is what was journaled, and
// hands it to the adapter.
func (o *Outbox) send(ctx context.Context, ad Adapter, ep Endpoint, d Document) (Answer, error) {
	f, err := os.Open(filepath.Join(o.cfg.Dir, d.File))
	if err != nil {
		return Answer{}, &Error{Permanent: true, Msg: fmt.Sprintf("the document's file: %v", err)}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Answer{}, &Error{Msg: fmt.Sprintf("reading the document's file: %v", err)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.SHA256 {
		return Answer{}, &Error{Permanent: true, Msg: fmt.Sprintf("the document's file %s changed on disk: SHA-256 %s, journaled %s", d.File, got, d.SHA256)}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Answer{}, &Error{Msg: fmt.Sprintf("reading the document's file: %v", err)}
	}
	return ad.Send(ctx, ep, d, io.LimitReader(f, d.Size))
}

// answer journals an exchange's answer and what it does to the delivery.
func (o *Outbox) answer(ctx context.Context, id string, i int, ep Endpoint, op string, ans Answer, xerr error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	d, err := o.get(ctx, id)
	if err != nil {
		return err
	}
	now := o.clock.Now()
	dl := &d.Deliveries[i]
	n := dl.Sends
	if op == "poll" {
		dl.Polls++
		n = dl.Polls
	}
	a := &Attempt{Endpoint: ep.Name, Op: op, N: n, At: now, Status: ans.Status, Answer: cut(ans.Text, 512)}
	if ans.Status == 0 && xerr != nil {
		a.Status = statusOf(xerr)
	}
	fail := func(msg string) {
		dl.State, dl.Done, dl.Error, dl.NextAt = Failed, now, msg, time.Time{}
	}
	switch {
	case xerr != nil && permanent(xerr):
		a.Outcome, a.Error = "refused", xerr.Error()
		fail(xerr.Error())
	case xerr != nil && op == "send":
		a.Outcome, a.Error = "error", xerr.Error()
		if ep.MaxSends > 0 && dl.Sends >= ep.MaxSends {
			a.Outcome = "gave-up"
			fail(fmt.Sprintf("gave up after %d sends; the last: %s", dl.Sends, xerr))
		} else if took := now.Sub(dl.Since); took >= ep.RetryFor {
			a.Outcome = "gave-up"
			fail(fmt.Sprintf("gave up after %d sends over %v (retry_for %v); the last: %s", dl.Sends, took.Round(time.Second), ep.RetryFor, xerr))
		} else {
			wait := max(o.delay(ep.BackoffMin, ep.BackoffMax, dl.Sends), min(retryAfter(xerr), ep.BackoffMax))
			dl.State, dl.Error, dl.NextAt = Pending, xerr.Error(), now.Add(wait)
		}
	case xerr != nil: // a status question went wrong
		dl.PollErrors++
		a.Outcome, a.Error = "error", xerr.Error()
		if ep.MaxSends > 0 && dl.PollErrors >= ep.MaxSends {
			a.Outcome = "gave-up"
			fail(fmt.Sprintf("gave up after %d status questions in a row went wrong; the last: %s", dl.PollErrors, xerr))
		} else if now.Sub(dl.Accepted) > ep.PollFor {
			a.Outcome = "gave-up"
			fail(fmt.Sprintf("no final answer within %v of the receiver's acceptance; the last status question: %s", ep.PollFor, xerr))
		} else {
			wait := max(o.delay(ep.BackoffMin, ep.BackoffMax, dl.PollErrors), min(retryAfter(xerr), ep.BackoffMax))
			dl.Error, dl.NextAt = xerr.Error(), now.Add(wait)
		}
	default:
		a.Outcome, a.Job = string(ans.Outcome), ans.Job
		dl.PollErrors, dl.Error = 0, ""
		if ans.Text != "" {
			dl.Answer = cut(ans.Text, 1024)
		}
		switch ans.Outcome {
		case Accepted, StillPending:
			if dl.State != Processing {
				dl.State, dl.Job, dl.Accepted, dl.Polls = Processing, ans.Job, now, 0
			}
			if now.Sub(dl.Accepted) > ep.PollFor {
				a.Outcome = "gave-up"
				fail(fmt.Sprintf("no final answer within %v of the receiver's acceptance", ep.PollFor))
			} else {
				dl.NextAt = now.Add(o.delay(ep.PollMin, ep.PollMax, dl.Polls+1))
			}
		case Success:
			dl.State, dl.Done, dl.NextAt = Delivered, now, time.Time{}
		case Rejected:
			dl.Errors = nil
			for _, e := range ans.Errors {
				if len(dl.Errors) == 50 {
					dl.Errors = append(dl.Errors, fmt.Sprintf("… %d errors in all", len(ans.Errors)))
					break
				}
				dl.Errors = append(dl.Errors, cut(e, 300))
			}
			a.Error = cut(strings.Join(dl.Errors, "; "), 512)
			fail("the receiver failed the document: " + cut(ans.Text, 300))
		case Lost:
			dl.State, dl.Job, dl.NextAt, dl.Error = Pending, "", now, ans.Text+"; sending again with the same idempotency key"
		default:
			a.Outcome, a.Error = "error", fmt.Sprintf("the adapter answered %q", ans.Outcome)
			dl.Error, dl.NextAt = a.Error, now.Add(o.delay(ep.BackoffMin, ep.BackoffMax, 1))
		}
	}
	d.Last = a
	if err := o.save(ctx, &d, recAnswer, system); err != nil {
		return err
	}
	if d.State == Delivered && !d.HandedOff {
		killpoint.Hit(killpoint.HandoffDelivered) // crash campaign only (inert unless armed)
		return o.handOff(ctx, &d)
	}
	return nil
}

// delay is base·2^(n-1), at most ceil, with jitter: between half and all of it.
func (o *Outbox) delay(base, ceil time.Duration, n int) time.Duration {
	d := base
	for k := 1; k < n && d < ceil; k++ {
		d *= 2
	}
	d = min(d, ceil)
	return d/2 + time.Duration(o.jitter()*float64(d/2))
}

func (o *Outbox) handOffNow(ctx context.Context, id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	d, err := o.get(ctx, id)
	if err != nil || d.State != Delivered || d.HandedOff {
		return err
	}
	return o.handOff(ctx, &d)
}

// handOff tells the ledger a document was delivered everywhere (an
// idempotent event), then journals that it did. Called with o.mu held.
func (o *Outbox) handOff(ctx context.Context, d *Document) error {
	var b bytes.Buffer
	for k, dl := range d.Deliveries {
		if k > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%s): %s", dl.Endpoint, dl.Kind, dl.Answer)
	}
	if err := o.led.HandedOff(ctx, d.Batch, d.ID, cut(b.String(), 1024), system); err != nil {
		return fmt.Errorf("outbox: document %s delivered, telling the ledger: %w", d.ID, err)
	}
	d.HandedOff = true
	d.Last = &Attempt{Op: "handed-off", At: o.clock.Now(), Outcome: "the ledger was told"}
	return o.save(ctx, d, recHandedOff, system)
}

package campaign

// QA and the operator at the HMI's /api/v1, as the crash campaign's release
// and hand-off drive them: the next step on the batch as its record shows
// it, and what a blocked release asks of them.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/release"
	"github.com/tracline/tracline/hmi"
	"github.com/tracline/tracline/internal/campaign/lineproc"
)

// qaDesk is QA and the operator at the HMI, logged in anew for each
// controller process.
type qaDesk struct {
	l      *lineproc.Line
	run    int
	qa, op *lineproc.QA
}

func (d *qaDesk) login(ctx context.Context) error {
	if d.qa != nil && d.run == d.l.CtlRuns {
		return nil
	}
	if err := d.l.SetUpAccounts(ctx); err != nil {
		return err
	}
	var err error
	if d.qa, err = d.l.Login(ctx, lineproc.QAUser); err != nil {
		return err
	}
	if d.op, err = d.l.Login(ctx, lineproc.OpUser); err != nil {
		return err
	}
	d.run = d.l.CtlRuns
	return nil
}

// record is the batch's record and documents as QA's screen shows them.
func (d *qaDesk) record(ctx context.Context) (hmi.RecordDoc, error) {
	var doc hmi.RecordDoc
	if err := d.login(ctx); err != nil {
		return doc, err
	}
	err := d.qa.Do(ctx, http.MethodGet, "/api/v1/qa/batches/"+d.l.Batch, nil, &doc)
	return doc, err
}

// handoffDone: every document of the batch delivered and handed off.
func handoffDone(doc hmi.RecordDoc, formats int) bool {
	if len(doc.Documents) < formats {
		return false
	}
	for _, dd := range doc.Documents {
		if dd.State == outbox.Superseded {
			continue
		}
		if dd.State != outbox.Delivered || !dd.HandedOff {
			return false
		}
	}
	return true
}

// step does QA's next step on the batch, as its record shows it: the
// operator acknowledges the batch's alarms, QA verifies the ledger when no
// verify covers it, signs the release, activates, hands off (again, when
// documents are missing), sends failed deliveries again. It returns the
// record it acted on and whether the hand-off is done.
func (d *qaDesk) step(ctx context.Context, formats int) (hmi.RecordDoc, bool, error) {
	doc, err := d.record(ctx)
	if err != nil {
		return doc, false, err
	}
	rec := doc.Record
	switch rec.State {
	case aggregation.BatchComplete:
		if !rec.Releasable() {
			if err := d.unblock(ctx, rec); err != nil {
				return doc, false, err
			}
			if doc, err = d.record(ctx); err != nil {
				return doc, false, err
			}
			rec = doc.Record
			if !rec.Releasable() {
				return doc, false, fmt.Errorf("the batch record is not releasable: %s", blockers(rec))
			}
		}
		var out hmi.ReleaseDoc
		err := d.qa.Do(ctx, http.MethodPost, "/api/v1/qa/batches/"+d.l.Batch+"/sign",
			hmi.SignReq{Password: lineproc.Password, Meaning: "released", Comment: "crash campaign: released after review", Hash: rec.Hash}, &out)
		return out.RecordDoc, false, err
	case aggregation.BatchReleased:
		var out hmi.ReleaseDoc
		err := d.qa.Do(ctx, http.MethodPost, "/api/v1/qa/batches/"+d.l.Batch+"/activate", hmi.ActivateReq{Password: lineproc.Password}, &out)
		if err == nil && out.HandOffError != "" {
			err = errors.New("activated, the hand-off failed: " + out.HandOffError)
		}
		return out.RecordDoc, false, err
	case aggregation.BatchActive, aggregation.BatchHandedOff:
		if handoffDone(doc, formats) {
			return doc, true, nil
		}
		if len(doc.Documents) < formats {
			var out hmi.ReleaseDoc
			err := d.qa.Do(ctx, http.MethodPost, "/api/v1/qa/batches/"+d.l.Batch+"/handoff", nil, &out)
			return out.RecordDoc, false, err
		}
		return doc, false, nil
	default:
		return doc, false, fmt.Errorf("the batch is %s", rec.State)
	}
}

// resendFailed sends every failed delivery again (after the receivers
// came back); how many documents.
func (d *qaDesk) resendFailed(ctx context.Context) (int, error) {
	doc, err := d.record(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, dd := range doc.Documents {
		if dd.State != outbox.Failed {
			continue
		}
		if err := d.qa.Do(ctx, http.MethodPost, "/api/v1/qa/documents/"+dd.ID+"/resend", nil, nil); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// unblock does what the operator and QA do about a blocked release: the
// operator acknowledges the line's open alarms, QA runs the ledger verify.
func (d *qaDesk) unblock(ctx context.Context, rec *release.Record) error {
	for _, r := range rec.Rules {
		if r.Status == release.RuleOK {
			continue
		}
		switch r.ID {
		case release.RuleAlarms:
			var ld hmi.LineDoc
			if err := d.op.Do(ctx, http.MethodGet, "/api/v1/line", nil, &ld); err != nil {
				return err
			}
			for _, a := range ld.Alarms {
				if a.AckBy != "" {
					continue
				}
				if err := d.op.Do(ctx, http.MethodPost, "/api/v1/line/alarms/"+a.ID+"/ack", nil, nil); err != nil {
					return fmt.Errorf("acknowledging alarm %s (%s: %s): %w", a.ID, a.Device, a.Text, err)
				}
			}
		case release.RuleVerify:
			var run release.VerifyRun
			if err := d.qa.Do(ctx, http.MethodPost, "/api/v1/qa/verify", nil, &run); err != nil {
				return err
			}
			if !run.OK {
				return fmt.Errorf("the ledger verify failed: %d problems, first %v", run.Problems, run.First)
			}
		}
	}
	return nil
}

func blockers(rec *release.Record) string {
	var b []string
	for _, r := range rec.Rules {
		if r.Status != release.RuleOK {
			s := r.ID + ": " + r.Detail
			if len(r.Items) > 0 {
				s += " (" + strings.Join(r.Items, "; ") + ")"
			}
			b = append(b, s)
		}
	}
	return strings.Join(b, " | ")
}

// landed is where the batch stands, in a few words.
func landed(doc hmi.RecordDoc) string {
	if doc.Record == nil {
		return "?"
	}
	s := doc.Record.State.String()
	if len(doc.Documents) > 0 {
		n := map[string]int{}
		for _, dd := range doc.Documents {
			st := string(dd.State)
			if dd.HandedOff {
				st += "+handed-off"
			}
			n[st]++
		}
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
		}
		s += ", documents: " + strings.Join(parts, ", ")
	}
	return s
}

// handoffFormats is how many documents a batch owes the campaign's
// receivers: msfx-xml (platform), epcis-json and epcis-xml (capture).
const handoffFormats = 3

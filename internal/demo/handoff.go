package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/receiver"
)

// HandoffService is QA's release and the hand-off as the controller wires
// them (cmd/linectl), for a headless run to go on after its batch.
type HandoffService interface {
	// Release verifies the ledger, signs the batch released as the demo's
	// QA user and activates it.
	Release(ctx context.Context, batch string) error
	// Deliver puts the batch's documents into the outbox and delivers them
	// until each is delivered or has failed.
	Deliver(ctx context.Context, batch string) ([]outbox.Document, error)
}

// HandoffWire builds the hand-off on the demo's ledger and data directory,
// its endpoints the demo's stand-in receivers (Setup).
type HandoffWire func(ctx context.Context, store *aggregation.Store, s *Setup, dir string, log *slog.Logger) (HandoffService, error)

// HandoffReport is the hand-off after a headless batch: each document's
// delivery and what the stand-in receivers found in it, checked against the
// simulator's ground truth (every good unit's code and every applied label
// must be in every document).
type HandoffReport struct {
	OK        bool                        `json:"ok"`
	Problems  []string                    `json:"problems"`
	Expected  int                         `json:"expected_codes"` // from the ground truth
	Documents []HandoffDocument           `json:"documents"`
	Receivers map[string]receiver.Summary `json:"receivers"`
}

// HandoffDocument is one document's fate.
type HandoffDocument struct {
	ID     string `json:"id"`
	Format string `json:"format"`
	Bytes  int64  `json:"bytes"`
	State  string `json:"state"`
	Answer string `json:"answer"` // the receiver's last answer, per endpoint
}

// truthCodes are the codes the network must get for a batch: every good
// unit's code and the label of every group the line finished.
func truthCodes(gt sim.GroundTruth) []string {
	var out []string
	for _, u := range gt.Units {
		if u.Fate == sim.FateGood && u.Code != "" {
			out = append(out, u.Code)
		}
	}
	for _, g := range gt.Groups {
		if g.Label != "" && g.State == "done" {
			out = append(out, g.Label)
		}
	}
	return out
}

// handoff releases the batch, hands it off and checks what the receivers
// got against the ground truth.
func (d *Line) handoff(ctx context.Context, svc HandoffService, batchNumber string) (*HandoffReport, error) {
	gt, err := d.line.truth()
	if err != nil {
		return nil, err
	}
	want := truthCodes(gt)
	d.capture.Expect(batchNumber, want)
	d.platform.Expect(batchNumber, want)
	rep := &HandoffReport{Expected: len(want), Receivers: map[string]receiver.Summary{}}
	if err := svc.Release(ctx, d.setup.Batch.Batch); err != nil {
		return nil, fmt.Errorf("demo: release: %w", err)
	}
	docs, err := svc.Deliver(ctx, d.setup.Batch.Batch)
	if err != nil {
		return nil, fmt.Errorf("demo: hand-off: %w", err)
	}
	if len(docs) == 0 {
		return nil, errors.New("demo: hand-off: no document was published")
	}
	for _, doc := range docs {
		hd := HandoffDocument{ID: doc.ID, Format: doc.Format, Bytes: doc.Size, State: string(doc.State)}
		var answers []string
		for _, dl := range doc.Deliveries {
			answers = append(answers, dl.Endpoint+": "+dl.Answer)
		}
		hd.Answer = strings.Join(answers, "; ")
		if doc.State != outbox.Delivered {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s (%s) is %s: %s", doc.ID, doc.Format, doc.State, hd.Answer))
		}
		rep.Documents = append(rep.Documents, hd)
	}
	rep.Receivers["epcis"], rep.Receivers["platform"] = d.capture.Summary(), d.platform.Summary()
	for name, s := range rep.Receivers {
		if s.Rejected > 0 || s.Accepted == 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("receiver %s: %d accepted, %d rejected", name, s.Accepted, s.Rejected))
		}
	}
	rep.OK = len(rep.Problems) == 0
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	return rep, nil
}

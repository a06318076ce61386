// Package handoff hands a released batch to the traceability network. Its
// parts: release (QA's rules, electronic signatures, the batch record),
// export (the 码上放心 relation XML and EPCIS 2.0 documents, streamed),
// outbox (documents written durably, then delivered exactly once from the
// receiver's point of view) and receiver (stand-in receivers for the demo
// and the tests). This package joins export and outbox: Publish writes the
// documents an active batch owes its endpoints.
//
// Who may import it: cmd/linectl, hmi.
package handoff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/export"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/internal/killpoint"
	"github.com/tracline/tracline/tracecode"
)

// Publisher writes an active batch's hand-off documents into the outbox.
type Publisher struct {
	Ledger export.Ledger
	Outbox *outbox.Outbox
	// Product returns the master data of a batch's product (its spec names
	// the product; several products may share a name and differ in their
	// levels and schemes).
	Product func(spec aggregation.BatchSpec) (*tracecode.Product, error)
	// Export holds the export options but the product (set per batch).
	Export export.Options
	// TempDir is where documents are spooled before the outbox takes them
	// (default: the system's).
	TempDir string
}

// Publish adds to the outbox one document per format an endpoint takes,
// unless the batch already has one of that format that is not superseded:
// publishing twice adds nothing. It returns the batch's documents of those
// formats. The batch must be active (released and activated).
func (p *Publisher) Publish(ctx context.Context, batch string, by aggregation.Actor) ([]outbox.Document, error) {
	if p.Ledger == nil || p.Outbox == nil || p.Product == nil {
		return nil, errors.New("handoff: publisher needs a ledger, an outbox and product master data")
	}
	sum, err := p.Ledger.Summary(ctx, batch)
	if err != nil {
		return nil, fmt.Errorf("hand-off of batch %s: %w", batch, err)
	}
	if sum.State != aggregation.BatchActive && sum.State != aggregation.BatchHandedOff {
		return nil, fmt.Errorf("hand-off of batch %s: it is %s; only an activated batch is handed off: %w", batch, sum.State, aggregation.ErrRefused)
	}
	spec, err := p.Ledger.Spec(ctx, batch)
	if err != nil {
		return nil, err
	}
	prod, err := p.Product(spec)
	if err != nil {
		return nil, fmt.Errorf("hand-off of batch %s: product %q: %w", batch, spec.Product, err)
	}
	have, err := p.Outbox.List(ctx, batch)
	if err != nil {
		return nil, err
	}
	killpoint.Hit(killpoint.Publish) // crash campaign only (inert unless armed)
	var out []outbox.Document
	for _, f := range p.Outbox.Formats() {
		if d, ok := current(have, f); ok {
			out = append(out, d)
			continue
		}
		d, err := p.publish(ctx, spec, f, prod, by)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	p.Outbox.Kick()
	return out, nil
}

func current(ds []outbox.Document, format string) (outbox.Document, bool) {
	for _, d := range ds {
		if d.Format == format && d.State != outbox.Superseded {
			return d, true
		}
	}
	return outbox.Document{}, false
}

// publish spools one document to a temporary file (an export is streamed,
// never held in memory) and hands it to the outbox, which writes it durably.
func (p *Publisher) publish(ctx context.Context, spec aggregation.BatchSpec, format string, prod *tracecode.Product, by aggregation.Actor) (outbox.Document, error) {
	batch := spec.ID
	f, err := export.ParseFormat(format)
	if err != nil {
		return outbox.Document{}, err
	}
	tmp, err := os.CreateTemp(p.TempDir, "handoff-*."+format)
	if err != nil {
		return outbox.Document{}, fmt.Errorf("hand-off of batch %s: spool: %w", batch, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	o := p.Export
	o.Product = prod
	if _, err := export.Write(ctx, tmp, p.Ledger, batch, f, o); err != nil {
		return outbox.Document{}, fmt.Errorf("hand-off of batch %s: %s: %w", batch, format, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return outbox.Document{}, err
	}
	return p.Outbox.Add(ctx, outbox.Submission{Batch: batch, BatchNumber: spec.Order.BatchNumber, Format: format}, tmp, by)
}

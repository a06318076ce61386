package main

// The hand-off's wiring: QA's release desk (handoff/release) on the
// controller's accounts, the outbox (handoff/outbox) on the config's
// endpoints, and the publisher that puts an activated batch's documents
// into it (handoff).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/release"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/internal/demo"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// handoffFile is the config's hand-off section.
type handoffFile struct {
	// Endpoints receive the documents of every activated batch: EPCIS 2.0
	// capture interfaces and platform uploads (docs/handoff-delivery.md).
	Endpoints []outbox.Endpoint `yaml:"endpoints"`
	// Release is QA's release policy default (the ledger's own policy, set
	// by an admin, wins when stricter).
	Release release.Config `yaml:"release"`
}

// handoffParts are the controller's hand-off services.
type handoffParts struct {
	desk *release.Desk
	ob   *outbox.Outbox     // nil without endpoints
	pub  *handoff.Publisher // nil without endpoints
}

// signers checks a signer's password against the controller's accounts.
type signers struct{ acc *accounts.Accounts }

func (s signers) Authenticate(ctx context.Context, user, password string) (release.Signer, error) {
	u, err := s.acc.Authenticate(ctx, user, password)
	if err != nil {
		return release.Signer{}, err
	}
	sg := release.Signer{User: u.ID, FullName: u.Name}
	for _, r := range u.Roles {
		sg.Roles = append(sg.Roles, string(r))
	}
	return sg, nil
}

// productOfBatch finds a batch's product master data among products: by
// the name the ledger keeps, its levels' schemes and ratios
// (line.LineConfig.ProductOf).
func productOfBatch(products map[string]*tracecode.Product) func(aggregation.BatchSpec) (*tracecode.Product, error) {
	lc := line.LineConfig{Products: products}
	return func(spec aggregation.BatchSpec) (*tracecode.Product, error) {
		_, p, err := lc.ProductOf(spec)
		return p, err
	}
}

// newHandoff builds the hand-off services on store; dataDir holds the
// outbox's documents.
func newHandoff(f handoffFile, products map[string]*tracecode.Product, store *aggregation.Store, acc *accounts.Accounts, dataDir string, log *slog.Logger) (*handoffParts, error) {
	desk, err := release.New(f.Release, store, accounts.Signer(acc), nil, log.With("part", "release"))
	if err != nil {
		return nil, err
	}
	h := &handoffParts{desk: desk}
	if len(f.Endpoints) == 0 {
		return h, nil
	}
	h.ob, err = outbox.New(outbox.Config{Dir: filepath.Join(dataDir, "outbox"), Endpoints: f.Endpoints}, store,
		outbox.Options{Logger: log.With("part", "outbox")})
	if err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	h.pub = &handoff.Publisher{Ledger: store, Outbox: h.ob, Product: productOfBatch(products), TempDir: dataDir}
	return h, nil
}

// run delivers the outbox's documents until ctx ends.
func (h *handoffParts) run(ctx context.Context) error {
	if h.ob == nil {
		<-ctx.Done()
		return nil
	}
	return h.ob.Run(ctx)
}

// demoHandoff is the hand-off of a headless demo: QA's release by the
// demo's QA account, activation, and the documents delivered to the
// demo's stand-in receivers.
type demoHandoff struct{ h *handoffParts }

// demoQA is who releases a headless demo's batch (a demo account).
var demoQA = aggregation.Actor{Kind: aggregation.ActorUser, ID: "qa"}

// wireDemoHandoff builds the hand-off on a demo's ledger, with the demo's
// accounts and its stand-in receivers as endpoints.
func wireDemoHandoff(ctx context.Context, store *aggregation.Store, s *demo.Setup, dir string, log *slog.Logger) (demo.HandoffService, error) {
	acc, err := accounts.Open(ctx, accounts.Config{Demo: true}, accounts.Ledger(store), log)
	if err != nil {
		return nil, err
	}
	f := demoLineFile(s).Handoff
	h, err := newHandoff(f, map[string]*tracecode.Product{s.ProductKey: s.Product}, store, acc, dir, log)
	if err != nil {
		return nil, err
	}
	if h.pub == nil {
		return nil, errors.New("demo: the hand-off has no endpoints (no stand-in receivers)")
	}
	return demoHandoff{h}, nil
}

func (d demoHandoff) Release(ctx context.Context, batch string) error {
	if _, err := d.h.desk.Verify(ctx, demoQA); err != nil {
		return err
	}
	out, err := d.h.desk.Sign(ctx, release.SignRequest{Batch: batch, User: demoQA.ID, Password: "demo",
		Meaning: release.Released, Comment: "demo: released by the headless run"})
	if err != nil {
		return err
	}
	if !out.Decided {
		return fmt.Errorf("release of %s not decided: %s", batch, out.Waiting)
	}
	if out.Activated {
		return nil
	}
	return d.h.desk.Activate(ctx, batch, demoQA)
}

func (d demoHandoff) Deliver(ctx context.Context, batch string) ([]outbox.Document, error) {
	if _, err := d.h.pub.Publish(ctx, batch, demoQA); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		next, err := d.h.ob.Step(ctx)
		if err != nil {
			return nil, err
		}
		docs, err := d.h.ob.List(ctx, batch)
		if err != nil {
			return nil, err
		}
		settled := true
		for _, doc := range docs {
			if doc.State != outbox.Delivered && doc.State != outbox.Failed && doc.State != outbox.Superseded {
				settled = false
			}
		}
		if settled || next.IsZero() {
			return docs, nil
		}
		select {
		case <-ctx.Done():
			return docs, fmt.Errorf("hand-off of %s: documents not settled in 2 minutes", batch)
		case <-time.After(time.Until(next)):
		}
	}
}

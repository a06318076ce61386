package main

// The hand-off's wiring: QA's release desk (handoff/release) on the
// controller's accounts, the outbox (handoff/outbox) on the config's
// endpoints, and the publisher that puts an activated batch's documents
// into it (handoff).

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff"
	"github.com/tracline/tracline/handoff/outbox"
	"github.com/tracline/tracline/handoff/release"
	"github.com/tracline/tracline/internal/accounts"
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

// productsByName finds a batch's product master data by the product name
// the ledger keeps (BatchSpec.Product).
func productsByName(products map[string]*tracecode.Product) func(string) (*tracecode.Product, error) {
	return func(name string) (*tracecode.Product, error) {
		for _, p := range products {
			if p.GenericName == name {
				return p, nil
			}
		}
		return nil, fmt.Errorf("no product named %q in the controller's master data", name)
	}
}

// newHandoff builds the hand-off services on store; dataDir holds the
// outbox's documents.
func newHandoff(f handoffFile, products map[string]*tracecode.Product, store *aggregation.Store, acc *accounts.Accounts, dataDir string, log *slog.Logger) (*handoffParts, error) {
	desk, err := release.New(f.Release, store, signers{acc}, nil, log.With("part", "release"))
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
	h.pub = &handoff.Publisher{Ledger: store, Outbox: h.ob, Product: productsByName(products), TempDir: dataDir}
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

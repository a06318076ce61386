package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/tracline/tracline/aggregation"
)

// The release policy (Config) is kept in the ledger, so that the person
// signing cannot choose how many signatures the release takes.
const (
	ConfigKey  = "release/config" // meta key holding the policy (Config as JSON)
	TypeConfig = "release.config" // the record that sets it
	// AdminRole may change the policy.
	AdminRole = "admin"
)

// LoadConfig reads the ledger's release policy; a ledger without one has
// the defaults (single signature, separate activation, role qa).
func LoadConfig(ctx context.Context, r Reader) (Config, error) {
	v, _, err := r.Meta(ctx, ConfigKey)
	if errors.Is(err, aggregation.ErrNotFound) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("release policy: %w", err)
	}
	var c Config
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return Config{}, fmt.Errorf("release policy %s: %w", ConfigKey, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("release policy %s: %w", ConfigKey, err)
	}
	return c, nil
}

// Stricter returns c with at least the signatures other asks for: a caller
// may ask for four-eyes on a single-signature ledger, never the reverse.
func (c Config) Stricter(other Config) Config {
	if other.Signatures == FourEyes {
		c.Signatures = FourEyes
	}
	return c
}

// SetConfig journals a new release policy (record "release.config" under
// ConfigKey). The user re-enters the password and must hold the admin role.
func SetConfig(ctx context.Context, l Ledger, auth Authenticator, user, password string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	s, err := auth.Authenticate(ctx, user, password)
	if err != nil || s.User != user || !slices.Contains(s.Roles, AdminRole) {
		return fmt.Errorf("%w (the %s role is required)", ErrAuth, AdminRole)
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := l.Record(ctx, aggregation.Record{Type: TypeConfig, Key: ConfigKey, Value: string(v)}, aggregation.Actor{Kind: aggregation.ActorUser, ID: s.User}); err != nil {
		return fmt.Errorf("release policy: %w", err)
	}
	return nil
}

package accounts

import (
	"context"

	"github.com/tracline/tracline/aggregation"
)

// System is the user name of entries the controller makes itself (the
// demo accounts); no account may take it.
const System = "system"

// Ledger journals into the ledger: each Entry is an aggregation.Record by
// the user (by the system for System).
func Ledger(s *aggregation.Store) Journal { return ledger{s} }

type ledger struct{ s *aggregation.Store }

func (l ledger) Record(ctx context.Context, e Entry, user string) error {
	by := aggregation.Actor{Kind: aggregation.ActorUser, ID: user}
	if user == System {
		by = aggregation.Actor{Kind: aggregation.ActorSystem, ID: "accounts"}
	}
	_, err := l.s.Record(ctx, aggregation.Record{Type: e.Type, Batch: e.Batch, Key: e.Key, Value: e.Value}, by)
	return err
}

func (l ledger) MetaPrefix(ctx context.Context, prefix string, fn func(key, value string) error) error {
	return l.s.MetaPrefix(ctx, prefix, func(key, value string, _ uint64) error { return fn(key, value) })
}

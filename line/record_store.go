package line

import (
	"context"

	"github.com/tracline/tracline/aggregation"
)

// storeRecorder journals records in the ledger.
// TODO(merge main): aggregation.Store.Record lands on main; until then the
// records are not written.
func storeRecorder(store *aggregation.Store) recordFunc {
	return func(ctx context.Context, typ, batch, value string, by aggregation.Actor) error { return nil }
}

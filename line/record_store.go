package line

import (
	"context"

	"github.com/tracline/tracline/aggregation"
)

// storeRecorder journals records in the ledger (Store.Record: durable,
// hash-chained, in the batch's audit trail when batch is set).
func storeRecorder(store *aggregation.Store) recordFunc {
	return func(ctx context.Context, typ, batch, value string, by aggregation.Actor) error {
		_, err := store.Record(ctx, aggregation.Record{Type: typ, Batch: batch, Value: value}, by)
		return err
	}
}

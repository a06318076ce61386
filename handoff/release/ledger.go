package release

import (
	"context"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

// Reader is what building a batch record reads from the ledger.
// *aggregation.Store implements it.
type Reader interface {
	Summary(ctx context.Context, batch string) (aggregation.BatchSummary, error)
	Spec(ctx context.Context, batch string) (aggregation.BatchSpec, error)
	// Trail: the batch's records, its events by a user, and its creation.
	Trail(ctx context.Context, batch string, fn func(aggregation.Event) error) error
	Events(ctx context.Context, from uint64, fn func(aggregation.Event) error) error
	Codes(ctx context.Context, batch string, level tracecode.Level, state aggregation.CodeState, fn func(tracecode.Code) error) error
	Meta(ctx context.Context, key string) (value string, seq uint64, err error)
	Head() uint64
}

// Ledger is what a release writes. *aggregation.Store implements it.
type Ledger interface {
	Reader
	Record(ctx context.Context, rec aggregation.Record, by aggregation.Actor) (uint64, error)
	Release(ctx context.Context, batch string, sig aggregation.Signature, by aggregation.Actor) error
	Activate(ctx context.Context, batch string, by aggregation.Actor) error
	Verify(ctx context.Context) (aggregation.VerifyReport, error)
}

// Record types this package journals (aggregation.Record.Type) and reads.
const (
	TypeSignature = "signature"      // one electronic signature (Value: SignatureRecord as JSON)
	TypeSigVoid   = "signature.void" // a signature voided because the record changed after it
	TypeVerify    = "verify"         // a ledger verify run (Key VerifyKey, Value: VerifyRun as JSON)
	TypeAlarm     = "alarm"          // an alarm of the batch (journaled by the line)
	TypeAlarmAck  = "alarm.ack"      // its acknowledgement by a user
	// VerifyKey holds the last verify run (Store.Meta).
	VerifyKey = "verify/last"
)

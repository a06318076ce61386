package outbox

import (
	"context"
	"errors"
	"testing"

	"github.com/tracline/tracline/aggregation"
)

// FuzzDocumentID: a document id from a URL (the QA screens' attempts and
// resend), any bytes: found, or ErrNotFound / ErrRefused — never another
// error (the HMI would answer 500). Found by `linectl campaign input`: an
// id with a control character reached the ledger's key check and came
// back as a plain error.
func FuzzDocumentID(f *testing.F) {
	for _, s := range []string{"zz-none", "1e309\x00\x00", "-\x1255", "%z99\n99", "", "B1-msfx-xml-1", "\x7f", "中文"} {
		f.Add(s)
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, id string) {
		ctx := context.Background()
		_, err := fx.ob.Attempts(ctx, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatalf("Attempts(%q): %v", id, err)
		}
		_, err = fx.ob.Resend(ctx, id, aggregation.Actor{Kind: aggregation.ActorUser, ID: "qa"})
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRefused) {
			t.Fatalf("Resend(%q): %v", id, err)
		}
	})
}

package hmi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/tracline/tracline/line"
)

// TestClassifyNoBatch: the line's "no batch" refusal is a 409 no_batch
// wherever it comes from. Found by `linectl campaign input`: POST
// /api/v1/line/rework with the body {} (or {"reason":"x"}) on a line with
// no batch answered 500 internal, since the handler returns the line's
// error as it is and classify did not know line.ErrNoBatch.
func TestClassifyNoBatch(t *testing.T) {
	for _, err := range []error{line.ErrNoBatch, fmt.Errorf("rework: %w", line.ErrNoBatch)} {
		if ae := classify(err); ae.status != http.StatusConflict || ae.code != "no_batch" {
			t.Errorf("%v → %d %s, want 409 no_batch", err, ae.status, ae.code)
		}
	}
}

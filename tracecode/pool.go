package tracecode

import (
	"context"
	"errors"
	"fmt"
)

// PoolStore keeps code pools durably. The ledger (package aggregation)
// implements it on Badger; an in-memory implementation serves tests.
// Every implementation must pass the suite in package tracecode/pooltest.
//
// A pool is named (e.g. "8021762-L1" for a product id and level). A code is
// in at most one pool, and a code once known to the store (pooled, allocated,
// sent, anything) can never be added again.
type PoolStore interface {
	// AddToPool adds codes to a pool durably, all or nothing. If any code is
	// already known to the store, or appears twice in codes, nothing is added
	// and the error is a *DuplicateCodesError naming every offending code.
	AddToPool(ctx context.Context, pool string, codes []Code, source string) error
	// Pools reports what each pool holds and has handed out.
	Pools(ctx context.Context) ([]PoolStat, error)
}

// PoolStat is one pool's account.
type PoolStat struct {
	Pool      string `json:"pool"`
	Available int64  `json:"available"` // in the pool, not yet allocated
	Allocated int64  `json:"allocated"` // ever handed out of the pool (net of returns)
	Returned  int64  `json:"returned"`  // allocated, never sent, returned at batch end
}

// ErrPoolEmpty is returned when a pool cannot supply the codes asked for.
var ErrPoolEmpty = errors.New("code pool exhausted")

// DuplicateCodesError names the codes that made an import fail.
type DuplicateCodesError struct {
	Codes []Code // each offending code once, in input order
}

func (e *DuplicateCodesError) Error() string {
	const show = 5
	s := fmt.Sprintf("%d code(s) already known or repeated", len(e.Codes))
	for i, c := range e.Codes {
		if i == show {
			s += fmt.Sprintf(", … and %d more", len(e.Codes)-show)
			break
		}
		s += ", " + string(c)
	}
	return s
}

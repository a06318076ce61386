package aggregation

import (
	"testing"

	"github.com/tracline/tracline/tracecode"
	"github.com/tracline/tracline/tracecode/pooltest"
)

// TestPoolStoreConformance runs tracecode's PoolStore suite against the ledger.
func TestPoolStoreConformance(t *testing.T) {
	pooltest.Run(t, func(t *testing.T) tracecode.PoolStore {
		s, _ := openTest(t)
		return s
	})
}

package tracecode_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tracline/tracline/tracecode"
	"github.com/tracline/tracline/tracecode/pooltest"
)

func TestMemPoolStoreConformance(t *testing.T) {
	pooltest.Run(t, func(t *testing.T) tracecode.PoolStore { return tracecode.NewMemPoolStore() })
}

func TestMemPoolStoreTake(t *testing.T) {
	ctx := context.Background()
	s := tracecode.NewMemPoolStore()
	in := []tracecode.Code{"80217629000000001003", "80217629000000002004", "80217629000000003005"}
	if err := s.AddToPool(ctx, "P", in, "t"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Take(ctx, "P", 2)
	if err != nil || len(got) != 2 || got[0] != in[0] || got[1] != in[1] {
		t.Fatalf("Take = %v, %v", got, err)
	}
	if _, err := s.Take(ctx, "P", 2); !errors.Is(err, tracecode.ErrPoolEmpty) {
		t.Fatalf("Take beyond = %v", err)
	}
	// Handed-out codes are still known: they can never be pooled again.
	var dup *tracecode.DuplicateCodesError
	if err := s.AddToPool(ctx, "Q", in[:1], "t"); !errors.As(err, &dup) {
		t.Fatalf("re-adding a handed-out code: %v", err)
	}
	st, _ := s.Pools(ctx)
	if len(st) != 1 || st[0].Available != 1 || st[0].Allocated != 2 {
		t.Fatalf("Pools = %+v", st)
	}
	if err := s.AddToPool(ctx, "", in, "t"); err == nil {
		t.Fatal("empty pool name accepted")
	}
}

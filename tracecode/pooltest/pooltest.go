// Package pooltest is the conformance suite of tracecode.PoolStore: every
// implementation (the ledger's Badger store, tracecode.MemPoolStore) must
// pass Run. Only tests import it.
package pooltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/tracline/tracline/tracecode"
)

// Run checks a PoolStore against the contract documented on
// tracecode.PoolStore. open must return a new, empty store each time it is
// called (and clean it up with t.Cleanup).
//
// What it checks: AddToPool is all or nothing; a code repeated within one
// call, already added by an earlier call to the same pool, or held by
// another pool makes the call fail with a *tracecode.DuplicateCodesError
// (found with errors.As) naming each offending code exactly once; nothing
// of a failed call is visible afterwards; Pools reports each pool's
// Available count (Allocated and Returned stay 0 when nothing was handed out).
func Run(t *testing.T, open func(t *testing.T) tracecode.PoolStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s tracecode.PoolStore)
	}{
		{"EmptyStoreHasNoPools", testEmpty},
		{"AddAndAccount", testAddAndAccount},
		{"AddAgainAppends", testAddAgain},
		{"DuplicateWithinCall", testDupWithinCall},
		{"DuplicateAgainstEarlierCall", testDupEarlier},
		{"DuplicateAcrossPools", testDupAcrossPools},
		{"EveryOffendingCodeNamedOnce", testManyOffending},
		{"LargeImport", testLarge},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// codes makes n distinct nmpa20-looking codes with a tag in them.
func codes(tag, n int) []tracecode.Code {
	out := make([]tracecode.Code, n)
	for i := range out {
		out[i] = tracecode.Code(fmt.Sprintf("8021762%04d%05d0000", tag, i))
	}
	return out
}

func stat(t *testing.T, s tracecode.PoolStore, pool string) tracecode.PoolStat {
	t.Helper()
	all, err := s.Pools(context.Background())
	if err != nil {
		t.Fatalf("Pools: %v", err)
	}
	found := 0
	var st tracecode.PoolStat
	for _, p := range all {
		if p.Pool == pool {
			found++
			st = p
		}
	}
	if found > 1 {
		t.Fatalf("Pools lists %q %d times", pool, found)
	}
	return st
}

func add(t *testing.T, s tracecode.PoolStore, pool string, cs []tracecode.Code) {
	t.Helper()
	if err := s.AddToPool(context.Background(), pool, cs, "pooltest"); err != nil {
		t.Fatalf("AddToPool(%q, %d codes): %v", pool, len(cs), err)
	}
}

// mustDup checks that err is a *DuplicateCodesError naming exactly want
// (as a set, each once).
func mustDup(t *testing.T, err error, want ...tracecode.Code) *tracecode.DuplicateCodesError {
	t.Helper()
	if err == nil {
		t.Fatalf("AddToPool succeeded, want a *DuplicateCodesError naming %v", want)
	}
	var dup *tracecode.DuplicateCodesError
	if !errors.As(err, &dup) {
		t.Fatalf("AddToPool error %T %v is not a *tracecode.DuplicateCodesError", err, err)
	}
	got := slices.Clone(dup.Codes)
	slices.Sort(got)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Fatalf("DuplicateCodesError names %v, want %v (each once)", dup.Codes, want)
	}
	return dup
}

func testEmpty(t *testing.T, s tracecode.PoolStore) {
	all, err := s.Pools(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if p.Available != 0 || p.Allocated != 0 || p.Returned != 0 {
			t.Fatalf("a new store reports %+v", p)
		}
	}
}

func testAddAndAccount(t *testing.T, s tracecode.PoolStore) {
	add(t, s, "8021762-L1", codes(1, 3))
	add(t, s, "8021763-L2", codes(2, 2))
	for pool, n := range map[string]int64{"8021762-L1": 3, "8021763-L2": 2} {
		st := stat(t, s, pool)
		if st.Pool != pool || st.Available != n || st.Allocated != 0 || st.Returned != 0 {
			t.Errorf("pool %s: got %+v, want available %d, allocated 0, returned 0", pool, st, n)
		}
	}
}

func testAddAgain(t *testing.T, s tracecode.PoolStore) {
	add(t, s, "P", codes(1, 3))
	add(t, s, "P", codes(2, 4))
	if st := stat(t, s, "P"); st.Available != 7 {
		t.Errorf("after 3 + 4 codes: %+v", st)
	}
}

func testDupWithinCall(t *testing.T, s tracecode.PoolStore) {
	c := codes(1, 3)
	in := []tracecode.Code{c[0], c[1], c[0], c[2], c[0]}
	mustDup(t, s.AddToPool(context.Background(), "P", in, "pooltest"), c[0])
	if st := stat(t, s, "P"); st.Available != 0 {
		t.Fatalf("failed call left %+v", st)
	}
	// Nothing of the failed call was added: each code is still new.
	add(t, s, "P", c)
	if st := stat(t, s, "P"); st.Available != 3 {
		t.Fatalf("got %+v, want 3 available", st)
	}
}

func testDupEarlier(t *testing.T, s tracecode.PoolStore) {
	c := codes(1, 4)
	add(t, s, "P", c[:2])
	mustDup(t, s.AddToPool(context.Background(), "P", []tracecode.Code{c[2], c[1], c[3]}, "pooltest"), c[1])
	if st := stat(t, s, "P"); st.Available != 2 {
		t.Fatalf("failed call changed the pool: %+v", st)
	}
	add(t, s, "P", c[2:])
	if st := stat(t, s, "P"); st.Available != 4 {
		t.Fatalf("got %+v, want 4 available", st)
	}
}

func testDupAcrossPools(t *testing.T, s tracecode.PoolStore) {
	c := codes(1, 3)
	add(t, s, "A", c[:1])
	mustDup(t, s.AddToPool(context.Background(), "B", c, "pooltest"), c[0])
	if st := stat(t, s, "B"); st.Available != 0 {
		t.Fatalf("failed call left pool B with %+v", st)
	}
	if st := stat(t, s, "A"); st.Available != 1 {
		t.Fatalf("pool A changed: %+v", st)
	}
	add(t, s, "B", c[1:])
	if st := stat(t, s, "B"); st.Available != 2 {
		t.Fatalf("got %+v, want 2 available", st)
	}
}

func testManyOffending(t *testing.T, s tracecode.PoolStore) {
	old := codes(1, 10)
	add(t, s, "A", old)
	fresh := codes(2, 1000)
	in := slices.Clone(fresh)
	var want []tracecode.Code
	for i, o := range old {
		in[i*97] = o // offending codes spread over the call, each once
		want = append(want, o)
	}
	dup := mustDup(t, s.AddToPool(context.Background(), "B", in, "pooltest"), want...)
	if !slices.Equal(dup.Codes, want) {
		t.Errorf("codes named in %v, want input order %v", dup.Codes, want)
	}
	if st := stat(t, s, "B"); st.Available != 0 {
		t.Fatalf("failed call left %+v", st)
	}
}

func testLarge(t *testing.T, s tracecode.PoolStore) {
	add(t, s, "L", codes(1, 20000))
	mustDup(t, s.AddToPool(context.Background(), "L", append(codes(2, 5000), codes(1, 20000)[19999]), "pooltest"), codes(1, 20000)[19999])
	if st := stat(t, s, "L"); st.Available != 20000 {
		t.Fatalf("got %+v, want 20000 available", st)
	}
}

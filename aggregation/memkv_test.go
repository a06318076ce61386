package aggregation

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/tracline/tracline/tracecode"
)

// memKV against a map: random sets (growing, shrinking, in place or
// moved), deletes, lookups, compactions and index growth, link children
// and the comparison's visit/each.
func TestMemKVAgainstMap(t *testing.T) {
	old := memCompactMin
	memCompactMin = 1 << 10
	defer func() { memCompactMin = old }()
	rng := rand.New(rand.NewPCG(1, 2))
	m := newMemKV()
	m.slots = make([]uint64, 8) // the index grows
	model := map[string][]byte{}
	key := func() []byte {
		switch n := rng.IntN(3000); {
		case n < 1000:
			return codeKey("B", 1, tracecode.Code(fmt.Sprintf("%020d", n)))
		case n < 2000:
			return linkKey(tracecode.Code(fmt.Sprintf("%020d", n%7)), tracecode.Code(fmt.Sprintf("%020d", n)))
		default:
			return locKey(tracecode.Code(fmt.Sprintf("C%d", n)))
		}
	}
	compactions := 0
	for i := 0; i < 200000; i++ {
		k := key()
		switch op := rng.IntN(10); {
		case op < 5:
			n := rng.IntN(60)
			if rng.IntN(20) == 0 {
				n = 200 + rng.IntN(200) // the header's long form
			}
			v := bytes.Repeat([]byte{byte(i)}, n)
			m.set(k, v)
			model[string(k)] = v
		case op < 7:
			m.del(k)
			delete(model, string(k))
		case op < 9:
			got, ok := m.get(k)
			want, wok := model[string(k)]
			if ok != wok || !bytes.Equal(got, want) {
				t.Fatalf("op %d: get %q = %v %v, want %v %v", i, k, got, ok, want, wok)
			}
		default:
			before := m.dead
			m.compact()
			if m.dead < before {
				compactions++
			}
		}
		if i == 100000 {
			// From here on the children index is kept up to date.
			p := linkPrefix(tracecode.Code(fmt.Sprintf("%020d", 3)))
			checkKids(t, m, model, p)
		}
	}
	if compactions == 0 {
		t.Fatal("no compaction ran")
	}
	if m.n != len(model) {
		t.Fatalf("%d live keys, model %d", m.n, len(model))
	}
	for p := 0; p < 7; p++ {
		checkKids(t, m, model, linkPrefix(tracecode.Code(fmt.Sprintf("%020d", p))))
	}
	// visit marks keys; each lists the rest, every live key once.
	var marked []string
	for k := range model {
		if len(marked) < len(model)/2 {
			if _, ok := m.visit([]byte(k)); !ok {
				t.Fatalf("visit %q: not found", k)
			}
			marked = append(marked, k)
		}
	}
	seen := map[string]bool{}
	m.each(func(k, v []byte, visited bool) {
		if seen[string(k)] {
			t.Fatalf("each gave %q twice", k)
		}
		seen[string(k)] = true
		if !bytes.Equal(v, model[string(k)]) {
			t.Fatalf("each: %q = %v, want %v", k, v, model[string(k)])
		}
		if visited != slices.Contains(marked, string(k)) {
			t.Fatalf("each: %q visited %v", k, visited)
		}
	})
	if len(seen) != len(model) {
		t.Fatalf("each gave %d keys, want %d", len(seen), len(model))
	}
}

func checkKids(t *testing.T, m *memKV, model map[string][]byte, p []byte) {
	t.Helper()
	var want []string
	for k := range model {
		if bytes.HasPrefix([]byte(k), p) {
			want = append(want, k[len(p):])
		}
	}
	sort.Strings(want)
	var got []string
	for _, c := range m.children(p) {
		got = append(got, string(c))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("children of %q: %d, want %d", p, len(got), len(want))
	}
}

package aggregation

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tracline/tracline/tracecode"
)

// gateBatch makes batch B with gate confirmation and label checks on level
// 2 (ratio 2): units commissioned with item ids 1..n, two parents sent and
// commissioned.
func gateBatch(t *testing.T, s *Store, n int) (units, parents []tracecode.Code) {
	t.Helper()
	sp := spec("GB", 2)
	sp.GateConfirm = true
	sp.Levels[1].LabelCheck = true
	must(t, s.CreateBatch(ctx, sp, op))
	must(t, s.AddToPool(ctx, "GB-L1", codes(901, 0, n), "test"))
	must(t, s.AddToPool(ctx, "GB-L2", codes(902, 0, 2), "test"))
	units, err := s.AllocateFromPool(ctx, "GB", 1, "GB-L1", n, op)
	must(t, err)
	parents, err = s.AllocateFromPool(ctx, "GB", 2, "GB-L2", 2, op)
	must(t, err)
	must(t, s.MarkSent(ctx, units, op))
	must(t, s.MarkSent(ctx, parents, op))
	for i, c := range units {
		must(t, s.Commission(ctx, c, UnitInfo{ItemID: uint64(i + 1)}, op))
	}
	for _, p := range parents {
		must(t, s.Commission(ctx, p, UnitInfo{}, op))
	}
	return units, parents
}

func TestGateOutcomes(t *testing.T) {
	s, _ := openTest(t)
	units, parents := gateBatch(t, s, 4)
	// Unit 1 passed, unit 2 was rejected at the gate (its commission is
	// taken back), unit 3 escaped (a reject that failed: evidence only),
	// unit 4 has no outcome yet.
	must(t, s.RecordGate(ctx, "GB", 1, units[0], GatePassed, op))
	must(t, s.RecordGate(ctx, "GB", 2, units[1], GateRejected, op))
	must(t, s.RecordGate(ctx, "GB", 3, "", GateRejectFailed, op))
	info, err := s.Lookup(ctx, units[1])
	must(t, err)
	if info.State != StateDecommissioned {
		t.Fatalf("code rejected at the gate is %s, want decommissioned", info.State)
	}
	var got []string
	must(t, s.Unconfirmed(ctx, "GB", func(u Unconfirmed) error {
		got = append(got, fmt.Sprintf("%s L%d item %d", u.Code, u.Level, u.Item))
		return nil
	}))
	want := []string{fmt.Sprintf("%s L1 item 3", units[2]), fmt.Sprintf("%s L1 item 4", units[3])}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Fatalf("unconfirmed %v, want %v", got, want)
	}
	sum, err := s.Summary(ctx, "GB")
	must(t, err)
	l1 := sum.Levels[0]
	if l1.GatePassed != 1 || l1.GateRejected != 1 || l1.GateEscaped != 1 || l1.Decommissioned != 1 {
		t.Fatalf("gate counters %+v", l1)
	}
	if p := sum.Check(); len(p) != 0 {
		t.Fatalf("conservation after gate outcomes: %v", p)
	}

	// Bad input changes nothing.
	for _, bad := range []struct {
		name string
		err  error
	}{
		{"unknown outcome", s.RecordGate(ctx, "GB", 5, "", GateOutcome("maybe"), op)},
		{"no item", s.RecordGate(ctx, "GB", 0, "", GatePassed, op)},
		{"foreign code", s.RecordGate(ctx, "GB", 5, parents[0], GatePassed, op)},
		{"unknown batch", s.RecordGate(ctx, "XX", 5, "", GatePassed, op)},
	} {
		if bad.err == nil {
			t.Errorf("%s: accepted", bad.name)
		}
	}

	// Labels: packed parents are unconfirmed until printed and verified.
	must(t, s.RecordGate(ctx, "GB", 4, units[3], GatePassed, op))
	must(t, s.Pack(ctx, parents[0], []tracecode.Code{units[0], units[3]}, PackOpts{}, op))
	if err := s.RecordLabel(ctx, parents[1], LabelPrinted, op); err == nil {
		t.Error("label of an empty parent accepted")
	}
	count := func() (n int, last Unconfirmed) {
		must(t, s.Unconfirmed(ctx, "GB", func(u Unconfirmed) error {
			if u.Level == 2 {
				n++
				last = u
			}
			return nil
		}))
		return
	}
	if n, u := count(); n != 1 || u.LabelPrinted {
		t.Fatalf("after pack: %d unconfirmed parents (%+v), want 1 not printed", n, u)
	}
	must(t, s.RecordLabel(ctx, parents[0], LabelPrinted, op))
	if n, u := count(); n != 1 || !u.LabelPrinted || u.LabelVerified {
		t.Fatalf("after print: %d unconfirmed (%+v)", n, u)
	}
	must(t, s.RecordLabel(ctx, parents[0], LabelVerified, op))
	if n, _ := count(); n != 0 {
		t.Fatalf("after verification: %d unconfirmed parents", n)
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

// A code the gate rejected while it was packed stays as the ledger has it,
// and Verify names it; a complete batch with an unverified label too.
func TestVerifyNamesGateAndLabelDisagreements(t *testing.T) {
	s, _ := openTest(t)
	units, parents := gateBatch(t, s, 2)
	must(t, s.Pack(ctx, parents[0], units, PackOpts{}, op))
	must(t, s.RecordLabel(ctx, parents[0], LabelPrinted, op))
	must(t, s.RecordGate(ctx, "GB", 1, units[0], GateRejected, op))
	must(t, s.Decommission(ctx, parents[1], "unused", op))
	must(t, s.Complete(ctx, "GB", op))
	rep, err := s.Verify(ctx)
	must(t, err)
	all := strings.Join(rep.Problems, "\n")
	for _, want := range []string{string(units[0]) + ": aggregated, but the reject gate confirmed its unit rejected",
		string(parents[0]) + ": parent of 2 in complete batch GB, its label was never verified"} {
		if !strings.Contains(all, want) {
			t.Errorf("verify does not say %q; it says:\n%s", want, all)
		}
	}
}

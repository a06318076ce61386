package line

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/tracecode"
)

func TestStation(t *testing.T) {
	rg := newLineRigWith(t, t.TempDir(), func(c *LineConfig) {
		c.Machine.LabelCheck = map[tracecode.Level]bool{2: true} // the release needs level 2's labels verified
	})
	ctx := context.Background()
	old := rg.runBatch(workOrder("B0"), 1, 1)
	wo := workOrder("B1")
	wo.Levels = 2 // bundles of 2
	if _, err := rg.line.StartBatch(ctx, wo, "op1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationAdd(ctx, string(old[0]), "op1"); !isScan(err, ScanNoParent) {
		t.Fatalf("a child before a parent: %v", err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	var units []tracecode.Code
	for i := uint32(10); i < 14; i++ {
		units = append(units, rg.goodUnit(i))
	}
	// Unit 14 is rejected (no-read): its code is not commissioned.
	bad := rg.nextSent()
	now := Stamp{T: time.Now()}
	rg.line.Post(Trigger{Stamp: now, Item: 14})
	rg.line.Post(Printed{Stamp: now, Code: bad})
	rg.line.Post(CameraResult{Stamp: now, Item: 14, Grade: 'A', Pass: true})
	rg.waitFor("4 good, 1 rejected", func(o Overview) bool { return o.Counts.Good == 4 && o.Counts.Rejected == 1 })
	waitLedgerState(t, rg.store, bad, aggregation.StateRejected)

	v, err := rg.line.StationBeginNew(ctx, 2, "op2")
	if err != nil || v.Parent == "" || v.Ratio != 2 || v.Level != 2 {
		t.Fatalf("a new parent: %+v, %v", v, err)
	}
	parent := v.Parent
	if _, err := rg.line.StationBeginNew(ctx, 2, "op2"); !isScan(err, ScanParentOpen) {
		t.Fatalf("a second parent while one is open: %v", err)
	}
	for _, tc := range []struct{ scan, reason string }{
		{"not a code", ScanUnreadable},
		{"(01)06901234567892(21)ZZZ999", ScanNotOurs},
		{string(old[0]), ScanForeign},
		{string(parent), ScanDuplicate},
		{string(bad), ScanNotCommissioned},
	} {
		if _, err := rg.line.StationAdd(ctx, tc.scan, "op2"); !isScan(err, tc.reason) {
			t.Errorf("scan %q: %v, want %s", tc.scan, err, tc.reason)
		}
	}
	if v, err = rg.line.StationAdd(ctx, string(units[0]), "op2"); err != nil || len(v.Children) != 1 {
		t.Fatalf("first child: %+v, %v", v, err)
	}
	if _, err := rg.line.StationAdd(ctx, string(units[0]), "op2"); !isScan(err, ScanDuplicate) {
		t.Fatalf("the same child twice: %v", err)
	}
	v, err = rg.line.StationAdd(ctx, string(units[1]), "op2")
	if err != nil || v.Parent != "" || v.Packed == nil || v.Packed.Parent != parent || v.Packed.Partial || !v.Packed.Labelled {
		t.Fatalf("the ratio reached: %+v, %v", v, err)
	}
	info, err := rg.store.Lookup(ctx, parent)
	if err != nil || info.State != aggregation.StateCommissioned || info.Children != 2 {
		t.Fatalf("packed parent: %+v, %v", info, err)
	}
	for _, ev := range info.History {
		if ev.Kind == aggregation.EvPack && ev.Actor != (aggregation.Actor{Kind: aggregation.ActorUser, ID: "op2"}) {
			t.Fatalf("pack journaled by %+v, want the user", ev.Actor)
		}
	}
	if len(rg.rework.printed) != 1 {
		t.Fatalf("labels printed: %v", rg.rework.printed)
	}
	// Level 2 has a label check: the new label must be applied and scanned
	// before the next parent; the scan of it verifies it.
	if v.LabelToScan != parent || v.Packed.Verified {
		t.Fatalf("after packing with a new label: %+v", v)
	}
	if _, err := rg.line.StationBeginNew(ctx, 2, "op2"); !isScan(err, ScanLabelPending) {
		t.Fatalf("a new parent before the last new label was scanned: %v", err)
	}
	if _, err := rg.line.StationBegin(ctx, string(units[2]), "op2"); !isScan(err, ScanLabelPending) {
		t.Fatalf("a scan before the last new label was scanned: %v", err)
	}
	if v, err = rg.line.StationBegin(ctx, string(parent), "op2"); err != nil || v.Parent != "" || v.LabelToScan != "" || !v.Packed.Verified {
		t.Fatalf("the new label scanned: %+v, %v", v, err)
	}
	if sum, err := rg.store.Summary(ctx, "B1"); err != nil || sum.Levels[1].LabelsVerified != 1 {
		t.Fatalf("level 2 after the label's scan: %+v, %v", sum.Levels[1], err)
	}

	// A pre-printed parent label, scanned; a packed child is refused; a
	// short parent is closed with a reason.
	pre := tracecode.Code("(01)16901234567899(21)PRE001")
	if _, err := rg.store.AllocateGenerated(ctx, "B1", 2, []tracecode.Code{pre}, system); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationBegin(ctx, string(units[2]), "op2"); !isScan(err, ScanWrongLevel) {
		t.Fatalf("a unit as a parent: %v", err)
	}
	if _, err := rg.line.StationBegin(ctx, string(parent), "op2"); !isScan(err, ScanParentUsed) {
		t.Fatalf("a used parent: %v", err)
	}
	if _, err := rg.line.StationBegin(ctx, string(pre), "op2"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationAdd(ctx, string(units[0]), "op2"); !isScan(err, ScanPacked) {
		t.Fatalf("a packed child: %v", err)
	}
	if _, err := rg.line.StationAdd(ctx, string(units[2]), "op2"); err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationClose(ctx, " ", "op2"); !errors.Is(err, aggregation.ErrRefused) {
		t.Fatalf("closing short without a reason: %v", err)
	}
	v, err = rg.line.StationClose(ctx, "last bundle", "op2")
	if err != nil || v.Packed == nil || !v.Packed.Partial || v.Packed.Children != 1 {
		t.Fatalf("closing short: %+v, %v", v, err)
	}
	sum, err := rg.store.Summary(ctx, "B1")
	if err != nil || sum.Levels[1].FullParents != 1 || sum.Levels[1].PartialParents != 1 || sum.Levels[1].LabelsVerified != 2 {
		t.Fatalf("level 2 in the ledger: %+v, %v", sum.Levels[1], err)
	}
	o := rg.waitFor("the overview's level 2", func(o Overview) bool {
		return len(o.Levels) == 1 && o.Levels[0].Full == 1 && o.Levels[0].Partial == 1
	})
	if o.Levels[0].InProgress != 1 || o.Levels[0].Name != "中包" {
		t.Fatalf("level 2 on the overview: %+v", o.Levels[0])
	}
	// A reprint goes to the rework label printer, journaled as the user.
	if err := rg.line.StationReprint(ctx, parent, "label torn", "op2"); err != nil {
		t.Fatal(err)
	}
	if len(rg.rework.printed) != 2 {
		t.Fatalf("labels printed: %v", rg.rework.printed)
	}

	// QA's questions, through the Line.
	cv, err := rg.line.LookupCode(ctx, " "+string(units[0])+" ")
	if err != nil || cv.Top != parent || len(cv.Ancestors) != 1 || len(cv.SameTop) != 2 || len(cv.Children) != 0 || len(cv.Code.History) == 0 {
		t.Fatalf("lookup of a packed unit: %+v, %v", cv, err)
	}
	if cv, err = rg.line.LookupCode(ctx, string(parent)); err != nil || len(cv.Children) != 2 || cv.Top != parent {
		t.Fatalf("lookup of a parent: %+v, %v", cv, err)
	}
	if _, err := rg.line.LookupCode(ctx, "(01)06901234567892(21)NOPE"); !errors.Is(err, aggregation.ErrNotFound) {
		t.Fatalf("lookup of an unknown code: %v", err)
	}
	rec, err := rg.line.BatchRecord(ctx, "B1")
	if err != nil || rec.Spec.ID != "B1" || len(rec.Trail) == 0 {
		t.Fatalf("batch record: %+v, %v", rec, err)
	}
	packs := 0
	for _, ev := range rec.Trail {
		if ev.Kind == aggregation.EvPack && ev.Actor.ID == "op2" {
			packs++
		}
	}
	if packs != 2 {
		t.Fatalf("packs by op2 in B1's trail: %d, want 2", packs)
	}
	for _, tc := range []struct {
		f    BatchFilter
		want string
	}{
		{BatchFilter{}, "B0 B1"},
		{BatchFilter{Product: "amox-gs1"}, "B0 B1"},
		{BatchFilter{Product: "amox-nmpa"}, ""},
		{BatchFilter{State: "complete"}, "B0"},
		{BatchFilter{From: "2026-11-01", To: "2026-11-01"}, "B0 B1"},
		{BatchFilter{From: "2026-11-02"}, ""},
	} {
		bs, err := rg.line.Batches(ctx, tc.f)
		var ids []string
		for _, b := range bs {
			ids = append(ids, b.Batch)
		}
		if err != nil || strings.Join(ids, " ") != tc.want {
			t.Errorf("batches %+v: %v, %v; want %s", tc.f, ids, err, tc.want)
		}
	}
	if _, err := rg.line.Batches(ctx, BatchFilter{From: "yesterday", State: "lost"}); err == nil || !strings.Contains(err.Error(), "from:") || !strings.Contains(err.Error(), "state:") {
		t.Fatalf("a bad filter: %v", err)
	}
}

func isScan(err error, reason string) bool {
	var se *ScanError
	return errors.As(err, &se) && se.Reason == reason && se.Message != "" && errors.Is(err, ErrScanRefused)
}

func waitLedgerState(t *testing.T, s *aggregation.Store, c tracecode.Code, want aggregation.CodeState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := s.Code(context.Background(), c)
		if err == nil && info.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("code %s: %s (%v), want %s", c, info.State, err, want)
		}
		time.Sleep(2 * time.Millisecond) // polling the ledger: it has no change feed
	}
}

func TestPreviewRework(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	wo := workOrder("B1")
	wo.Levels = 2
	if _, err := rg.line.StartBatch(ctx, wo, "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	var u []tracecode.Code
	for i := uint32(1); i <= 3; i++ {
		u = append(u, rg.goodUnit(i))
	}
	for _, c := range u {
		waitLedgerState(t, rg.store, c, aggregation.StateCommissioned)
	}
	v, err := rg.line.StationBeginNew(ctx, 2, "op1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range u[:2] {
		if _, err := rg.line.StationAdd(ctx, string(c), "op1"); err != nil {
			t.Fatal(err)
		}
	}
	parent := v.Parent
	head := rg.store.Head()
	for _, tc := range []struct {
		op      ReworkOp
		changes string
		refusal string
	}{
		{ReworkOp{Kind: ReworkDecommission, Code: u[2], Reason: "damaged"}, fmt.Sprintf("[{%s commissioned decommissioned }]", u[2]), ""},
		{ReworkOp{Kind: ReworkSample, Code: u[0], Reason: "qa"}, "[]", "aggregated, not a loose"},
		{ReworkOp{Kind: ReworkUnpack, Code: parent, Reason: "recount"}, fmt.Sprintf("[{%s aggregated commissioned %s} {%s aggregated commissioned %s}]", u[0], parent, u[1], parent), ""},
		{ReworkOp{Kind: ReworkReplace, Code: parent, Old: u[0], New: u[2], Reason: "damaged"}, fmt.Sprintf("[{%s aggregated commissioned %s} {%s commissioned aggregated %s}]", u[0], parent, u[2], parent), ""},
		{ReworkOp{Kind: ReworkReplace, Code: parent, Old: u[2], New: u[0], Reason: "x"}, "[]", "is not in"},
		{ReworkOp{Kind: ReworkDecommission, Code: "(01)06901234567892(21)NOPE", Reason: "x"}, "[]", "not a code of this line"},
		{ReworkOp{Kind: ReworkReprint, Code: parent, Reason: "torn"}, "[]", ""},
	} {
		p, err := rg.line.PreviewRework(ctx, tc.op)
		if err != nil {
			t.Fatalf("%+v: %v", tc.op, err)
		}
		if got := fmt.Sprint(p.Changes); got != tc.changes || !strings.Contains(p.Refusal, tc.refusal) || (tc.refusal == "") != (p.Refusal == "") {
			t.Errorf("%s %s: changes %s refusal %q; want %s, %q", tc.op.Kind, tc.op.Code, got, p.Refusal, tc.changes, tc.refusal)
		}
	}
	if _, err := rg.line.PreviewRework(ctx, ReworkOp{Kind: "burn", Code: u[0], Reason: "x"}); !errors.Is(err, ErrBadRework) {
		t.Fatalf("an unknown rework: %v", err)
	}
	if rg.store.Head() != head {
		t.Fatal("a preview changed the ledger")
	}
}

// A pack the ledger refuses (a child packed elsewhere meanwhile) leaves
// nothing half-done: the parent's code is taken out, the other children
// stay loose, the station is ready for a new parent.
func TestStationPackRefused(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	wo := workOrder("B1")
	wo.Levels = 2
	if _, err := rg.line.StartBatch(ctx, wo, "op1"); err != nil {
		t.Fatal(err)
	}
	rg.command(CmdReset)
	rg.command(CmdStart)
	rg.waitFor("Execute", func(o Overview) bool { return o.State == "Execute" })
	var u []tracecode.Code
	for i := uint32(1); i <= 3; i++ {
		u = append(u, rg.goodUnit(i))
	}
	for _, c := range u {
		waitLedgerState(t, rg.store, c, aggregation.StateCommissioned)
	}
	v, err := rg.line.StationBeginNew(ctx, 2, "op1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rg.line.StationAdd(ctx, string(u[0]), "op1"); err != nil {
		t.Fatal(err)
	}
	// Meanwhile u[0] is packed elsewhere (another station, a script).
	other := tracecode.Code("(01)16901234567899(21)OTHER1")
	if _, err := rg.store.AllocateGenerated(ctx, "B1", 2, []tracecode.Code{other}, system); err != nil {
		t.Fatal(err)
	}
	if err := rg.store.MarkSent(ctx, []tracecode.Code{other}, system); err != nil {
		t.Fatal(err)
	}
	if err := rg.store.Commission(ctx, other, aggregation.UnitInfo{}, system); err != nil {
		t.Fatal(err)
	}
	if err := rg.store.Pack(ctx, other, []tracecode.Code{u[0], u[2]}, aggregation.PackOpts{}, system); err != nil {
		t.Fatal(err)
	}
	st, err := rg.line.StationAdd(ctx, string(u[1]), "op1")
	if err == nil || !errors.Is(err, aggregation.ErrRefused) {
		t.Fatalf("pack with a child packed elsewhere: %v", err)
	}
	if st.Parent != "" || len(st.Children) != 0 {
		t.Fatalf("station after a refused pack: %+v", st)
	}
	waitLedgerState(t, rg.store, v.Parent, aggregation.StateDecommissioned)
	waitLedgerState(t, rg.store, u[1], aggregation.StateCommissioned)
	if _, err := rg.line.StationBeginNew(ctx, 2, "op1"); err != nil {
		t.Fatalf("a new parent after a refused pack: %v", err)
	}
}

// TestReworkOfACompletedBatch: a batch completed with loose units below
// its top level (which block its release) can still have them taken out
// of circulation, previewed and done as the operator, until its release;
// other rework of it, and any of a code the ledger does not know, stays
// refused.
func TestReworkOfACompletedBatch(t *testing.T) {
	rg := newLineRig(t, t.TempDir())
	ctx := context.Background()
	wo := workOrder("B1")
	wo.Levels = 2
	units := rg.runBatch(wo, 1, 3)
	sum, err := rg.store.Summary(ctx, "B1")
	if err != nil || len(sum.ReleaseProblems()) == 0 {
		t.Fatalf("completed with loose units: problems %v, %v", sum.ReleaseProblems(), err)
	}
	p, err := rg.line.PreviewRework(ctx, ReworkOp{Kind: ReworkDecommission, Code: units[0], Reason: "loose at batch end"})
	if err != nil || p.Refusal != "" || len(p.Changes) != 1 || p.Changes[0].To != aggregation.StateDecommissioned.String() {
		t.Fatalf("preview: %+v, %v", p, err)
	}
	if p, err := rg.line.PreviewRework(ctx, ReworkOp{Kind: ReworkUnpack, Code: units[0], Reason: "x"}); err != nil || p.Refusal == "" {
		t.Fatalf("an unpack previewed with no batch on the line: %+v, %v", p, err)
	}
	if err := rg.line.Rework(ctx, ReworkOp{Kind: ReworkUnpack, Code: units[0], Reason: "x"}, "op2"); !errors.Is(err, ErrNoBatch) {
		t.Fatalf("an unpack with no batch on the line: %v", err)
	}
	if err := rg.line.Rework(ctx, ReworkOp{Kind: ReworkSample, Code: units[0], Reason: "retain sample"}, "op2"); err != nil {
		t.Fatal(err)
	}
	for _, u := range units[1:] {
		if err := rg.line.Rework(ctx, ReworkOp{Kind: ReworkDecommission, Code: u, Reason: "loose at batch end"}, "op2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := rg.line.Rework(ctx, ReworkOp{Kind: ReworkDecommission, Code: units[1], Reason: "again"}, "op2"); !errors.Is(err, aggregation.ErrRefused) {
		t.Fatalf("a decommissioned code again: %v", err)
	}
	info, err := rg.store.Code(ctx, units[2])
	if err != nil || info.State != aggregation.StateDecommissioned || info.History[len(info.History)-1].Actor.ID != "op2" {
		t.Fatalf("after the rework: %+v, %v", info, err)
	}
	if sum, err = rg.store.Summary(ctx, "B1"); err != nil || len(sum.ReleaseProblems()) != 0 {
		t.Fatalf("after the rework: problems %v, %v", sum.ReleaseProblems(), err)
	}
}

package aggregation

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tracline/tracline/tracecode"
)

// Badger takes landed groups behind the redo log, several per commit, and
// a key that several of them wrote once; a reader still sees every write
// acknowledged before it asked, at once.
func TestBadgerBehindTheLog(t *testing.T) {
	s := openSynced(t, Options{})
	cs := allocated(t, s, "BL", 501, 400)
	st0 := s.Stats()
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < len(cs); i += 20 {
				if err := s.MarkSent(ctx, cs[i:i+1], op); err != nil {
					t.Error(err)
					return
				}
				if err := s.Commission(ctx, cs[i], UnitInfo{ItemID: uint64(i)}, op); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	groups, commits := st.BadgerGroups-st0.BadgerGroups, st.BadgerCommits-st0.BadgerCommits
	// Nothing has read Badger since the allocation: the applier gathered.
	if commits >= groups && groups > 1 {
		t.Errorf("Badger took %d groups in %d commits: nothing gathered", groups, commits)
	}
	for i, c := range cs {
		ci, err := s.Lookup(ctx, c)
		must(t, err)
		if ci.State != StateCommissioned {
			t.Fatalf("code %d: %s after its commission was acknowledged", i, ci.State)
		}
	}
	st = s.Stats()
	if st.BadgerGroups != st.Groups {
		t.Errorf("after a read: Badger holds %d of %d groups", st.BadgerGroups, st.Groups)
	}
	// Each code's record was written at its send and its commission; the
	// groups Badger took together wrote it once.
	if w := st.BadgerWrites - st0.BadgerWrites; commits < groups && w == 0 {
		t.Errorf("no writes counted")
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
	// A read right after a write sees it (no wait for the gathering).
	more := allocated(t, s, "BM", 502, 5)
	for _, c := range more {
		must(t, s.MarkSent(ctx, []tracecode.Code{c}, op))
		ci, err := s.Lookup(ctx, c)
		must(t, err)
		if ci.State != StateSent {
			t.Fatalf("%s: %s right after its send was acknowledged", c, ci.State)
		}
	}
}

// A busy group's journal block (over valueThreshold) goes to Badger's value
// log, not inline in the LSM tree; the journal reads back and verifies
// after a reopen.
func TestJournalBlocksInValueLog(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	must(t, err)
	const n = 3000
	must(t, s.AddToPool(ctx, "big", codes(77, 0, n), "test"))
	must(t, s.Close())
	var vlog int64
	paths, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	for _, p := range paths {
		fi, err := os.Stat(p)
		must(t, err)
		vlog += fi.Size() // a closed value log file is cut to what it holds
	}
	// Each code is in the import's journal block: at least its 20
	// characters.
	if vlog < 20*n {
		t.Fatalf("value log files hold %d bytes after a %d-code import: the journal block is not there", vlog, n)
	}
	s, err = Open(dir, Options{})
	must(t, err)
	defer s.Close()
	got := 0
	must(t, s.Events(ctx, 0, func(ev Event) error {
		got += len(ev.Codes)
		return nil
	}))
	if got != n {
		t.Fatalf("journal read back %d codes, want %d", got, n)
	}
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("verify: %+v", rep)
	}
}

package aggregation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// smallRedo: segments of 256 KiB, so that tests fill and wrap them with a
// few hundred KB of writes (their groups stay well below a segment).
var smallRedo = Options{redoSegSize: 256 << 10}

// copyLedger copies the ledger in src into dst: Badger's files (but its
// LOCK) if badgerFiles, the redo log's if redo. Runs of zeros in Badger's
// files are left as holes (its memtable files are 64 MB, mostly unwritten).
// The source store must be idle: this is the disk as a crash would leave it
// (Badger's files as of the copy, whatever was synced or not).
func copyLedger(t testing.TB, src, dst string, badgerFiles, redo bool) {
	t.Helper()
	// Badger deletes a memtable's log once it is flushed to a table, and
	// a table once compacted, in the background: a copy that lost a file
	// meanwhile is not a crash image (the table made from it may be newer
	// than the listing), and is made again.
	for try := 0; ; try++ {
		if copyLedgerOnce(t, src, dst, badgerFiles, redo) {
			return
		}
		if try == 10 {
			t.Fatalf("copy of %s: Badger's files kept changing under the copy", src)
		}
		ents, err := os.ReadDir(dst)
		must(t, err)
		for _, e := range ents {
			must(t, os.RemoveAll(filepath.Join(dst, e.Name())))
		}
	}
}

func copyLedgerOnce(t testing.TB, src, dst string, badgerFiles, redo bool) bool {
	t.Helper()
	ents, err := os.ReadDir(src)
	must(t, err)
	for _, e := range ents {
		switch {
		case e.Name() == redoDirName:
			if !redo {
				continue
			}
			must(t, os.MkdirAll(filepath.Join(dst, redoDirName), 0o755))
			rs, err := os.ReadDir(filepath.Join(src, redoDirName))
			must(t, err)
			for _, r := range rs {
				if !copyFile(t, filepath.Join(src, redoDirName, r.Name()), filepath.Join(dst, redoDirName, r.Name()), false) {
					return false
				}
			}
		case e.Name() == "LOCK" || e.IsDir() || !badgerFiles:
		default:
			if !copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), true) {
				return false
			}
		}
	}
	return true
}

// copyFile copies src to dst (without its runs of zeros if holes); false
// if src is gone.
func copyFile(t testing.TB, src, dst string, holes bool) bool {
	t.Helper()
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	must(t, err)
	defer out.Close()
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 && (!holes || bytes.ContainsFunc(buf[:n], func(r rune) bool { return r != 0 })) {
			_, werr := out.WriteAt(buf[:n], off)
			must(t, werr)
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		must(t, err)
	}
	must(t, out.Truncate(off))
	return true
}

// dump is every key and value of the store, in key order.
func dump(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	must(t, s.caughtUp())
	must(t, s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%q=%x", it.Item().Key(), v))
		}
		return nil
	}))
	return out
}

// reopenedAtCheckpoint opens a ledger in dir, lets fill write to it,
// reopens it (its checkpoint: Badger holds what fill wrote, synced) and
// copies Badger's files as of that checkpoint. Its segments are 1 MB, so
// that no segment fills, and no checkpoint follows, in a test's few writes.
func reopenedAtCheckpoint(t *testing.T, dir string, fill func(*Store)) (*Store, string) {
	t.Helper()
	o := Options{redoSegSize: 1 << 20}
	s, err := Open(dir, o)
	must(t, err)
	fill(s)
	must(t, s.Close())
	s, err = Open(dir, o)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	atCheckpoint := t.TempDir()
	copyLedger(t, dir, atCheckpoint, true, false)
	return s, atCheckpoint
}

func verifyOK(t testing.TB, s *Store, what string) VerifyReport {
	t.Helper()
	rep, err := s.Verify(ctx)
	must(t, err)
	if !rep.OK() {
		t.Fatalf("%s: verify:\n%s", what, strings.Join(rep.Problems, "\n"))
	}
	return rep
}

// TestRedoReplaysWhatBadgerLost: Badger commits unsynced; after a power
// loss it may hold only what its last checkpoint synced, or that and part
// of what came after. Either way the redo log's replay gives back the
// exact store every acknowledged write left — deletes included — and it
// verifies.
func TestRedoReplaysWhatBadgerLost(t *testing.T) {
	dir := t.TempDir()
	var cs []tracecode.Code
	s, atCheckpoint := reopenedAtCheckpoint(t, dir, func(s *Store) { cs = allocated(t, s, "B1", 100, 300) })
	ckpts := s.Stats().Checkpoints

	must(t, s.MarkSent(ctx, cs[:100], op))
	for i, c := range cs[:50] {
		must(t, s.Commission(ctx, c, UnitInfo{ItemID: uint64(i)}, op))
	}
	_, err := s.Record(ctx, Record{Type: "account", Key: "account/alice", Value: `{"roles":["qa"]}`}, qa)
	must(t, err)
	partway := t.TempDir() // Badger with some of the records after the checkpoint
	copyLedger(t, dir, partway, true, false)

	must(t, s.MarkSent(ctx, cs[100:200], op))
	for _, c := range cs[50:80] {
		must(t, s.Reject(ctx, c, "grade", op))
	}
	_, err = s.Record(ctx, Record{Type: "account", Key: "account/alice"}, qa) // deletes the key
	must(t, err)
	_, err = s.Record(ctx, Record{Type: "account", Key: "account/bob", Value: "{}"}, qa)
	must(t, err)
	want := dump(t, s)
	st := s.Stats()
	written := st.RedoRecords
	if written == 0 || st.Checkpoints != ckpts {
		t.Fatalf("%d redo records written, %d checkpoints since the copy: the test proves nothing", written, st.Checkpoints-ckpts)
	}

	for name, d := range map[string]string{"Badger as of the checkpoint": atCheckpoint, "Badger partway": partway} {
		copyLedger(t, dir, d, false, true) // the log as the last acknowledged write left it
		r, err := Open(d, Options{})
		if err != nil {
			t.Fatalf("%s: open: %v", name, err)
		}
		if r.redo.replayed != int(written) {
			t.Errorf("%s: %d records replayed, the store wrote %d", name, r.redo.replayed, written)
		}
		if got := dump(t, r); !slices.Equal(got, want) {
			t.Errorf("%s: the replayed store differs from the one written (%d keys, want %d)", name, len(got), len(want))
		}
		if _, _, err := r.Meta(ctx, "account/alice"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: a deleted meta key after replay: %v", name, err)
		}
		verifyOK(t, r, name)
		must(t, r.Close())
	}
}

// TestRedoBadgerAheadOfTheLog: a group's Badger commit runs beside its
// record's fdatasync, so a power loss between the two can leave Badger
// with the group and the log without its record. That group was never
// acknowledged; replaying the log's earlier records over it must not undo
// part of it (every group writes the journal head, counters, the batch):
// the store reopens as Badger had it — the group kept whole — verifies, and
// the next record follows the group's number.
func TestRedoBadgerAheadOfTheLog(t *testing.T) {
	dir := t.TempDir()
	o := Options{redoSegSize: 1 << 20} // no segment filled: no checkpoint after the reopen
	s, err := Open(dir, o)
	must(t, err)
	cs := allocated(t, s, "B1", 100, 300)
	must(t, s.Close())
	s, err = Open(dir, o)
	must(t, err)
	defer s.Close()
	must(t, s.MarkSent(ctx, cs[:100], op))
	for i, c := range cs[:40] {
		must(t, s.Commission(ctx, c, UnitInfo{ItemID: uint64(i)}, op))
	}
	_, err = s.Record(ctx, Record{Type: "account", Key: "account/alice", Value: `{"roles":["qa"]}`}, qa)
	must(t, err)
	// The last group: a commission (head, counters, the code) and the
	// deletion of a key an earlier record set.
	must(t, s.Commission(ctx, cs[40], UnitInfo{ItemID: 40}, op))
	_, err = s.Record(ctx, Record{Type: "account", Key: "account/alice"}, qa)
	must(t, err)
	want := dump(t, s)
	recs := redoRecords(t, dir)
	if len(recs) < 3 {
		t.Fatalf("%d redo records: the test proves nothing", len(recs))
	}
	last := recs[len(recs)-1]

	d := t.TempDir()
	copyLedger(t, dir, d, true, true)
	// The power loss: the last group's record never reached the disk.
	patchFile(t, filepath.Join(d, redoDirName, filepath.Base(last.seg)), last.off, make([]byte, last.end-last.off))
	r, err := Open(d, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if got := dump(t, r); !slices.Equal(got, want) {
		t.Errorf("Badger's last group undone in part by the replay: the store differs from the one written (%d keys, want %d)", len(got), len(want))
	}
	if _, _, err := r.Meta(ctx, "account/alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the last group's deletion undone: %v", err)
	}
	verifyOK(t, r, "Badger ahead of the log")
	if r.redo.next != last.lsn+1 {
		t.Errorf("next record %d, want %d (after the group Badger kept)", r.redo.next, last.lsn+1)
	}
	must(t, r.Commission(ctx, cs[41], UnitInfo{ItemID: 41}, op))
	want = dump(t, r)
	d2 := t.TempDir()
	copyLedger(t, d, d2, true, true)
	must(t, r.Close())
	r, err = Open(d2, Options{})
	must(t, err)
	if got := dump(t, r); !slices.Equal(got, want) {
		t.Errorf("after a write and a crash: the store differs (%d keys, want %d)", len(got), len(want))
	}
	verifyOK(t, r, "after a write and a crash")
	must(t, r.Close())
}

// redoRec is a record found in a log's segments.
type redoRec struct {
	seg      string
	off, end int // the record's bytes (header, payload)
	lsn      uint64
}

// redoRecords lists the valid records of every segment in dir/redo, by LSN.
func redoRecords(t testing.TB, dir string) []redoRec {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, redoDirName, "*.redo"))
	must(t, err)
	var out []redoRec
	for _, p := range segs {
		data, err := os.ReadFile(p)
		must(t, err)
		gen, lsn, ok := parseSegHeader(data)
		if !ok {
			continue
		}
		for off := redoBlock; ; lsn++ {
			payload, next, ok := recordAt(data, off, gen, lsn)
			if !ok {
				break
			}
			out = append(out, redoRec{p, off, off + redoRecHdr + len(payload), lsn})
			off = next
		}
	}
	slices.SortFunc(out, func(a, b redoRec) int { return int(a.lsn) - int(b.lsn) })
	return out
}

func patchFile(t testing.TB, path string, off int, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(b, int64(off))
	must(t, err)
	must(t, f.Close())
}

// flipByte inverts every bit of the byte at off: a byte made wrong
// whatever it was (writing a constant changes nothing when the byte
// already holds it — a payload's last byte is a hash's or a timestamp's,
// 0xff one time in 256).
func flipByte(t testing.TB, path string, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	if off < 0 || off >= len(data) {
		t.Fatalf("%s: offset %d outside its %d bytes", path, off, len(data))
	}
	patchFile(t, path, off, []byte{^data[off]})
}

// TestRedoTornTail: a last record torn by a crash (its payload half
// written, its header never written, a byte wrong) is discarded — it was
// never acknowledged — and every record before it is replayed; a damaged
// record with valid ones after it is damage, not a torn tail: the open is
// refused, naming the segment and the offset. No corruption panics.
func TestRedoTornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, smallRedo)
	must(t, err)
	must(t, s.Close())
	s, err = Open(dir, smallRedo)
	must(t, err)
	defer s.Close()
	snap := t.TempDir()
	copyLedger(t, dir, snap, true, false) // Badger as of the checkpoint: only the log has what follows
	ckpts := s.Stats().Checkpoints
	const n = 20
	for i := 1; i <= n; i++ {
		_, err := s.Record(ctx, Record{Type: "test", Key: fmt.Sprintf("t/%02d", i), Value: strconv.Itoa(i)}, op)
		must(t, err)
	}
	if c := s.Stats().Checkpoints; c != ckpts {
		t.Fatalf("%d checkpoints after the copy of Badger: the test proves nothing", c-ckpts)
	}
	copyLedger(t, dir, snap, false, true)
	recs := redoRecords(t, snap)
	if len(recs) < n {
		t.Fatalf("%d records in the log, want at least %d", len(recs), n)
	}
	recs = recs[len(recs)-n:] // t/01 … t/20, one group each
	last, mid := recs[n-1], recs[n/2-1]

	for _, tc := range []struct {
		name   string
		damage func(d string)
		kept   int    // records replayed; -1: the open is refused
		says   string // in the refusal
	}{
		{"payload half written", func(d string) {
			half := last.off + (last.end-last.off)/2
			patchFile(t, filepath.Join(d, redoDirName, filepath.Base(last.seg)), half, make([]byte, last.end-half))
		}, n - 1, ""},
		{"header never written", func(d string) {
			patchFile(t, filepath.Join(d, redoDirName, filepath.Base(last.seg)), last.off, make([]byte, redoRecHdr))
		}, n - 1, ""},
		{"one byte wrong in the last", func(d string) {
			flipByte(t, filepath.Join(d, redoDirName, filepath.Base(last.seg)), last.end-1)
		}, n - 1, ""},
		{"length past the segment", func(d string) {
			patchFile(t, filepath.Join(d, redoDirName, filepath.Base(last.seg)), last.off+4, []byte{0xff, 0xff, 0xff, 0xff})
		}, n - 1, ""},
		{"one byte wrong in the middle", func(d string) {
			flipByte(t, filepath.Join(d, redoDirName, filepath.Base(mid.seg)), mid.end-1)
		}, -1, fmt.Sprintf("offset %d", mid.off)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			copyLedger(t, snap, d, true, true)
			tc.damage(d)
			r, err := Open(d, Options{})
			if tc.kept < 0 {
				if err == nil {
					r.Close()
					t.Fatal("a damaged log opened")
				}
				if !strings.Contains(err.Error(), filepath.Base(mid.seg)) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "damaged") {
					t.Fatalf("refusal %q does not name the segment and %q", err, tc.says)
				}
				return
			}
			must(t, err)
			defer r.Close()
			for i := 1; i <= n; i++ {
				v, _, err := r.Meta(ctx, fmt.Sprintf("t/%02d", i))
				switch {
				case i <= tc.kept && (err != nil || v != strconv.Itoa(i)):
					t.Errorf("record t/%02d before the torn one: %q, %v", i, v, err)
				case i > tc.kept && !errors.Is(err, ErrNotFound):
					t.Errorf("record t/%02d of the torn record: %q, %v; want it discarded", i, v, err)
				}
			}
			verifyOK(t, r, "after the torn record")
			// The log goes on after the discarded record: a write, then a
			// crash copy of the reopened ledger replays it.
			_, err = r.Record(ctx, Record{Type: "test", Key: "t/after", Value: "x"}, op)
			must(t, err)
			again := t.TempDir()
			copyLedger(t, d, again, true, true)
			r2, err := Open(again, Options{})
			must(t, err)
			defer r2.Close()
			if v, _, err := r2.Meta(ctx, "t/after"); err != nil || v != "x" {
				t.Fatalf("write after the torn record, after a crash: %q, %v", v, err)
			}
			verifyOK(t, r2, "after a write past the torn record")
		})
	}

	// Random damage anywhere in the records: the open either refuses
	// naming the log, or keeps a prefix of the groups; never a panic,
	// never half a group.
	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	for try := 0; try < 12; try++ {
		d := t.TempDir()
		copyLedger(t, snap, d, true, true)
		rc := recs[rnd.IntN(n)]
		at := rc.off + rnd.IntN(rc.end-rc.off)
		junk := make([]byte, 1+rnd.IntN(64))
		for i := range junk {
			junk[i] = byte(rnd.Uint32())
		}
		patchFile(t, filepath.Join(d, redoDirName, filepath.Base(rc.seg)), at, junk)
		r, err := Open(d, Options{})
		if err != nil {
			if !strings.Contains(err.Error(), "redo log") {
				t.Fatalf("try %d: refusal %q does not name the redo log", try, err)
			}
			continue
		}
		kept := 0
		for i := 1; i <= n; i++ {
			if _, _, err := r.Meta(ctx, fmt.Sprintf("t/%02d", i)); err == nil {
				if kept != i-1 {
					t.Fatalf("try %d: record t/%02d present after a missing one", try, i)
				}
				kept = i
			}
		}
		verifyOK(t, r, fmt.Sprintf("try %d (%d groups kept)", try, kept))
		must(t, r.Close())
	}
}

// TestRedoControlTornSlot: a checkpoint whose write was torn leaves the
// one before it, in the control file's other slot; replay from there is
// harmless. With neither valid the open is refused, naming the file.
func TestRedoControlTornSlot(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, smallRedo)
	must(t, err)
	cs := allocated(t, s, "B1", 100, 50)
	must(t, s.MarkSent(ctx, cs, op))
	must(t, s.Close())
	last := s.redo.ctlSlot // the slot of the Close's checkpoint
	ctl := filepath.Join(dir, redoDirName, redoCtlName)
	d := t.TempDir()
	copyLedger(t, dir, d, true, true)
	patchFile(t, filepath.Join(d, redoDirName, redoCtlName), last*redoCtlSlot+20, []byte{0xde, 0xad}) // its write torn
	r, err := Open(d, Options{})
	must(t, err)
	if r.redo.replayed == 0 {
		t.Error("nothing replayed from the checkpoint before")
	}
	if ci, err := r.Lookup(ctx, cs[0]); err != nil || ci.State != StateSent {
		t.Fatalf("after replay from the older checkpoint: %+v, %v", ci, err)
	}
	verifyOK(t, r, "older checkpoint")
	must(t, r.Close())

	patchFile(t, ctl, 0, make([]byte, 2*redoCtlSlot))
	if r, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "no valid checkpoint") || !strings.Contains(err.Error(), ctl) {
		if err == nil {
			r.Close()
		}
		t.Fatalf("both slots damaged: %v", err)
	}
}

// TestRedoRecycles: a log written round its segments several times
// reuses them — no file made, none removed, every block written when the
// segment was made — and a crash copy of it replays and verifies.
func TestRedoRecycles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, smallRedo)
	must(t, err)
	defer s.Close()
	redo := filepath.Join(dir, redoDirName)
	inodes := func() map[string]uint64 {
		out := map[string]uint64{}
		ents, err := os.ReadDir(redo)
		must(t, err)
		for _, e := range ents {
			var st syscall.Stat_t
			must(t, syscall.Stat(filepath.Join(redo, e.Name()), &st))
			out[e.Name()] = st.Ino
			if st.Blocks*512 < st.Size {
				t.Errorf("%s: %d of %d bytes allocated", e.Name(), st.Blocks*512, st.Size)
			}
		}
		return out
	}
	before := inodes()
	if len(before) != redoSegments+1 {
		t.Fatalf("redo directory holds %v, want %d segments and the control file", before, redoSegments)
	}
	total := uint64(redoSegments) * uint64(smallRedo.redoSegSize)
	must(t, s.CreateBatch(ctx, spec("B1"), op))
	for i := 0; s.Stats().RedoBytes < 4*total; i++ {
		pool := fmt.Sprintf("P%d", i%5)
		must(t, s.AddToPool(ctx, pool, codes(200+i, 0, 400), "test"))
		if i%3 == 0 {
			_, err := s.AllocateFromPool(ctx, "B1", 1, pool, 300, op)
			must(t, err)
		}
		_, err := s.Record(ctx, Record{Type: "test", Key: "round", Value: strconv.Itoa(i)}, op)
		must(t, err)
	}
	st := s.Stats()
	t.Logf("%d records, %d bytes (%.1f times round %d segments), %d checkpoints", st.RedoRecords, st.RedoBytes, float64(st.RedoBytes)/float64(total), redoSegments, st.Checkpoints)
	// Each time round needs a checkpoint to free the segments (several
	// asked while one runs become one).
	if rounds := st.RedoBytes / total; st.Checkpoints < rounds {
		t.Errorf("%d checkpoints for %d times round the segments", st.Checkpoints, rounds)
	}
	if after := inodes(); !maps(before, after) {
		t.Fatalf("segments not reused in place: before %v, after %v", before, after)
	}
	pools, err := s.Pools(ctx)
	must(t, err)

	// A crash image is of a store whose writes have all happened: Badger
	// takes groups behind the log (the applier may still be gathering),
	// and a copy taken meanwhile, file by file, could hold a checkpoint
	// newer than the value log it copied before.
	must(t, s.Settled())
	c := t.TempDir()
	copyLedger(t, dir, c, true, true)
	r, err := Open(c, Options{})
	must(t, err)
	if r.redo.replayed == 0 {
		t.Error("the crash copy replayed nothing")
	}
	got, err := r.Pools(ctx)
	must(t, err)
	if fmt.Sprint(got) != fmt.Sprint(pools) {
		t.Errorf("pools after replay %v, want %v", got, pools)
	}
	verifyOK(t, r, "crash copy of a wrapped log")
	must(t, r.Close())
	must(t, s.Close())
	s2, err := Open(dir, smallRedo)
	must(t, err)
	verifyOK(t, s2, "reopened")
	must(t, s2.Close())
}

func maps(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRedoCrashRecovery: SIGKILL during a commit storm whose log wraps its
// (1 MB) segments again and again; reopened as a line would (synced, the
// log replayed), every acknowledged write is there and the ledger
// verifies.
func TestRedoCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 2))
	replayed := 0
	for run := 1; run <= 3; run++ {
		acks := crashOnce(t, dir, run, time.Duration(100+rnd.IntN(400))*time.Millisecond, crashEnv+"_REDO_SEG="+strconv.Itoa(1<<20))
		s, err := Open(dir, Options{redoSegSize: 1 << 20})
		if err != nil {
			t.Fatalf("run %d: reopen after SIGKILL: %v", run, err)
		}
		replayed += s.redo.replayed
		verifyOK(t, s, fmt.Sprintf("run %d", run))
		checkAcked(t, s, run, acks)
		t.Logf("run %d: %d acknowledged events present, %d records replayed", run, len(acks), s.redo.replayed)
		must(t, s.Close())
	}
	if replayed == 0 {
		t.Fatal("no run left anything in the log to replay: the test proves nothing")
	}
}

// TestSchema9GetsARedoLog: a schema 9 ledger (synced commits, no redo/)
// is upgraded: its log made, the version written; a ledger of schema 10 or
// later whose log was removed is refused, saying why.
func TestSchema9GetsARedoLog(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, smallRedo)
	must(t, err)
	allocated(t, s, "B1", 100, 20)
	must(t, s.caughtUp())
	must(t, s.db.Update(func(txn *badger.Txn) error { return txn.Set(keySchema, []byte("9")) }))
	must(t, s.Close())
	must(t, os.RemoveAll(filepath.Join(dir, redoDirName)))
	s, err = Open(dir, smallRedo)
	must(t, err)
	if v, err := peekSchema(s.db); err != nil || v != schemaVersion {
		t.Fatalf("schema after the upgrade %q, %v", v, err)
	}
	if _, err := os.Stat(filepath.Join(dir, redoDirName, redoCtlName)); err != nil {
		t.Fatalf("no redo log after the upgrade: %v", err)
	}
	verifyOK(t, s, "upgraded")
	must(t, s.Close())

	must(t, os.RemoveAll(filepath.Join(dir, redoDirName)))
	if s, err := Open(dir, smallRedo); err == nil || !strings.Contains(err.Error(), "redo log") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("schema %s without its log: %v", schemaVersion, err)
	}
}

// TestDiskGuardCountsRedo: the guard reports the redo log's preallocated
// segments and leaves them alone.
func TestDiskGuardCountsRedo(t *testing.T) {
	s := openSynced(t, smallRedo)
	g, err := s.DiskGuard(DiskGuardConfig{ReserveMB: 1, WarnMB: 1})
	must(t, err)
	r := g.Check()
	if want := uint64(redoSegments)*uint64(smallRedo.redoSegSize) + redoCtlFile; r.Redo != want {
		t.Fatalf("redo bytes %d, want %d", r.Redo, want)
	}
}

// FuzzRedoRecord: any bytes as a segment: reading records and their
// writes never panics; a record written reads back as written.
func FuzzRedoRecord(f *testing.F) {
	log := []written{{k: []byte("a/1"), v: []byte("one")}, {k: []byte("b/2"), del: true}, {k: []byte("c"), v: nil}}
	p := appendRedo(nil, log)
	seg := make([]byte, 3*redoBlock)
	copy(seg, segHeader(7, 42))
	h := seg[redoBlock:]
	copy(h, redoRecMagic)
	binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
	binary.BigEndian.PutUint64(h[8:], 42)
	binary.BigEndian.PutUint64(h[16:], 7)
	copy(h[redoRecHdr:], p)
	binary.BigEndian.PutUint32(h[24:], crcOf(h[:24], p))
	f.Add(seg)
	f.Add(seg[:redoBlock+10])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		gen, first, ok := parseSegHeader(b)
		if !ok {
			gen, first = 7, 42
		}
		payload, _, ok := recordAt(b, redoBlock, gen, first)
		if ok {
			_ = decodeRedo(payload, func(written) error { return nil })
		}
		findRecord(b, gen, first, redoBlock)
		if bytes.Equal(b, seg) {
			var got []written
			if !ok || decodeRedo(payload, func(w written) error { got = append(got, w); return nil }) != nil || len(got) != len(log) {
				t.Fatalf("the seed record does not read back: %v %+v", ok, got)
			}
			for i := range got {
				if !bytes.Equal(got[i].k, log[i].k) || !bytes.Equal(got[i].v, log[i].v) || got[i].del != log[i].del {
					t.Fatalf("write %d: %+v, want %+v", i, got[i], log[i])
				}
			}
		}
	})
}

// TestRedoRewritesValueLogPointers: after a power loss Badger's memtable
// log may hold a gathered commit's pointers into a value log whose pages
// never reached the disk (the two are written back independently). The
// replay rewrites every write of every record from the checkpoint on — not
// only those after the last group Badger holds — so that no journal block
// is left pointing at nothing.
func TestRedoRewritesValueLogPointers(t *testing.T) {
	dir := t.TempDir()
	s, atCheckpoint := reopenedAtCheckpoint(t, dir, func(s *Store) { must(t, s.AddToPool(ctx, "P0", codes(300, 0, 500), "test")) })
	st0 := s.Stats()
	const groups = 8
	for i := 1; i <= groups; i++ { // journal blocks over 1 KiB: in the value log
		must(t, s.AddToPool(ctx, fmt.Sprintf("P%d", i), codes(300+i, 0, 500), "test"))
	}
	must(t, s.Settled())
	st := s.Stats()
	if g, c := st.BadgerGroups-st0.BadgerGroups, st.BadgerCommits-st0.BadgerCommits; g < groups || c >= g || st.Checkpoints != st0.Checkpoints {
		t.Fatalf("%d groups in %d Badger commits, %d checkpoints: the test proves nothing", g, c, st.Checkpoints-st0.Checkpoints)
	}
	d := t.TempDir()
	copyLedger(t, dir, d, true, true)
	// The power loss: the memtable's log reached the disk, the value log's
	// pages written since the checkpoint did not.
	vlogs, _ := filepath.Glob(filepath.Join(atCheckpoint, "*.vlog"))
	if len(vlogs) == 0 {
		t.Fatal("no value log file in the copy")
	}
	for _, v := range vlogs {
		copyFile(t, v, filepath.Join(d, filepath.Base(v)), true)
	}
	r, err := Open(d, Options{})
	must(t, err)
	defer r.Close()
	if r.redo.replayed != groups {
		t.Errorf("%d records replayed, want %d", r.redo.replayed, groups)
	}
	verifyOK(t, r, "value log behind the memtable's log")
	got := 0
	must(t, r.Events(ctx, 0, func(ev Event) error {
		got += len(ev.Codes)
		return nil
	}))
	if want := 500 * (groups + 1); got != want {
		t.Errorf("the journal gives %d codes, want %d", got, want)
	}
}

// TestRedoStartsWriteBack: the checkpointer starts the write-back of
// Badger's logs once the redo log has grown by writeBackBytes, and not for
// a few small groups (a line's pace).
func TestRedoStartsWriteBack(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	must(t, err)
	defer s.Close()
	must(t, s.CreateBatch(ctx, spec("B1"), op))
	for i := range 5 {
		_, err := s.Record(ctx, Record{Type: "test", Key: "small", Value: strconv.Itoa(i)}, op)
		must(t, err)
	}
	time.Sleep(4 * writeBackTick)
	if st := s.Stats(); st.RedoWriteBacks != 0 {
		t.Fatalf("%d write-back passes after %d bytes of log, want none below %d", st.RedoWriteBacks, st.RedoBytes, writeBackBytes)
	}
	b0 := s.Stats().RedoBytes
	for i := 0; s.Stats().RedoBytes-b0 < writeBackBytes; i++ {
		must(t, s.AddToPool(ctx, "P", codes(1000*(i+1), 0, 400), "test"))
	}
	for deadline := time.Now().Add(5 * time.Second); s.Stats().RedoWriteBacks == 0; time.Sleep(writeBackTick) {
		if time.Now().After(deadline) {
			t.Fatalf("no write-back pass after %d bytes of log", s.Stats().RedoBytes-b0)
		}
	}
}

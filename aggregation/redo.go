package aggregation

// The redo log: the ledger's own write-ahead log (docs/ledger.md, "The
// redo log").
//
// Badger commits without syncing (SyncWrites off). A group is durable once
// its redo record — every key the group set or deleted, with its full
// value — is written to a segment of the redo log and fdatasync'ed; its
// callers are answered then, and Badger takes it after (applier.go), so
// Badger never holds a group whose record is not durable. Each group
// writes its record's LSN to Badger (keyRedo): recovery replays the
// records after the last one Badger holds. (Schema 11 let Badger commit
// beside the sync, and so be ahead of the log after a power loss; recovery
// still replays the log's earlier records without undoing such a group's
// writes — see recover — which costs nothing when it cannot happen.)
// The segments are preallocated by writing zeros,
// so that a record overwrites blocks that are already allocated and written:
// its fdatasync flushes data only, with no ext4 journal commit to wait for
// (Badger's own memtable log is a sparse file: a sync of it also commits
// the extent conversions and waits behind every other metadata commit).
//
// Layout of redo/ in the ledger's directory:
//
//	checkpoint   control file, 4 KiB, made whole (zeros, synced, renamed into
//	             place) and then only overwritten: two slots, at offsets 0 and
//	             512 (each in a sector of its own), written in turn; the valid
//	             one with the higher generation is the checkpoint. A slot:
//	             magic "TRCCKPT1" (8), version (4) 1, zero (4), LSN (8) of the
//	             first record to replay, generation (8) of the segment that
//	             record starts, CRC-32C (4) of the 32 bytes before it. A torn
//	             slot write leaves the other slot, the checkpoint before, whose
//	             segments are freed only once the new one is synced. Nothing
//	             is allocated after the log is made: on a full disk the log
//	             and its checkpoints go on
//	NN.redo      segment NN (redoSegments of them, redoSegSize each, zeros
//	             when made). Its first 4 KiB are its header: magic "TRCREDO1"
//	             (8), version (4) 1, zero (4), generation (8), LSN (8) of its
//	             first record, CRC-32C (4) of the 32 bytes before it. Records
//	             follow, each at a 4 KiB boundary: magic "RDO1" (4), payload
//	             length (4), LSN (8), generation (8), CRC-32C (4) of these 24
//	             bytes and the payload, zero (4), the payload, zeros to the next
//	             4 KiB boundary
//
// A payload is the group's writes in order: per write an op byte (1 set,
// 2 delete), uvarint key length, key, and for a set uvarint value length,
// value. All integers are big-endian. Records are numbered (LSN) one by
// one; every segment a writer starts gets the next generation. A checkpoint
// is taken whenever the writer starts a segment, and names the segment it
// left (the lag, below): once every record before that segment's first is
// durable in Badger (Badger synced), the control file names that segment
// and the older ones are free for reuse. Recovery (Open)
// replays, in order, every valid record from the checkpoint on: a record
// whose magic, generation, LSN or CRC is not the expected one, or a zero
// header, ends the log (a torn last record, never acknowledged, is
// discarded) — unless a valid later record of the same segment follows,
// which is damage, not a torn tail, and refuses the open.
//
// The lag. The applier holds a code's allocated or sent
// record back until the code's next write replaces it (applier.go), and a
// checkpoint needs Badger to hold every write of the records before the
// one it names: what is still held back of them is written then. Naming
// the segment just begun wrote the records of the last codes sent before
// it, whose commissions were a few records further on — at a full load
// half the code records Badger took (bench ledger at 1M units: 0.37 of
// 0.71 keys per transition). Naming the segment left gives every
// held-back record at least one segment's worth of records for its next
// write, and the checkpointer's flush waits until Badger has the groups
// of every record before the segment begun (applier.hurryFlush), so that
// a queued group replaces what it can first. Cost: the log keeps two
// segments, not one (two free of four when a checkpoint is done), and a
// crash replays up to two segments.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/tracline/tracline/aggregation/ledgerbench/benchstat"
	"golang.org/x/sys/unix"
)

const (
	redoDirName  = "redo"
	redoCtlName  = "checkpoint"
	redoSegments = 4
	// redoSegSize is a segment's default size; it grows with the memtable
	// so that a segment holds at least two of Badger's largest transactions
	// (redoSegMin).
	redoSegSize = 16 << 20
	redoBlock   = 4096 // segment header; records start at multiples of it
	redoRecHdr  = 32
	redoCtlSize = 36
	redoVersion = 1

	redoSet = 1
	redoDel = 2
)

var (
	redoSegMagic = []byte("TRCREDO1")
	redoCtlMagic = []byte("TRCCKPT1")
	redoRecMagic = []byte("RDO1")
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// redoSegMin is the smallest segment that holds two of the largest
// transactions Badger accepts with a memtable of memMB (15% of it), each
// as a record (a record's payload is at most Badger's estimate of the
// transaction's size, which counts more than 11 bytes per entry).
func redoSegMin(memMB int) int64 {
	txn := int64(memMB) << 20 * 15 / 100
	return roundBlock(2*(txn+redoRecHdr) + redoBlock)
}

func roundBlock(n int64) int64 { return (n + redoBlock - 1) / redoBlock * redoBlock }

// redoSeg is one segment file.
type redoSeg struct {
	name  string
	f     *os.File // nil until the log writes
	size  int64
	gen   uint64 // of its valid header, 0 if none
	first uint64 // LSN of its first record, per its header
}

// redoLog is the ledger's redo log. One append runs at a time (the
// committer's flights are sequential); the checkpointer runs beside it.
type redoLog struct {
	db    *badger.DB
	dir   string // the redo directory
	bdir  string // Badger's directory
	log   *slog.Logger
	write bool // records are written (a synced store); false: NoSync
	size  int64
	segs  []*redoSeg

	// The writer's state (the committer's appends, one at a time).
	cur      *redoSeg // nil: the next record starts a segment
	prev     redoCkpt // the first record and generation of the segment before cur
	off      int64    // where cur's next record goes
	next     uint64   // LSN of the next record
	gen      uint64   // cur's generation; when cur is nil, the next segment's
	named    bool     // the control file already names gen (no checkpoint when it starts)
	limit    int64    // the largest record a segment holds
	buf      []byte
	broken   error // a failed write: the log's state is unknown, every later append fails
	replayed int   // records applied at Open
	dirty    bool  // Open found something to checkpoint (see openRedo)
	ctl      *os.File
	ctlSlot  int  // the control file's slot holding the last checkpoint (checkpoint's, one at a time)
	started  bool // the checkpointer runs

	mu      sync.Mutex
	cond    *sync.Cond
	durGen  uint64                  // the durable checkpoint's generation: segments below it are free
	held    uint64                  // the last record Badger holds (applier.go); a checkpoint waits for it
	hurry   func(lsn, after uint64) // asks the applier to commit what it gathers, and to write what it holds back of the records before lsn once it holds those before after (set before the first record)
	halt    bool                    // the checkpointer is asked to stop
	want    *redoCkpt
	busy    bool
	ckptErr error     // the last checkpoint's failure, until one succeeds
	failed  *redoCkpt // the checkpoint that failed, asked again when a segment is needed
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	pending pendingRec // the writer's (write, then sync)
	// applied is the LSN of the last group Badger held at Open (keyRedo),
	// appliedVer the version of its writes (recover).
	applied, appliedVer uint64
	// protectK: the log lacks the record of the group applied (recover).
	protectK bool

	records, bytes, checkpoints atomic.Uint64
	segWait                     atomic.Int64
	// writeBacks counts the passes that started the write-back of
	// Badger's logs (startWriteBack).
	writeBacks atomic.Uint64

	// events: the slow syncs and the checkpoints, for WriteStages.
	events eventLog
}

// redoCkpt is a checkpoint asked for: lsn, the first record of generation
// gen, once Badger holds every record before it; after is the first record
// of the segment the writer began then (see the lag, above).
type redoCkpt struct{ lsn, gen, after uint64 }

// redoControl is a checkpoint as the control file holds it.
type redoControl struct{ lsn, gen uint64 }

const redoCtlFile = 4096 // the control file's size; slot i at i*redoCtlSlot
const redoCtlSlot = 512

func (c redoControl) encode() []byte {
	b := make([]byte, redoCtlSize)
	copy(b, redoCtlMagic)
	binary.BigEndian.PutUint32(b[8:], redoVersion)
	binary.BigEndian.PutUint64(b[16:], c.lsn)
	binary.BigEndian.PutUint64(b[24:], c.gen)
	binary.BigEndian.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli))
	return b
}

func decodeRedoControl(b []byte) (redoControl, error) {
	if len(b) < redoCtlSize || string(b[:8]) != string(redoCtlMagic) {
		return redoControl{}, errors.New("no checkpoint")
	}
	b = b[:redoCtlSize]
	if crc32.Checksum(b[:32], castagnoli) != binary.BigEndian.Uint32(b[32:]) {
		return redoControl{}, errors.New("checksum mismatch")
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != redoVersion {
		return redoControl{}, fmt.Errorf("format version %d, this build reads %d", v, redoVersion)
	}
	c := redoControl{binary.BigEndian.Uint64(b[16:]), binary.BigEndian.Uint64(b[24:])}
	if c.lsn == 0 || c.gen == 0 {
		return redoControl{}, fmt.Errorf("record %d of generation %d (both start at 1)", c.lsn, c.gen)
	}
	return c, nil
}

func segHeader(gen, first uint64) []byte {
	b := make([]byte, redoBlock)
	copy(b, redoSegMagic)
	binary.BigEndian.PutUint32(b[8:], redoVersion)
	binary.BigEndian.PutUint64(b[16:], gen)
	binary.BigEndian.PutUint64(b[24:], first)
	binary.BigEndian.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli))
	return b
}

// parseSegHeader returns the generation and first LSN of a segment's
// header; ok is false for anything but a valid header of this version.
func parseSegHeader(b []byte) (gen, first uint64, ok bool) {
	if len(b) < 36 || string(b[:8]) != string(redoSegMagic) ||
		crc32.Checksum(b[:32], castagnoli) != binary.BigEndian.Uint32(b[32:]) ||
		binary.BigEndian.Uint32(b[8:]) != redoVersion {
		return 0, 0, false
	}
	gen, first = binary.BigEndian.Uint64(b[16:]), binary.BigEndian.Uint64(b[24:])
	return gen, first, gen > 0 && first > 0
}

func segName(i int) string { return fmt.Sprintf("%02d.redo", i) }

// appendRedo appends the payload of a record of log's writes to b.
func appendRedo(b []byte, log []written) []byte {
	for _, w := range log {
		if w.del {
			b = append(b, redoDel)
			b = binary.AppendUvarint(b, uint64(len(w.k)))
			b = append(b, w.k...)
			continue
		}
		b = append(b, redoSet)
		b = binary.AppendUvarint(b, uint64(len(w.k)))
		b = append(b, w.k...)
		b = binary.AppendUvarint(b, uint64(len(w.v)))
		b = append(b, w.v...)
	}
	return b
}

// checkpointAll makes everything Badger holds durable and names a new
// generation, starting at the next record, in the control file: every
// segment is free after it. Nothing writes meanwhile (Open, Close).
func (r *redoLog) checkpointAll() error {
	gen := r.gen + 1
	if err := r.checkpoint(r.next, gen); err != nil {
		return err
	}
	r.cur, r.off, r.gen, r.named = nil, 0, gen, true
	r.mu.Lock()
	r.durGen = gen
	r.mu.Unlock()
	return nil
}

// checkpoint makes every write Badger applied durable, then records lsn
// (of generation gen) as where replay starts.
func (r *redoLog) checkpoint(lsn, gen uint64) error {
	t0 := time.Now()
	defer func() { r.events.add(LedgerEvent{At: t0, Ms: benchstat.Ms(time.Since(t0)), What: EventCheckpoint}) }()
	if err := syncBadger(r.db, r.bdir); err != nil {
		return fmt.Errorf("redo checkpoint: %w", err)
	}
	if err := r.writeControl(redoControl{lsn, gen}); err != nil {
		return err
	}
	r.checkpoints.Add(1)
	return nil
}

// syncBadger makes durable every write Badger has applied. db.Sync syncs
// the live memtable's log and the live value log file only; a memtable
// waiting to be flushed to a table has a log of its own, and a value log
// file Badger finished was written back (msync) but its new size and a new
// file's directory entry were not: each is synced here by fsync of the
// file (the logs are shared mappings: fsync writes back what was written
// through them, as msync would; a file with nothing dirty costs a system
// call). A memtable log deleted meanwhile was flushed: its table is synced
// by Badger before the log goes.
func syncBadger(db *badger.DB, dir string) error {
	if err := db.Sync(); err != nil {
		return err
	}
	err := eachBadgerLog(dir, func(name string, f *os.File) error {
		if err := f.Sync(); err != nil { // fsync, not fdatasync: a new log's directory entry too
			return fmt.Errorf("sync %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// eachBadgerLog calls fn with each of Badger's memtable and value logs in
// dir, open for reading; a log deleted meanwhile (flushed, or gone with its
// value log) is skipped. It stops at fn's first error.
func eachBadgerLog(dir string, fn func(name string, f *os.File) error) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".mem") && !strings.HasSuffix(n, ".vlog") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, n))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = fn(n, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeControl writes c to the slot that does not hold the last
// checkpoint and syncs it.
func (r *redoLog) writeControl(c redoControl) error {
	slot := 1 - r.ctlSlot
	if _, err := r.ctl.WriteAt(c.encode(), int64(slot*redoCtlSlot)); err != nil {
		return fmt.Errorf("redo checkpoint %s: %w", r.ctl.Name(), err)
	}
	if err := unix.Fdatasync(int(r.ctl.Fd())); err != nil {
		return fmt.Errorf("redo checkpoint %s: fdatasync: %w", r.ctl.Name(), err)
	}
	r.ctlSlot = slot
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// ensureSegments makes the missing segments (zeros written, synced, then
// renamed into place) and rewrites with zeros any whose blocks are not all
// allocated (a copy made sparse): its records would allocate blocks, and
// each sync would commit the file system's journal. It runs after the
// checkpoint of Open, when every segment is free. It opens every segment
// for writing.
func (r *redoLog) ensureSegments() error {
	made := false
	r.limit = 0
	for _, s := range r.segs {
		if s.size < 0 {
			s.size = r.size
			if err := zeroFile(s.name, s.size, true); err != nil {
				return err
			}
			made = true
		} else if sparse(s.name, s.size) {
			r.log.Warn("ledger redo log segment was sparse; rewritten with zeros", "segment", s.name)
			if err := zeroFile(s.name, s.size, false); err != nil {
				return err
			}
			s.gen, s.first = 0, 0
		}
		f, err := os.OpenFile(s.name, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("redo log: %w", err)
		}
		s.f = f
		if r.limit == 0 || s.size-redoBlock < r.limit {
			r.limit = s.size - redoBlock
		}
	}
	if made {
		if err := syncDir(r.dir); err != nil {
			return fmt.Errorf("redo log: %w", err)
		}
	}
	return nil
}

// sparse reports whether fewer blocks are allocated to path than its size.
func sparse(path string, size int64) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	return st.Blocks*512 < size
}

// zeroFile writes size zero bytes to path and syncs it; fresh: write a
// temporary file and rename it into place, so that a segment exists only
// whole.
func zeroFile(path string, size int64, fresh bool) error {
	p, flags := path, os.O_WRONLY
	if fresh {
		p, flags = path+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY
	}
	f, err := os.OpenFile(p, flags, 0o644)
	if err != nil {
		return fmt.Errorf("redo log: %w", err)
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size && err == nil; off += int64(len(zeros)) {
		_, err = f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && fresh {
		err = os.Rename(p, path)
	}
	if err != nil {
		os.Remove(p)
		return fmt.Errorf("redo log: making segment %s (%d MB of zeros): %w", path, size>>20, err)
	}
	return nil
}

// checkpointer takes the checkpoints the writer asks for, one at a time,
// the latest asked first (an older one is then pointless).
func (r *redoLog) checkpointer() {
	defer close(r.stopped)
	tick := time.NewTicker(writeBackTick)
	defer tick.Stop()
	var wrote uint64 // the log's bytes at the last write-back pass
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
			if n := r.bytes.Load(); n-wrote >= writeBackBytes {
				wrote = n
				startWriteBack(r.bdir)
				r.writeBacks.Add(1)
			}
			continue
		case <-r.wake:
		}
		r.mu.Lock()
		w := r.want
		r.want, r.busy = nil, w != nil
		// Badger must hold every record before the one named first.
		for w != nil && r.held+1 < w.lsn && !r.halt {
			if r.hurry != nil {
				r.hurry(w.lsn, w.after) // never blocks for long
			}
			r.cond.Wait()
		}
		halted := r.halt
		if halted {
			r.busy = false
			r.cond.Broadcast()
		}
		r.mu.Unlock()
		if w == nil || halted {
			continue
		}
		err := r.checkpoint(w.lsn, w.gen)
		if err != nil {
			r.log.Error("ledger redo checkpoint failed; the log keeps its segments", "err", err)
		}
		r.mu.Lock()
		r.busy = false
		if err != nil {
			r.ckptErr, r.failed = err, w
		} else {
			r.ckptErr, r.failed = nil, nil
			r.durGen = max(r.durGen, w.gen)
		}
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

// Badger commits without syncing: what it writes waits in the page cache
// until the kernel writes it back (after 30 s, by default) or a checkpoint
// syncs it. Under a full load a checkpoint then found 16 MB and more of
// Badger's logs dirty and synced them in one burst of 150–300 ms, while the
// redo log's own syncs queued behind it on the disk. So whenever the log has
// grown by writeBackBytes since the last pass, the checkpointer starts the
// write-back of Badger's logs (sync_file_range, SYNC_FILE_RANGE_WRITE: it
// does not wait for the writes, nor flush the disk's cache), checking every
// writeBackTick: the disk takes Badger's data in steps as it comes. It is a
// hint, nothing durable rests on it (the checkpoint still syncs everything),
// and its errors are ignored. A line at 1,200 units/min writes 1 MiB of log
// in about half a minute: a pass or two a minute.
const (
	writeBackTick  = 50 * time.Millisecond
	writeBackBytes = 1 << 20
)

// startWriteBack starts the write-back of the dirty pages of Badger's
// memtable and value logs in dir.
func startWriteBack(dir string) {
	_ = eachBadgerLog(dir, func(_ string, f *os.File) error {
		_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE) // a hint: see writeBackTick
		return nil
	})
}

// writeRec writes the group's writes as record lsn, the next one, to its
// segment (the page cache: a process killed from here on leaves it to the
// next Open); sync then makes it durable. One record is written and synced
// at a time.
func (r *redoLog) writeRec(log []written, lsn uint64) error {
	if r.broken != nil {
		return r.broken
	}
	if lsn != r.next {
		r.broken = fmt.Errorf("redo log: record %d sent, %d expected", lsn, r.next)
		return r.broken
	}
	if err := r.writeRecord(log, lsn); err != nil {
		r.broken = fmt.Errorf("redo log: %w", err)
		return r.broken
	}
	return nil
}

// sync makes the record writeRec wrote durable.
func (r *redoLog) sync() error {
	if r.broken != nil {
		return r.broken
	}
	if err := r.syncRecord(); err != nil {
		r.broken = fmt.Errorf("redo log: %w", err)
		return r.broken
	}
	return nil
}

func (r *redoLog) writeRecord(log []written, lsn uint64) error {
	// buf: room for a segment header, then the record.
	b := appendRedo(append(r.buf[:0], make([]byte, redoBlock+redoRecHdr)...), log)
	n := len(b) - redoBlock - redoRecHdr
	b = append(b, make([]byte, int(roundBlock(int64(len(b))))-len(b))...)
	r.buf = b
	rec := b[redoBlock:]
	if int64(len(rec)) > r.limit || n > 1<<31 {
		return fmt.Errorf("record %d of %d bytes does not fit a segment (%d bytes after its header)", lsn, len(rec), r.limit)
	}
	fresh := r.cur == nil || r.off+int64(len(rec)) > r.cur.size
	if fresh {
		if err := r.startSegment(lsn); err != nil {
			return err
		}
	}
	h := rec[:redoRecHdr]
	copy(h, redoRecMagic)
	binary.BigEndian.PutUint32(h[4:], uint32(n))
	binary.BigEndian.PutUint64(h[8:], lsn)
	binary.BigEndian.PutUint64(h[16:], r.gen)
	binary.BigEndian.PutUint32(h[24:], crcOf(h[:24], rec[redoRecHdr:redoRecHdr+n]))
	out, at := rec, r.off
	if fresh {
		copy(b, segHeader(r.gen, lsn))
		out, at = b, 0
	}
	if _, err := r.cur.f.WriteAt(out, at); err != nil {
		return fmt.Errorf("segment %s: write at %d: %w", r.cur.name, at, err)
	}
	r.off = at + int64(len(out))
	r.next++
	r.pending = pendingRec{lsn: lsn, bytes: len(out), fresh: fresh, ok: true}
	return nil
}

func (r *redoLog) syncRecord() error {
	p := r.pending
	if !p.ok {
		return errors.New("sync with no record written")
	}
	r.pending = pendingRec{}
	t0 := time.Now()
	if err := unix.Fdatasync(int(r.cur.f.Fd())); err != nil {
		return fmt.Errorf("segment %s: fdatasync: %w", r.cur.name, err)
	}
	if d := time.Since(t0); d >= slowSync {
		r.events.add(LedgerEvent{At: t0, Ms: benchstat.Ms(d), What: EventSlowSync, Bytes: p.bytes})
	}
	r.records.Add(1)
	r.bytes.Add(uint64(p.bytes))
	if p.fresh && !r.named {
		// Record lsn and its segment's header are durable: the segment
		// before it is complete, and once Badger holds every record
		// before that one's first (the checkpointer waits for the
		// applier), the checkpoint may name it. It names the segment
		// left, not the one begun: see the lag, above.
		r.ask(r.prev.lsn, r.prev.gen, p.lsn)
	}
	return nil
}

// pendingRec is the record written and not yet synced.
type pendingRec struct {
	lsn   uint64
	bytes int
	fresh bool // it began a segment
	ok    bool
}

// startSegment picks a free segment for the record lsn, waiting for the
// checkpoint that frees one if need be, and makes it current (its header
// is written with the record).
func (r *redoLog) startSegment(lsn uint64) error {
	if r.cur != nil {
		r.prev = redoCkpt{lsn: r.cur.first, gen: r.gen}
		r.gen++
		r.named = false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var t0 time.Time
	retried := false
	for {
		var free *redoSeg
		for _, s := range r.segs {
			if s.f != nil && s != r.cur && s.gen < r.durGen && (free == nil || s.gen < free.gen) {
				free = s
			}
		}
		if free != nil {
			if !t0.IsZero() {
				r.segWait.Add(int64(time.Since(t0)))
			}
			free.gen, free.first = r.gen, lsn
			r.cur, r.off = free, redoBlock
			return nil
		}
		if r.want == nil && !r.busy {
			if r.failed == nil || retried {
				if r.ckptErr == nil {
					return fmt.Errorf("no free segment for record %d and no checkpoint under way", lsn)
				}
				return fmt.Errorf("no free segment for record %d: %w", lsn, r.ckptErr)
			}
			// The checkpoint that frees a segment failed: once more (a
			// full disk freed meanwhile, say), then the error.
			r.want, r.failed, retried = r.failed, nil, true
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
		if t0.IsZero() {
			t0 = time.Now()
		}
		r.cond.Wait()
	}
}

// badgerHas says Badger holds every record up to lsn.
func (r *redoLog) badgerHas(lsn uint64) {
	r.mu.Lock()
	if lsn > r.held {
		r.held = lsn
		r.cond.Broadcast()
	}
	r.mu.Unlock()
}

// ask asks the checkpointer for a checkpoint at lsn, the first record of
// generation gen, to be taken once Badger holds every record before it.
func (r *redoLog) ask(lsn, gen, after uint64) {
	r.mu.Lock()
	if gen <= r.durGen {
		r.mu.Unlock()
		return // named already (the segment begun after Open)
	}
	r.want = &redoCkpt{lsn, gen, after}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// close stops the checkpointer and, if final, takes a last checkpoint
// (then nothing is left to replay); it closes the segments.
func (r *redoLog) close(final bool) error {
	if r.started {
		r.mu.Lock()
		r.halt = true
		r.cond.Broadcast()
		r.mu.Unlock()
		close(r.stop)
		<-r.stopped
		r.started = false
	}
	var err error
	if final && r.broken == nil {
		err = r.checkpointAll()
	}
	if r.ctl != nil {
		err = errors.Join(err, r.ctl.Close())
		r.ctl = nil
	}
	for _, s := range r.segs {
		if s.f != nil {
			err = errors.Join(err, s.f.Close())
			s.f = nil
		}
	}
	return err
}

// segmentBytes is the size of the log's segments on disk.
func (r *redoLog) segmentBytes() int64 {
	var n int64
	for _, s := range r.segs {
		n += max(s.size, 0)
	}
	return n
}

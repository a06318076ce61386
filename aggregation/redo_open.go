package aggregation

// Opening the redo log: its checkpoint read, its segments found, its
// records replayed into Badger (the format: redo.go).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	badger "github.com/dgraph-io/badger/v4"
)

// openRedo opens the redo log of the ledger in dir (creating it for a new
// ledger or one of an older schema) and replays it into db. The caller
// then loads the store and calls begin. It returns nil, nil for a ledger
// whose schema this build does not know: load refuses it, and nothing here
// touches it.
func openRedo(db *badger.DB, dir string, write bool, segSize int64, log *slog.Logger) (_ *redoLog, err error) {
	schema, err := peekSchema(db)
	if err != nil {
		return nil, err
	}
	if schema != "" && schema != schemaVersion && !slices.Contains(upgradable, schema) {
		return nil, nil
	}
	r := &redoLog{db: db, dir: filepath.Join(dir, redoDirName), bdir: dir, log: log, write: write, size: segSize,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	ctlPath := filepath.Join(r.dir, redoCtlName)
	_, err = os.Stat(ctlPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if schema == schemaVersion {
			return nil, fmt.Errorf("schema %s ledger without its redo log (%s is missing): the redo log holds writes the store may lack; restore the directory from a backup", schema, ctlPath)
		}
		// A new ledger, or one of an older schema (synced writes: nothing
		// to replay): a log with nothing in it.
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return nil, fmt.Errorf("redo log: %w", err)
		}
		if err := syncDir(dir); err != nil {
			return nil, fmt.Errorf("redo log: %w", err)
		}
		if err := makeRedoControl(r.dir); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("redo log: %w", err)
	}
	f, err := os.OpenFile(ctlPath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("redo log: %w", err)
	}
	r.ctl = f
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	ctl, err := r.readControl()
	if err != nil {
		return nil, err
	}
	if err := r.listSegments(); err != nil {
		return nil, err
	}
	maxGen, err := r.recover(ctl)
	if err != nil {
		return nil, err
	}
	r.gen, r.durGen = max(maxGen, ctl.gen), ctl.gen
	// Anything replayed, or a segment begun under the generation the
	// control file names: the next writer must start a new generation,
	// after every header on disk, so that none is mistaken for its segment.
	r.dirty = r.replayed > 0 || maxGen >= ctl.gen
	return r, nil
}

// begin runs once the store is loaded: a checkpoint if anything was
// replayed or the load wrote (a store that writes always takes it: the
// load's writes, a schema upgrade, go to Badger unsynced), then the
// segments and the checkpointer.
func (r *redoLog) begin() error {
	if r.write || r.dirty {
		if err := r.checkpointAll(); err != nil {
			return err
		}
	} else {
		r.named = true
	}
	if r.write {
		if err := r.ensureSegments(); err != nil {
			return err
		}
	}
	r.started = true
	r.held = r.next - 1 // everything replayed is in Badger
	go r.checkpointer()
	return nil
}

// upgradable are the schema versions Store.load upgrades to schemaVersion.
var upgradable = []string{"6", "7", "8", "9", "10"}

// peekSchema reads the stored schema version ("" for a new ledger).
func peekSchema(db *badger.DB) (string, error) {
	var v []byte
	err := db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(keySchema)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = it.ValueCopy(nil)
		return err
	})
	return string(v), err
}

// listSegments finds the segment files and reads their headers. Leftovers
// of a segment being made when the controller died are removed.
func (r *redoLog) listSegments() error {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("redo log: %w", err)
	}
	have := map[string]bool{}
	for _, e := range ents {
		switch name := e.Name(); {
		case strings.HasSuffix(name, ".tmp"):
			if err := os.Remove(filepath.Join(r.dir, name)); err != nil {
				return fmt.Errorf("redo log: %w", err)
			}
		case strings.HasSuffix(name, ".redo"):
			have[name] = true
		}
	}
	for i := 0; i < 100; i++ {
		name := segName(i)
		if !have[name] {
			if i < redoSegments {
				r.segs = append(r.segs, &redoSeg{name: filepath.Join(r.dir, name), size: -1}) // made by ensureSegments if this store writes
			}
			continue
		}
		delete(have, name)
		p := filepath.Join(r.dir, name)
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("redo log: %w", err)
		}
		if st.Size() < 2*redoBlock || st.Size()%redoBlock != 0 {
			return fmt.Errorf("redo log segment %s: size %d bytes is not a multiple of %d of at least %d", p, st.Size(), redoBlock, 2*redoBlock)
		}
		s := &redoSeg{name: p, size: st.Size()}
		if s.gen, s.first, err = identify(p, s.size); err != nil {
			return fmt.Errorf("redo log segment %s: %w", p, err)
		}
		for len(r.segs) < i {
			r.segs = append(r.segs, &redoSeg{name: filepath.Join(r.dir, segName(len(r.segs))), size: -1})
		}
		r.segs = append(r.segs, s)
	}
	if len(have) > 0 {
		return fmt.Errorf("redo log %s: unexpected segment files %v (segments are 00.redo to 99.redo)", r.dir, sortedKeys(have))
	}
	return nil
}

// identify reads the generation and first LSN of segment p from its
// header or, if the header is not valid (its write torn, the record's
// sectors written), from its first record, which carries both; 0, 0 if
// neither is valid.
func identify(p string, size int64) (gen, first uint64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	b := make([]byte, redoBlock+redoRecHdr)
	if _, err := f.ReadAt(b, 0); err != nil {
		return 0, 0, err
	}
	var ok bool
	if gen, first, ok = parseSegHeader(b); ok {
		return gen, first, nil
	}
	h := b[redoBlock:]
	if string(h[:4]) != string(redoRecMagic) {
		return 0, 0, nil
	}
	n := int64(binary.BigEndian.Uint32(h[4:]))
	if redoBlock+redoRecHdr+n > size {
		return 0, 0, nil
	}
	rec := make([]byte, redoRecHdr+n)
	if _, err := f.ReadAt(rec, redoBlock); err != nil {
		return 0, 0, err
	}
	g, lsn := binary.BigEndian.Uint64(h[16:]), binary.BigEndian.Uint64(h[8:])
	if _, _, ok := recordAt(rec, 0, g, lsn); !ok || g == 0 || lsn == 0 {
		return 0, 0, nil
	}
	return g, lsn, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// recover replays every valid record from the checkpoint on into Badger,
// in order, and sets r.next after the last. Badger may already hold some
// of them: keyRedo names the last group it holds, K.
//
// If the log has K's record, every record is replayed in full: the last
// write of every key the log's groups wrote is rewritten, whatever Badger
// made of it. That matters since the journal's blocks go to Badger's value
// log: after a power loss Badger's memtable log may hold a group's
// pointers into a value log whose pages never reached the disk (the two
// are written back independently), and the pointer is only replaced by a
// rewrite. (Badger holds nothing before the checkpoint that was not synced
// whole.)
//
// If the log lacks K's record — a ledger written before Badger took groups
// behind the log, whose commit ran beside the record's sync, after a power
// loss between the two — records before K are replayed without the writes
// whose latest version in Badger is K's, so that K's writes stay whole;
// the next record then follows K. (Those builds kept every value inline:
// no pointer can dangle.)
//
// It returns the highest generation of any valid segment header.
func (r *redoLog) recover(ctl redoControl) (uint64, error) {
	byGen := map[uint64]*redoSeg{}
	var maxGen uint64
	for _, s := range r.segs {
		if s.size < 0 || s.gen == 0 {
			continue
		}
		if o, dup := byGen[s.gen]; dup {
			return 0, fmt.Errorf("redo log: segments %s and %s both claim generation %d", o.name, s.name, s.gen)
		}
		byGen[s.gen] = s
		maxGen = max(maxGen, s.gen)
	}
	if err := r.readApplied(); err != nil {
		return 0, err
	}
	// First without writing: where the log ends, and so whether it has
	// K's record.
	end, _, err := r.walk(ctl, byGen, false)
	if err != nil {
		return 0, err
	}
	r.protectK = r.applied >= end
	expect, g, err := r.walk(ctl, byGen, true)
	if err != nil {
		return 0, err
	}
	// Every segment begun after the checkpoint is on the log's path.
	for gen, s := range byGen {
		if gen > g {
			return 0, fmt.Errorf("redo log segment %s (generation %d, from record %d) is beyond the log's end at record %d of generation %d: the log is damaged", s.name, gen, s.first, expect-1, g)
		}
	}
	r.next = expect
	if r.applied >= expect {
		// Badger holds a group whose record the log lacks: its commit ran
		// beside the record's sync, and the machine stopped between the two
		// (possible on a power loss only: a killed process leaves the
		// record written before the commit began in the page cache). The
		// group was never acknowledged; Badger keeps it, and the next
		// record follows its number.
		r.log.Warn("ledger holds a group its redo log lacks (a power loss during a commit); kept", "record", r.applied)
		r.next = r.applied + 1
	}
	if r.replayed > 0 {
		r.log.Info("ledger redo log replayed", "records", r.replayed, "next", expect)
	}
	return maxGen, nil
}

// walk goes through the log's valid records from the checkpoint on, in
// order, replaying them into Badger if apply; it returns the number after
// the last record and the generation of the segment the log ends in.
func (r *redoLog) walk(ctl redoControl, byGen map[uint64]*redoSeg, apply bool) (uint64, uint64, error) {
	expect, g := ctl.lsn, ctl.gen
	for {
		s := byGen[g]
		if s == nil {
			break // the writer had not started it: the log ends before it
		}
		if s.first != expect {
			return 0, 0, fmt.Errorf("redo log segment %s (generation %d) starts at record %d, the log expects %d there: the log is damaged", s.name, g, s.first, expect)
		}
		data, err := os.ReadFile(s.name)
		if err != nil {
			return 0, 0, fmt.Errorf("redo log: %w", err)
		}
		off, err := r.replaySegment(s, data, g, &expect, apply)
		if err != nil {
			return 0, 0, err
		}
		if n := byGen[g+1]; n != nil && n.first == expect {
			g++
			continue
		}
		// The log ends here. A valid record of this segment further on
		// means the record at off is damaged, not torn.
		if lo, lsn, ok := findRecord(data, g, expect, off+redoBlock); ok {
			return 0, 0, fmt.Errorf("redo log segment %s: the record at offset %d is not valid (record %d expected), but a valid record %d follows at offset %d: the log is damaged, not torn; restore the ledger from a backup", s.name, off, expect, lsn, lo)
		}
		return expect, g, nil
	}
	return expect, g, nil // the writer had not started segment g: the log ends before it
}

// replaySegment goes through the records of segment s (its data) from the
// first one on, applying them if apply, advancing *expect; it returns the
// offset where the segment's log ends.
func (r *redoLog) replaySegment(s *redoSeg, data []byte, g uint64, expect *uint64, apply bool) (int, error) {
	off := redoBlock
	for {
		payload, next, ok := recordAt(data, off, g, *expect)
		if !ok {
			return off, nil
		}
		if apply {
			var skip uint64
			if r.protectK && *expect < r.applied {
				skip = r.appliedVer
			}
			if err := applyRedo(r.db, payload, skip); err != nil {
				return 0, fmt.Errorf("redo log segment %s, record %d at offset %d: %w", s.name, *expect, off, err)
			}
			r.replayed++
		}
		*expect++
		off = next
	}
}

// recordAt returns the payload of the record at off if it is a valid
// record of generation g numbered lsn, and the offset of the next.
func recordAt(data []byte, off int, g, lsn uint64) (payload []byte, next int, ok bool) {
	if off < 0 || off+redoRecHdr > len(data) {
		return nil, 0, false
	}
	h := data[off : off+redoRecHdr]
	if string(h[:4]) != string(redoRecMagic) || binary.BigEndian.Uint64(h[16:]) != g || binary.BigEndian.Uint64(h[8:]) != lsn {
		return nil, 0, false
	}
	n := int64(binary.BigEndian.Uint32(h[4:]))
	end := int64(off) + redoRecHdr + n
	if end > int64(len(data)) {
		return nil, 0, false
	}
	if crcOf(h[:24], data[off+redoRecHdr:end]) != binary.BigEndian.Uint32(h[24:]) {
		return nil, 0, false
	}
	return data[off+redoRecHdr : end], int(roundBlock(end)), true
}

// crcOf is a record's checksum: CRC-32C of its header's first 24 bytes
// and its payload.
func crcOf(hdr, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, payload)
}

// findRecord looks for a valid record of generation g numbered from lsn
// on at a block boundary from off on.
func findRecord(data []byte, g, lsn uint64, off int) (at int, n uint64, ok bool) {
	for ; off+redoRecHdr <= len(data); off += redoBlock {
		h := data[off : off+redoRecHdr]
		if string(h[:4]) != string(redoRecMagic) || binary.BigEndian.Uint64(h[16:]) != g {
			continue
		}
		if n = binary.BigEndian.Uint64(h[8:]); n < lsn {
			continue
		}
		if _, _, ok := recordAt(data, off, g, n); ok {
			return off, n, true
		}
	}
	return 0, 0, false
}

// readApplied reads the LSN of the last group Badger holds (keyRedo;
// none: 0) and the version Badger gave that group's writes.
func (r *redoLog) readApplied() error {
	return r.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(keyRedo)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("redo log: reading %s: %w", keyRedo, err)
		}
		return it.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("redo log: %s holds %d bytes, not 8: the ledger is damaged", keyRedo, len(v))
			}
			r.applied, r.appliedVer = binary.BigEndian.Uint64(v), it.Version()
			return nil
		})
	})
}

// applyRedo applies one record's writes to db in one transaction: all of
// them or, on an error, none. Writes to a key whose latest version in db
// is skip (unless 0) are left out: that version is the write of a later
// group (the last Badger holds, see recover), which replaying an earlier
// record must not undo. Replaying that group's own record, or records
// after it, skips nothing.
func applyRedo(db *badger.DB, p []byte, skip uint64) error {
	txn := db.NewTransaction(true)
	defer txn.Discard()
	err := decodeRedo(p, func(w written) error {
		if skip != 0 {
			later, err := latestVersionIs(txn, w.k, skip)
			if err != nil || later {
				return err
			}
		}
		if w.del {
			return txn.Delete(w.k)
		}
		return txn.Set(w.k, w.v)
	})
	if err != nil {
		return err
	}
	return txn.Commit()
}

// latestVersionIs reports whether the latest version of k in txn's
// snapshot, a deletion included, is version v.
func latestVersionIs(txn *badger.Txn, k []byte, v uint64) (bool, error) {
	it := txn.NewKeyIterator(k, badger.IteratorOptions{AllVersions: true})
	defer it.Close()
	it.Rewind()
	if !it.Valid() {
		return false, nil
	}
	return it.Item().Version() == v, nil
}

// decodeRedo calls fn for each write of payload p, in order (k and v
// point into p).
func decodeRedo(p []byte, fn func(written) error) error {
	for i := 0; len(p) > 0; i++ {
		op := p[0]
		p = p[1:]
		k, rest, err := redoBytes(p)
		if err != nil {
			return fmt.Errorf("write %d: key: %w", i, err)
		}
		p = rest
		w := written{k: k}
		switch op {
		case redoSet:
			if w.v, p, err = redoBytes(p); err != nil {
				return fmt.Errorf("write %d: value: %w", i, err)
			}
		case redoDel:
			w.del = true
		default:
			return fmt.Errorf("write %d: unknown operation %d", i, op)
		}
		if err := fn(w); err != nil {
			return fmt.Errorf("write %d (key %q): %w", i, k, err)
		}
	}
	return nil
}

func redoBytes(p []byte) (b, rest []byte, err error) {
	n, w := binary.Uvarint(p)
	if w <= 0 || n > uint64(len(p)-w) {
		return nil, nil, errors.New("length runs past the record")
	}
	return p[w : w+int(n)], p[w+int(n):], nil
}

// makeRedoControl makes the control file of a new log, naming record 1 of
// generation 1, whole: written to a temporary file, synced, renamed into
// place, the directory synced.
func makeRedoControl(dir string) error {
	p := filepath.Join(dir, redoCtlName)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("redo log: %w", err)
	}
	b := make([]byte, redoCtlFile)
	copy(b, redoControl{1, 1}.encode())
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("redo log: making %s: %w", p, err)
	}
	return nil
}

// readControl reads the checkpoint: of the two slots, the valid one with
// the higher generation.
func (r *redoLog) readControl() (redoControl, error) {
	b := make([]byte, 2*redoCtlSlot)
	if _, err := r.ctl.ReadAt(b, 0); err != nil {
		return redoControl{}, fmt.Errorf("redo log %s: %w", r.ctl.Name(), err)
	}
	var best redoControl
	var errs []error
	for i := 0; i < 2; i++ {
		c, err := decodeRedoControl(b[i*redoCtlSlot:])
		if err != nil {
			errs = append(errs, fmt.Errorf("slot %d: %w", i, err))
			continue
		}
		if c.gen > best.gen {
			best, r.ctlSlot = c, i
		}
	}
	if best.gen == 0 {
		return redoControl{}, fmt.Errorf("redo log %s: no valid checkpoint (%w)", r.ctl.Name(), errors.Join(errs...))
	}
	return best, nil
}

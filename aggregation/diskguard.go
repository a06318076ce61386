package aggregation

// The ledger's disk: free space watched, Badger's memtable and value log
// files backed.
//
// Badger maps its memtable write-ahead logs (*.mem, 2 × MemTableSize each),
// its value log files (*.vlog, 2 × valueLogFileSize each), its discard
// file and the tables it writes as sparse files. On a full
// disk a write to a page never written before is not an error Badger could
// return: the kernel raises SIGBUS and the controller dies (the fault
// campaign saw it on a full tmpfs, in ristretto's z.Memclr). So the guard
// does what an industrial controller does with a disk it depends on:
//   - it backs every memtable and value log file with real blocks
//     (fallocate) as soon as it sees one, so that the live memtable's and
//     value log's writes never need a block the disk may no longer have;
//   - it reads the volume's free space (statfs) every Period and reports a
//     level: below WarnMB a warning, below ReserveMB full — the line holds
//     and will not start, before Badger's next memtable and flush (which
//     need real space, ReserveMB's default) can find the disk without it.
// The redo log (redo.go) needs nothing of the guard: its segments and its
// control file are written whole, zeros, when the store opens (an open
// that cannot make them fails, saying so), and are only overwritten after:
// the log never grows, and its writes and checkpoints go on on a full disk.
// The guard reports their size (DiskReport.Redo) beside the free space.
// What it cannot prevent: a disk filled at once by another program while
// Badger is between creating a memtable file and the guard's next look
// (at most Period), or while a flush or compaction writes a table. The
// hold stops the line's writes but for its journal of the hold itself,
// which the backed memtable takes.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DiskGuardConfig is the ledger disk's thresholds (plain config data).
type DiskGuardConfig struct {
	// ReserveMB: with less free than this the line holds with an alarm
	// naming the ledger's disk and refuses to start (default: the store's
	// DiskReserveMB, what Badger's next memtable and flush need, plus a
	// margin).
	ReserveMB int `yaml:"reserve_mb"`
	// WarnMB: with less free than this, a warning (default 2 × ReserveMB).
	WarnMB int `yaml:"warn_mb"`
	// Period: how often free space is read (default 250ms).
	Period time.Duration `yaml:"period"`

	// statfs replaces the volume's free and total bytes (tests).
	statfs func(dir string) (free, total uint64, err error)
}

// Validate reports what is wrong; prefix names the config path.
func (c DiskGuardConfig) Validate(prefix string) error {
	var errs []error
	if c.ReserveMB < 0 {
		errs = append(errs, fmt.Errorf("%s.reserve_mb: %d is negative", prefix, c.ReserveMB))
	}
	if c.WarnMB < 0 {
		errs = append(errs, fmt.Errorf("%s.warn_mb: %d is negative", prefix, c.WarnMB))
	}
	if c.WarnMB > 0 && c.ReserveMB > 0 && c.WarnMB < c.ReserveMB {
		errs = append(errs, fmt.Errorf("%s.warn_mb: %d is below reserve_mb %d (the warning must come first)", prefix, c.WarnMB, c.ReserveMB))
	}
	if c.Period < 0 {
		errs = append(errs, fmt.Errorf("%s.period: %s is negative", prefix, c.Period))
	}
	return errors.Join(errs...)
}

// DiskLevel is how full the ledger's disk is.
type DiskLevel int

const (
	DiskOK   DiskLevel = iota // free space above the warning threshold
	DiskLow                   // below the warning threshold: a warning
	DiskFull                  // below the reserve: the line holds
)

func (l DiskLevel) String() string {
	switch l {
	case DiskOK:
		return "ok"
	case DiskLow:
		return "low"
	case DiskFull:
		return "full"
	}
	return fmt.Sprintf("DiskLevel(%d)", int(l))
}

// DiskReport is one look at the ledger's disk.
type DiskReport struct {
	Dir          string
	Level        DiskLevel
	Free, Total  uint64 // bytes
	Warn         uint64 // the thresholds, bytes
	Reserve      uint64
	Err          error // statfs failed (Level is then DiskFull: nobody vouches for the space)
	Preallocated int   // memtable files backed by this look
	// Redo: bytes of the redo log's segments and control file, written
	// when the store opened (not part of the reserve: they never grow).
	Redo uint64
}

func mb(b uint64) string { return fmt.Sprintf("%d MB", b>>20) }

// Text says what the report means to an operator.
func (r DiskReport) Text() string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("ledger disk %s: free space unknown (%v); the line holds until it can be read", r.Dir, r.Err)
	case r.Level == DiskFull:
		return fmt.Sprintf("ledger disk %s full: %s free of %s, below the %s reserve the ledger needs; free space on that disk, the alarm clears by itself", r.Dir, mb(r.Free), mb(r.Total), mb(r.Reserve))
	case r.Level == DiskLow:
		return fmt.Sprintf("ledger disk %s low: %s free of %s, below the %s warning (the line holds below %s)", r.Dir, mb(r.Free), mb(r.Total), mb(r.Warn), mb(r.Reserve))
	}
	return fmt.Sprintf("ledger disk %s: %s free of %s", r.Dir, mb(r.Free), mb(r.Total))
}

// DiskReserveMB is the free space the store needs for Badger's next
// memtable and flush: a new memtable file backed for what Badger writes
// into it (memtableBacked), the table the full memtable becomes (at most
// its size), a new value log file backed (vlogBacked), and 16 MB for the
// manifest, the discard file and the journal written while the line holds.
func (s *Store) DiskReserveMB() int {
	return int((s.memtableBacked()+s.vlogBacked()+(1<<20)-1)>>20) + s.opts.MemTableMB + 16
}

// vlogBacked is how much of a value log file Badger can write: it starts a
// new file once one passes valueLogFileSize, checked after each
// transaction's values, and a transaction is at most one batch (15% of
// MemTableSize); 1 MB more for safety.
func (s *Store) vlogBacked() int64 {
	mt := int64(s.opts.MemTableMB) << 20
	return valueLogFileSize + mt*15/100 + 1<<20
}

// memtableBacked is how much of a memtable file Badger can write: it is
// full once its log passes MemTableSize, and the write that passes it is at
// most one batch (Badger's maxBatchSize, 15% of MemTableSize), after a
// 20-byte header; 1 MB more for safety.
func (s *Store) memtableBacked() int64 {
	mt := int64(s.opts.MemTableMB) << 20
	return mt + mt*15/100 + 1<<20
}

// Dir is the store's directory ("" for an in-memory store).
func (s *Store) Dir() string { return s.dir }

// DiskGuard watches the ledger's disk. Make it with Store.DiskGuard.
type DiskGuard struct {
	dir            string
	cfg            DiskGuardConfig
	warn, reserve  uint64
	back, backVlog uint64 // what is backed of a memtable file, of a value log file
	redo           uint64

	mu     sync.Mutex
	backed map[string]bool // memtable and value log files preallocated, by name
}

// DiskGuard returns the guard of the store's disk (it does not look yet).
func (s *Store) DiskGuard(cfg DiskGuardConfig) (*DiskGuard, error) {
	if s.dir == "" {
		return nil, errors.New("ledger: an in-memory store has no disk to guard")
	}
	if err := cfg.Validate("ledger_disk"); err != nil {
		return nil, err
	}
	if cfg.ReserveMB == 0 {
		cfg.ReserveMB = s.DiskReserveMB()
	}
	if cfg.WarnMB == 0 {
		cfg.WarnMB = 2 * cfg.ReserveMB
	}
	if cfg.WarnMB < cfg.ReserveMB {
		return nil, fmt.Errorf("ledger_disk.warn_mb: %d is below the reserve %d MB", cfg.WarnMB, cfg.ReserveMB)
	}
	if cfg.Period == 0 {
		cfg.Period = 250 * time.Millisecond
	}
	if cfg.statfs == nil {
		cfg.statfs = statfs
	}
	g := &DiskGuard{dir: s.dir, cfg: cfg, warn: uint64(cfg.WarnMB) << 20, reserve: uint64(cfg.ReserveMB) << 20,
		back: uint64(s.memtableBacked()), backVlog: uint64(s.vlogBacked()), backed: map[string]bool{}}
	if s.redo != nil {
		g.redo = uint64(s.redo.segmentBytes()) + redoCtlFile
	}
	return g, nil
}

func statfs(dir string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// Check backs new memtable and value log files and reads the free space.
func (g *DiskGuard) Check() DiskReport {
	r := DiskReport{Dir: g.dir, Warn: g.warn, Reserve: g.reserve, Redo: g.redo}
	r.Preallocated = g.backMemtables()
	r.Free, r.Total, r.Err = g.cfg.statfs(g.dir)
	switch {
	case r.Err != nil || r.Free < g.reserve:
		r.Level = DiskFull
	case r.Free < g.warn:
		r.Level = DiskLow
	}
	return r
}

// backMemtables preallocates the part Badger can write of every memtable
// and value log file (and the discard file) not backed yet; the count
// done. A file that cannot be backed now (the disk is full) is tried again
// next time. A value log file Badger has finished is its final size: the
// allocation covers what it holds, which already has blocks.
func (g *DiskGuard) backMemtables() int {
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[string]bool{}
	n := 0
	for _, e := range ents {
		name := e.Name()
		back := g.back
		switch {
		case strings.HasSuffix(name, ".vlog"):
			back = g.backVlog
		case !strings.HasSuffix(name, ".mem") && name != "DISCARD":
			continue
		}
		seen[name] = true
		if g.backed[name] {
			continue
		}
		if backFile(filepath.Join(g.dir, name), int64(back)) == nil {
			g.backed[name] = true
			n++
		}
	}
	for name := range g.backed {
		if !seen[name] {
			delete(g.backed, name) // flushed and deleted by Badger
		}
	}
	return n
}

// backFile allocates blocks for the first n bytes of path (at most its
// size), leaving its size alone.
func backFile(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	n = min(n, st.Size())
	if n <= 0 {
		return nil
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, n); err != nil {
		return fmt.Errorf("preallocate %s: %w", path, err)
	}
	return nil
}

// Run checks every Period until ctx ends, calling report with the first
// look and then whenever the level changes (or statfs starts or stops
// failing).
func (g *DiskGuard) Run(ctx context.Context, report func(DiskReport)) {
	t := time.NewTicker(g.cfg.Period)
	defer t.Stop()
	first := true
	var last DiskReport
	for {
		r := g.Check()
		if first || r.Level != last.Level || (r.Err == nil) != (last.Err == nil) {
			report(r)
			first = false
		}
		last = r
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

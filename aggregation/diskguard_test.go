package aggregation

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDiskGuardLevels: free space against the thresholds, with the
// volume's answer replaced.
func TestDiskGuardLevels(t *testing.T) {
	s, dir := openTest(t)
	const MB = 1 << 20
	for _, tc := range []struct {
		name  string
		free  uint64
		err   error
		level DiskLevel
		says  []string
	}{
		{"plenty", 500 * MB, nil, DiskOK, []string{"500 MB free of 1000 MB"}},
		{"below the warning", 150 * MB, nil, DiskLow, []string{"low", "150 MB free", "200 MB warning", "holds below 100 MB"}},
		{"below the reserve", 99 * MB, nil, DiskFull, []string{"full", "99 MB free", "100 MB reserve", dir}},
		{"nothing left", 0, nil, DiskFull, []string{"full", "0 MB free"}},
		{"statfs fails", 0, syscall.EIO, DiskFull, []string{"free space unknown", "input/output error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := s.DiskGuard(DiskGuardConfig{ReserveMB: 100, statfs: func(string) (uint64, uint64, error) { return tc.free, 1000 * MB, tc.err }})
			if err != nil {
				t.Fatal(err)
			}
			r := g.Check()
			if r.Level != tc.level {
				t.Fatalf("level %s, want %s (%s)", r.Level, tc.level, r.Text())
			}
			for _, w := range tc.says {
				if !strings.Contains(r.Text(), w) {
					t.Errorf("%q does not say %q", r.Text(), w)
				}
			}
		})
	}
}

// TestDiskGuardRealVolume: with the real statfs and a reserve above what
// the test's disk has free, the guard says full; the default reserve is
// what Badger's next memtable and flush need.
func TestDiskGuardRealVolume(t *testing.T) {
	s, _ := openTest(t)
	g, err := s.DiskGuard(DiskGuardConfig{ReserveMB: math.MaxInt32})
	if err != nil {
		t.Fatal(err)
	}
	if r := g.Check(); r.Level != DiskFull || r.Err != nil || r.Total == 0 {
		t.Fatalf("reserve above the disk's size: %+v", r)
	}
	// The default: the 32 MB memtable's backed file (32 + 15% + 1 MB) and
	// the value log's (16 + 15% of 32 + 1 MB), together 59.6 MB, the table
	// the memtable is flushed to, and 16 MB.
	if got := s.DiskReserveMB(); got != 60+32+16 {
		t.Fatalf("default reserve %d MB", got)
	}
	g, err = s.DiskGuard(DiskGuardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if c := g.cfg; c.ReserveMB != 108 || c.WarnMB != 216 || c.Period != 250*time.Millisecond {
		t.Fatalf("defaults %+v", c)
	}
}

// TestDiskGuardBacksMemtables: the live memtable and value log files,
// sparse as Badger makes them, have real blocks for what Badger can write
// into them after the guard's first look — so that a disk filled meanwhile
// cannot turn a write into SIGBUS.
func TestDiskGuardBacksMemtables(t *testing.T) {
	s, dir := openTest(t)
	allocated := func(p string) int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	type file struct {
		path string
		want int64
		size int64
	}
	var files []file
	for _, f := range []struct {
		glob string
		want int64
	}{{"*.mem", s.memtableBacked()}, {"*.vlog", s.vlogBacked()}} {
		ps, _ := filepath.Glob(filepath.Join(dir, f.glob))
		if len(ps) == 0 {
			t.Fatalf("no %s file in a fresh ledger", f.glob)
		}
		if a := allocated(ps[0]); a >= f.want {
			t.Fatalf("%s already has %d bytes allocated: the test proves nothing", ps[0], a)
		}
		fi, _ := os.Stat(ps[0])
		files = append(files, file{ps[0], f.want, fi.Size()})
	}
	g, err := s.DiskGuard(DiskGuardConfig{ReserveMB: 1, WarnMB: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := g.Check()
	if r.Preallocated < len(files) {
		t.Fatalf("%d files preallocated, want at least %d: %+v", r.Preallocated, len(files), r)
	}
	for _, f := range files {
		if a := allocated(f.path); a < f.want {
			t.Fatalf("%s has %d bytes allocated after the look, want at least %d", f.path, a, f.want)
		}
		if fi2, _ := os.Stat(f.path); fi2.Size() != f.size {
			t.Fatalf("%s's size changed: %d → %d", f.path, f.size, fi2.Size())
		}
	}
	if r := g.Check(); r.Preallocated != 0 {
		t.Fatalf("backed twice: %+v", r)
	}
}

// TestDiskGuardRunReportsChanges: Run reports the first look, then only
// changes of level.
func TestDiskGuardRunReportsChanges(t *testing.T) {
	s, _ := openTest(t)
	const MB = 1 << 20
	frees := []uint64{500, 500, 150, 150, 50, 50, 0, 500, 500}
	looks := make(chan struct{})
	i := 0
	g, err := s.DiskGuard(DiskGuardConfig{ReserveMB: 100, Period: time.Millisecond, statfs: func(string) (uint64, uint64, error) {
		f := frees[min(i, len(frees)-1)]
		if i == len(frees) {
			close(looks)
		}
		i++
		return f * MB, 1000 * MB, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	done := make(chan struct{})
	go func() {
		g.Run(ctx, func(r DiskReport) { got = append(got, r.Level.String()) })
		close(done)
	}()
	<-looks
	cancel()
	<-done
	if want := "ok low full ok"; strings.Join(got, " ") != want {
		t.Fatalf("reported %v, want %s", got, want)
	}
}

func TestDiskGuardConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    DiskGuardConfig
		want string
	}{
		{DiskGuardConfig{ReserveMB: -1}, "settings.ledger_disk.reserve_mb: -1 is negative"},
		{DiskGuardConfig{WarnMB: 50, ReserveMB: 100}, "settings.ledger_disk.warn_mb: 50 is below reserve_mb 100"},
		{DiskGuardConfig{Period: -time.Second}, "settings.ledger_disk.period: -1s is negative"},
	} {
		err := tc.c.Validate("settings.ledger_disk")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if err := (DiskGuardConfig{}).Validate("x"); err != nil {
		t.Fatal(err)
	}
	mem, err := Open("", Options{inMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if _, err := mem.DiskGuard(DiskGuardConfig{}); err == nil || !strings.Contains(err.Error(), "in-memory") {
		t.Fatalf("in-memory store: %v", err)
	}
}

package aggregation

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// offheap maps n zeroed bytes outside the Go heap (see memKV). A failed
// mapping panics, as running out of heap does.
func offheap(n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		panic("verify: cannot map " + strconv.Itoa(n>>20) + " MB: " + err.Error())
	}
	if n >= 2<<20 {
		_ = unix.Madvise(b, unix.MADV_HUGEPAGE) // fewer TLB misses on random lookups; best effort
	}
	return b
}

func offheapFree(b []byte) { _ = unix.Munmap(b) }

func offheapSlots(n int) []uint64 {
	b := offheap(n * 8)
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
}

func offheapFreeSlots(s []uint64) {
	if len(s) > 0 {
		offheapFree(unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*8))
	}
}

// dropMappedPages asks the kernel to reclaim the pages of the ledger's
// files in dir that Badger mapped (its tables, *.sst, and value log,
// *.vlog: shared mappings), on Linux. Verify reads the whole ledger once;
// each page read would otherwise count in its resident set until the end
// (about the ledger's size). A page read again is read again from the file.
//
// MADV_PAGEOUT (Linux 5.4), not MADV_DONTNEED: it never loses data, so a
// range Badger unmaps (a table compacted away) and the address space reuses
// between reading /proc/self/maps and the advice is harmless — anonymous
// memory is swapped out at worst, never zeroed. Best effort: any failure
// leaves the mappings as they are. It returns how many mappings it advised.
func dropMappedPages(dir string) (n int) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	pfx := []byte(abs + "/")
	for sc.Scan() {
		// start-end perms offset dev inode path
		line := sc.Bytes()
		i := bytes.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := line[i:]
		if !bytes.HasPrefix(path, pfx) || !(bytes.HasSuffix(path, []byte(".sst")) || bytes.HasSuffix(path, []byte(".vlog"))) {
			continue
		}
		fields := bytes.Fields(line[:i])
		if len(fields) < 2 || !bytes.Contains(fields[1], []byte("s")) { // shared mappings only
			continue
		}
		dash := bytes.IndexByte(fields[0], '-')
		if dash < 0 {
			continue
		}
		start, err1 := strconv.ParseUint(string(fields[0][:dash]), 16, 64)
		end, err2 := strconv.ParseUint(string(fields[0][dash+1:]), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT); e == 0 {
			n++
		}
	}
	return n
}

// Command million measures the export of a released 1,000,000-unit batch
// (unit / bundle / case / pallet, the nmpa20 example product's ratios
// 10:20:40) in every format: wall time and peak resident memory, each
// format in its own child process. It builds the ledger once into -dir
// (minutes), then reuses it, and checks the epcis-xml output against the
// XSDs (xmllint --stream). Not part of CI:
//
//	go run ./handoff/export/testdata/million -dir /tmp/million [-units N] [-cpuprofile P]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/epcisschema"
	"github.com/tracline/tracline/handoff/export"
	"github.com/tracline/tracline/handoff/export/exporttest"
	"github.com/tracline/tracline/tracecode"
)

const batch = "M1"

func main() {
	dir := flag.String("dir", "", "ledger directory (built if empty)")
	units := flag.Int("units", 1000000, "units of the batch (when building)")
	product := flag.String("product", "examples/amoxicillin-nmpa20.yaml", "product file")
	child := flag.String("child", "", "internal: export this format and exit")
	cpuprof := flag.String("cpuprofile", "", "child: write a CPU profile to this file (suffixed with the format)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "million: -dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *units, *product, *child, *cpuprof); err != nil {
		fmt.Fprintln(os.Stderr, "million:", err)
		os.Exit(1)
	}
}

func run(dir string, units int, productPath, child, cpuprof string) error {
	ctx := context.Background()
	p, err := tracecode.LoadProduct(productPath)
	if err != nil {
		return err
	}
	if child != "" {
		return exportOnce(ctx, dir, p, export.Format(child), cpuprof)
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		t0 := time.Now()
		s, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
		if err != nil {
			return err
		}
		_, err = exporttest.Build(ctx, s, p, exporttest.Shape{Batch: batch, Units: units,
			Ratios: []int{p.Ratio(2), p.Ratio(3), p.Ratio(4)}})
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "built %d units in %s\n", units, time.Since(t0).Round(time.Second))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, f := range export.Formats {
		args := []string{"-dir", dir, "-product", productPath, "-child", string(f)}
		if cpuprof != "" {
			args = append(args, "-cpuprofile", cpuprof)
		}
		cmd := exec.Command(self, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		var r map[string]any
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("%s: %q: %w", f, out, err)
		}
		// Peak RSS comes from the child's own VmHWM: wait4's ru_maxrss
		// carries the parent's high-water mark over fork+exec on Linux.
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r["cpu_s"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
		if f == export.FormatEPCISXML {
			t0 := time.Now()
			r["xsd_valid"] = true
			if err := epcisschema.ValidateXMLFile(context.Background(), filepath.Join(dir, "export."+string(f))); err != nil {
				r["xsd_valid"] = err.Error()
			}
			r["xsd_check_s"] = time.Since(t0).Seconds()
		}
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	return nil
}

func exportOnce(ctx context.Context, dir string, p *tracecode.Product, f export.Format, cpuprof string) error {
	t0 := time.Now()
	s, err := aggregation.Open(dir, aggregation.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	opened := time.Since(t0)
	out, err := os.Create(filepath.Join(dir, "export."+string(f)))
	if err != nil {
		return err
	}
	defer out.Close()
	if cpuprof != "" {
		pf, err := os.Create(cpuprof + "." + string(f))
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t1 := time.Now()
	st, err := export.Write(ctx, out, s, batch, f, export.Options{Product: p})
	if err != nil {
		return err
	}
	took := time.Since(t1)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"format": f, "open_s": opened.Seconds(),
		"export_s": took.Seconds(), "bytes": st.Bytes, "events": st.Events, "codes": st.Codes,
		"peak_rss_mb": hwm()})
}

// hwm is this process's peak resident set (VmHWM), in MB.
func hwm() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return -1
}

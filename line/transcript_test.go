package line

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/tracecode"
)

var update = flag.Bool("update", false, "rewrite the expected actions in testdata/*.txt")

// A transcript is a config line, then events ("> @ms event …"), each
// followed by the actions the machine must answer ("< …"). Lines starting
// with # are comments. Run with -update to regenerate the "<" lines; read
// the diff before committing it.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runTranscript(t, f) })
	}
}

func runTranscript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		m       *Machine
		out     strings.Builder
		got     []string
		want    []string
		lineNo  int
		lastEv  string
		diffs   []string
		compare = func() {
			if lastEv == "" {
				return
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				diffs = append(diffs, fmt.Sprintf("after %q:\n--- want\n%s\n--- got\n%s", lastEv,
					strings.Join(want, "\n"), strings.Join(got, "\n")))
			}
			got, want = nil, nil
		}
	)
	base := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "< "):
			want = append(want, line[2:])
			continue
		case strings.HasPrefix(line, "config "):
			cfg, purge, err := parseConfig(line[len("config "):])
			if err != nil {
				t.Fatalf("%s:%d: %v", path, lineNo, err)
			}
			if m, err = NewMachine(cfg, purge); err != nil {
				t.Fatalf("%s:%d: %v", path, lineNo, err)
			}
		case strings.HasPrefix(line, "> "):
			compare()
			if m == nil {
				t.Fatalf("%s:%d: event before config", path, lineNo)
			}
			ev, err := parseEvent(base, line[2:])
			if err != nil {
				t.Fatalf("%s:%d: %v", path, lineNo, err)
			}
			lastEv = line[2:]
			out.WriteString(line + "\n")
			for _, a := range m.Step(ev) {
				s := fmt.Sprint(a)
				got = append(got, s)
				out.WriteString("< " + s + "\n")
			}
			continue
		}
		out.WriteString(line + "\n")
	}
	compare()
	if *update {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, d := range diffs {
		t.Errorf("%s: %s", path, d)
	}
}

func parseConfig(s string) (Config, bool, error) {
	cfg := Config{Deadline: 100 * time.Millisecond, PrinterBuffer: 2, AllocChunk: 4, Ratios: map[tracecode.Level]int{}}
	purge := false
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "deadline":
			ms, err := strconv.Atoi(v)
			if err != nil {
				return cfg, false, err
			}
			cfg.Deadline = time.Duration(ms) * time.Millisecond
		case "buffer":
			cfg.PrinterBuffer, _ = strconv.Atoi(v)
		case "chunk":
			cfg.AllocChunk, _ = strconv.Atoi(v)
		case "grade":
			cfg.MinGrade = v[0]
		case "purge":
			purge = true
		case "gate":
			cfg.GateConfirm = true
		case "labelcheck":
			lv, _ := strconv.Atoi(v)
			if cfg.LabelCheck == nil {
				cfg.LabelCheck = map[tracecode.Level]bool{}
			}
			cfg.LabelCheck[tracecode.Level(lv)] = true
		case "challenge":
			for _, name := range strings.Split(v, ",") {
				r, err := ParseReason(name)
				if err != nil {
					return cfg, false, err
				}
				cfg.Challenge = append(cfg.Challenge, ChallengeStep{Name: name, Expect: r})
			}
		default:
			if l, ok := strings.CutPrefix(k, "ratio"); ok {
				lv, _ := strconv.Atoi(l)
				r, _ := strconv.Atoi(v)
				cfg.Ratios[tracecode.Level(lv)] = r
				continue
			}
			return cfg, false, fmt.Errorf("unknown config key %q", k)
		}
	}
	return cfg, purge, nil
}

func codes(ss []string) []tracecode.Code {
	cs := make([]tracecode.Code, len(ss))
	for i, s := range ss {
		cs[i] = tracecode.Code(s)
	}
	return cs
}

func reads(ss []string) []Read {
	rs := make([]Read, len(ss))
	for i, s := range ss {
		if e, ok := strings.CutPrefix(s, "!"); ok {
			rs[i] = Read{Err: e}
		} else {
			rs[i] = Read{Code: tracecode.Code(s)}
		}
	}
	return rs
}

// parseEvent reads "@ms kind args…".
func parseEvent(base time.Time, s string) (Event, error) {
	f := strings.Fields(s)
	if len(f) < 2 || f[0][0] != '@' {
		return nil, fmt.Errorf("event %q: want \"@ms kind …\"", s)
	}
	ms, err := strconv.Atoi(f[0][1:])
	if err != nil {
		return nil, fmt.Errorf("event %q: time: %v", s, err)
	}
	st := Stamp{T: base.Add(time.Duration(ms) * time.Millisecond)}
	args := f[2:]
	num := func(i int) uint32 {
		if i >= len(args) {
			return 0
		}
		n, _ := strconv.Atoi(args[i])
		return uint32(n)
	}
	errArg := func() (rest []string, e string) {
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "err="); ok {
				return args[:i], strings.Join(append([]string{v}, args[i+1:]...), " ")
			}
		}
		return args, ""
	}
	switch f[1] {
	case "trigger":
		return Trigger{Stamp: st, Item: num(0)}, nil
	case "printed":
		return Printed{Stamp: st, Code: tracecode.Code(args[0])}, nil
	case "print-gap":
		return PrintGap{Stamp: st, N: int(num(0))}, nil
	case "camera": // camera ITEM [grade=G] [fail] [noread] CODES…
		ev := CameraResult{Stamp: st, Item: num(0), Pass: true}
		var rest []string
		for _, a := range args[1:] {
			switch {
			case strings.HasPrefix(a, "grade="):
				ev.Grade = a[len("grade=")]
			case a == "fail":
				ev.Pass = false
			case a == "noread":
			default:
				rest = append(rest, a)
			}
		}
		ev.Reads = reads(rest)
		return ev, nil
	case "tick":
		return Tick{Stamp: st}, nil
	case "gate": // gate ITEM passed|rejected|reject-failed|bin-full [seq=N]
		for g := GatePassed; g <= GateBinFull; g++ {
			if len(args) > 1 && g.String() == args[1] {
				ev := GateOutcome{Stamp: st, Item: num(0), Outcome: g}
				if len(args) > 2 && strings.HasPrefix(args[2], "seq=") {
					n, err := strconv.ParseUint(args[2][len("seq="):], 10, 64)
					if err != nil {
						return nil, fmt.Errorf("event %q: %v", s, err)
					}
					ev.Seq = n
				}
				return ev, nil
			}
		}
		return nil, fmt.Errorf("event %q: unknown gate outcome", s)
	case "label-scan": // label-scan LEVEL [fail] CODES…
		ev := LabelScan{Stamp: st, Level: tracecode.Level(num(0)), Pass: true}
		rest := args[1:]
		if len(rest) > 0 && rest[0] == "fail" {
			ev.Pass, rest = false, rest[1:]
		}
		ev.Reads = reads(rest)
		return ev, nil
	case "allocated":
		rest, e := errArg()
		return Allocated{Stamp: st, Level: tracecode.Level(num(0)), Codes: codes(rest[1:]), Err: e}, nil
	case "delivered":
		return Delivered{Stamp: st, N: int(num(0))}, nil
	case "send-failed":
		rest, e := errArg()
		return SendFailed{Stamp: st, Codes: codes(rest), Err: e}, nil
	case "flushed": // flushed [marked] [markLEVEL=N…] [markerr=WHY] CODES… [err=WHY]
		rest, e := errArg()
		ev := Flushed{Stamp: st, Err: e}
		var cs []string
		for _, a := range rest {
			switch {
			case a == "marked":
				ev.Marks = map[tracecode.Level]uint64{}
			case strings.HasPrefix(a, "markerr="):
				ev.MarkErr = a[len("markerr="):]
			case strings.HasPrefix(a, "mark"):
				l, n, ok := strings.Cut(a[len("mark"):], "=")
				lv, err1 := strconv.Atoi(l)
				v, err2 := strconv.ParseUint(n, 10, 64)
				if !ok || err1 != nil || err2 != nil {
					return nil, fmt.Errorf("event %q: bad %q", s, a)
				}
				if ev.Marks == nil {
					ev.Marks = map[tracecode.Level]uint64{}
				}
				ev.Marks[tracecode.Level(lv)] = v
			default:
				cs = append(cs, a)
			}
		}
		ev.Codes = codes(cs)
		return ev, nil
	case "agg": // agg LEVEL [seq=N] [final] CODES…
		ev := AggRead{Stamp: st, Level: tracecode.Level(num(0))}
		rest := args[1:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "seq=") {
			n, err := strconv.ParseUint(rest[0][len("seq="):], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("event %q: %v", s, err)
			}
			ev.Seq, rest = n, rest[1:]
		}
		if len(rest) > 0 && rest[0] == "final" {
			ev.Final, rest = true, rest[1:]
		}
		ev.Reads = reads(rest)
		return ev, nil
	case "agg-reset": // agg-reset LEVEL
		return AggReset{Stamp: st, Level: tracecode.Level(num(0))}, nil
	case "packed":
		_, e := errArg()
		return Packed{Stamp: st, Parent: tracecode.Code(args[0]), Err: e}, nil
	case "unpacked": // unpacked PARENT CHILDREN… err=WHY (the label printer failed)
		rest, e := errArg()
		var children []tracecode.Code
		for _, c := range rest[1:] {
			children = append(children, tracecode.Code(c))
		}
		return Unpacked{Stamp: st, Parent: tracecode.Code(rest[0]), Children: children, Err: e}, nil
	case "journaled":
		_, e := errArg()
		return Journaled{Stamp: st, Item: num(0), Err: e}, nil
	case "fault":
		return DeviceFault{Stamp: st, Device: args[0], Err: strings.Join(args[1:], " ")}, nil
	case "ok":
		return DeviceOK{Stamp: st, Device: args[0]}, nil
	case "operator":
		c, err := ParseCommand(args[0])
		if err != nil {
			return nil, err
		}
		return Operator{Stamp: st, Cmd: c, User: "op1"}, nil
	}
	return nil, fmt.Errorf("event %q: unknown kind %q", s, f[1])
}

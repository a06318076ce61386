package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/tracline/tracline/tracecode"
	"github.com/tracline/tracline/tracecode/render"
)

// linectl codes generate|check|import|pool|render — see codesUsage.

const codesUsage = `usage:
  linectl codes generate --rule FILE [--level L] --count N [--out FILE] [--batch B --expiry YYMMDD [--production-date YYMMDD]] [--data DIR [--pool P]]
  linectl codes check [--product FILE --level L] < scans        (prints OK <normalized> / ERR <reason>; exit 1 if any failed)
  linectl codes import --data DIR --product FILE [--level L] [--pool P] FILE   (platform code file: text or zip)
  linectl codes pool --data DIR                                  (JSON: what each pool holds and has handed out)
  linectl codes render --product FILE [--level L] --code C --out X.png [--module PX]`

func cmdCodes(ctx context.Context, c *cli, args []string) error {
	subs := map[string]func(context.Context, *cli, []string) error{
		"generate": codesGenerate,
		"check":    codesCheck,
		"import":   codesImport,
		"pool":     codesPool,
		"render":   codesRender,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprintln(c.stderr, codesUsage)
		return exitError{2}
	}
	return subs[args[0]](ctx, c, args[1:])
}

func codesFlags(name string, c *cli) *flag.FlagSet {
	fs := flag.NewFlagSet("linectl codes "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// levelFlag is a packaging level given as 1, 2, … or L1, L2, ….
type levelFlag struct{ l tracecode.Level }

func (f *levelFlag) String() string { return f.l.String() }
func (f *levelFlag) Set(s string) error {
	if len(s) > 1 && (s[0] == 'L' || s[0] == 'l') {
		s = s[1:]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > int(tracecode.MaxLevel) {
		return fmt.Errorf("level %q: want 1..%d (or L1..L%d)", s, tracecode.MaxLevel, tracecode.MaxLevel)
	}
	f.l = tracecode.Level(n)
	return nil
}

func loadLevel(path string, l tracecode.Level) (*tracecode.Product, tracecode.LevelSpec, error) {
	if path == "" {
		return nil, tracecode.LevelSpec{}, errors.New("a product file is required (--product FILE or --rule FILE)")
	}
	p, err := tracecode.LoadProduct(path)
	if err != nil {
		return nil, tracecode.LevelSpec{}, err
	}
	ls, ok := p.Level(l)
	if !ok {
		return nil, tracecode.LevelSpec{}, fmt.Errorf("%s: no level %s (the product has %d levels)", path, l, p.TopLevel())
	}
	if ls.Rule == nil {
		return nil, tracecode.LevelSpec{}, fmt.Errorf("%s: level %s (%s) carries no code", path, l, ls.Name)
	}
	return p, ls, nil
}

// writeFileAtomic writes via a temporary file and a rename: a failed
// command never leaves a half-written file.
func writeFileAtomic(path string, write func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	if err := write(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func codesGenerate(ctx context.Context, c *cli, args []string) error {
	fs := codesFlags("generate", c)
	rule := fs.String("rule", "", "product file with the filed rules (required)")
	level := &levelFlag{l: 1}
	fs.Var(level, "level", "packaging level (1, 2, … or L1, L2, …)")
	count := fs.Int("count", 0, "how many codes (required)")
	out := fs.String("out", "", "write to FILE instead of stdout")
	batch := fs.String("batch", "", "batch (AI 10): print full codes with the data the rule carries")
	expiry := fs.String("expiry", "", "expiry YYMMDD (AI 17)")
	prod := fs.String("production-date", "", "production date YYMMDD (AI 11)")
	data := fs.String("data", "", "also add the codes to a pool in this data directory (the store refuses any code it already knows)")
	pool := fs.String("pool", "", "pool name with --data (default: the level's conventional pool, e.g. 06901234567892-L1)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("generate: unexpected argument %q", fs.Arg(0))
	}
	if *count < 1 || *count > 50_000_000 {
		return fmt.Errorf("generate: --count %d: want 1..50000000", *count)
	}
	p, _, err := loadLevel(*rule, level.l)
	if err != nil {
		return err
	}
	g, err := tracecode.NewGenerator(p, level.l)
	if err != nil {
		return err
	}
	codes, err := g.Generate(*count)
	if err != nil {
		return err
	}
	lines := make([]string, len(codes))
	full := *batch != "" || *expiry != "" || *prod != ""
	for i, code := range codes {
		lines[i] = string(code)
		if full {
			parsed, err := p.Compose(level.l, code, tracecode.CarriedData{Batch: *batch, Expiry: *expiry, ProductionDate: *prod})
			if err != nil {
				return err
			}
			lines[i] = parsed.Normalized()
		}
	}
	if *data != "" {
		name := *pool
		if name == "" {
			name = p.PoolName(level.l)
		}
		store, closeStore, err := openPoolStore(ctx, c, *data)
		if err != nil {
			return err
		}
		err = store.AddToPool(ctx, name, codes, fmt.Sprintf("linectl codes generate %s %s", filepath.Base(*rule), level.l))
		if cerr := closeStore(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("generate: add to pool %q: %w", name, err)
		}
		c.log.Info("codes added to pool", "pool", name, "count", len(codes))
	}
	write := func(w io.Writer) error {
		for _, l := range lines {
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		}
		return nil
	}
	if *out != "" {
		return writeFileAtomic(*out, write)
	}
	bw := bufio.NewWriter(c.stdout)
	if err := write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

func codesCheck(ctx context.Context, c *cli, args []string) error {
	fs := codesFlags("check", c)
	product := fs.String("product", "", "also check each code against this product's filed rule")
	level := &levelFlag{l: 1}
	fs.Var(level, "level", "packaging level for --product")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("check: reads stdin; unexpected argument %q", fs.Arg(0))
	}
	var p *tracecode.Product
	if *product != "" {
		var err error
		if p, _, err = loadLevel(*product, level.l); err != nil {
			return err
		}
	}
	in := bufio.NewReaderSize(c.stdin, 64<<10)
	out := bufio.NewWriter(c.stdout)
	failed := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := in.ReadString('\n')
		if line == "" && err != nil {
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("check: read stdin: %w", err)
			}
			break
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		var reason string
		parsed, perr := tracecode.Parse(line)
		switch {
		case len(line) > 4096:
			reason = fmt.Sprintf("line of %d bytes is too long for a code", len(line))
		case perr != nil:
			reason = perr.Error()
		case p != nil:
			if merr := p.Match(level.l, &parsed); merr != nil {
				reason = merr.Error()
			}
		}
		if reason != "" {
			failed++
			fmt.Fprintf(out, "ERR %s\n", reason)
		} else {
			fmt.Fprintf(out, "OK %s\n", parsed.Normalized())
		}
		if err != nil {
			break
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return exitError{1}
	}
	return nil
}

func codesImport(ctx context.Context, c *cli, args []string) error {
	fs := codesFlags("import", c)
	data := fs.String("data", "", "data directory of the store (required)")
	product := fs.String("product", "", "product file (required): gives the level's 药品标识码")
	level := &levelFlag{l: 1}
	fs.Var(level, "level", "packaging level of the codes")
	pool := fs.String("pool", "", "pool name (default: the level's conventional pool, e.g. 8021762-L1)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return errors.New("import: give exactly one code file (text, one code per line, or the platform's zip)")
	}
	if *data == "" {
		return errors.New("import: --data DIR is required")
	}
	p, ls, err := loadLevel(*product, level.l)
	if err != nil {
		return err
	}
	if ls.Rule.Scheme != tracecode.SchemeNMPA20 {
		return fmt.Errorf("import: level %s uses %s; only nmpa20 codes come in platform code files (GS1 codes are generated)", level.l, ls.Rule.Scheme)
	}
	f, err := tracecode.ReadCodeFile(fs.Arg(0), ls.ProductID)
	if err != nil {
		return reportCodeFileError(c, err)
	}
	name := *pool
	if name == "" {
		name = p.PoolName(level.l)
	}
	store, closeStore, err := openPoolStore(ctx, c, *data)
	if err != nil {
		return err
	}
	err = importInto(ctx, c, store, name, f)
	if cerr := closeStore(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// importInto adds a checked code file to pool and reports the outcome.
func importInto(ctx context.Context, c *cli, store tracecode.PoolStore, pool string, f *tracecode.CodeFile) error {
	if err := tracecode.ImportCodeFile(ctx, store, pool, f); err != nil {
		return reportCodeFileError(c, err)
	}
	fmt.Fprintf(c.stdout, "imported %d codes from %s (sha256 %s) into pool %s\n", len(f.Lines), f.Source, f.SHA256, pool)
	return nil
}

// reportCodeFileError prints every rejected line (up to the kept 1000) on
// stderr, then a summary.
func reportCodeFileError(c *cli, err error) error {
	var cfe *tracecode.CodeFileError
	if !errors.As(err, &cfe) {
		return err
	}
	for _, p := range cfe.Problems {
		fmt.Fprintf(c.stderr, "%s: %s\n", cfe.Source, p)
	}
	if cfe.Total > len(cfe.Problems) {
		fmt.Fprintf(c.stderr, "%s: … and %d more problems\n", cfe.Source, cfe.Total-len(cfe.Problems))
	}
	fmt.Fprintf(c.stderr, "linectl codes import: %s rejected: %d problem(s), nothing imported\n", cfe.Source, cfe.Total)
	return exitError{1}
}

func codesPool(ctx context.Context, c *cli, args []string) error {
	fs := codesFlags("pool", c)
	data := fs.String("data", "", "data directory of the store (required)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *data == "" {
		return errors.New("pool: --data DIR is required")
	}
	store, closeStore, err := openPoolStore(ctx, c, *data)
	if err != nil {
		return err
	}
	err = writePools(ctx, c, store)
	if cerr := closeStore(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// writePools prints {"pools": [{"pool", "available", "allocated", "returned"}, …]}.
func writePools(ctx context.Context, c *cli, store tracecode.PoolStore) error {
	stats, err := store.Pools(ctx)
	if err != nil {
		return err
	}
	if stats == nil {
		stats = []tracecode.PoolStat{}
	}
	sort.Slice(stats, func(i, j int) bool { return stats[i].Pool < stats[j].Pool })
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Pools []tracecode.PoolStat `json:"pools"`
	}{stats})
}

func codesRender(ctx context.Context, c *cli, args []string) error {
	fs := codesFlags("render", c)
	product := fs.String("product", "", "product file (required)")
	level := &levelFlag{l: 1}
	fs.Var(level, "level", "packaging level of the code")
	code := fs.String("code", "", "the code, in any form Parse accepts, with the data the rule carries, e.g. (01)…(21)…(17)…(10)… (required)")
	out := fs.String("out", "", "PNG file to write (required)")
	module := fs.Int("module", 0, "pixels per module (default 4 for 2D, 2 for 1D)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *code == "" || *out == "" {
		return errors.New("render: --code and --out are required")
	}
	p, ls, err := loadLevel(*product, level.l)
	if err != nil {
		return err
	}
	parsed, err := tracecode.Parse(*code)
	if err != nil {
		return fmt.Errorf("render: --code: %w", err)
	}
	if err := p.Match(level.l, &parsed); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if err := writeFileAtomic(*out, func(w io.Writer) error {
		return render.PNG(w, &parsed, *ls.Rule, render.Options{Module: *module})
	}); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	fmt.Fprintf(c.stdout, "%s: %s as %s\n", *out, parsed.Normalized(), ls.Rule.Carrier)
	return nil
}

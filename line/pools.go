package line

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tracline/tracline/tracecode"
)

// PoolView is one code pool: what it holds and what it has handed out.
type PoolView struct {
	Pool      string          `json:"pool"`
	Product   string          `json:"product,omitempty"` // master-data key of the product whose level draws on it
	Level     tracecode.Level `json:"level,omitempty"`
	Available int64           `json:"available"` // in the pool, not yet allocated
	Allocated int64           `json:"allocated"` // handed out to batches (net of returns)
	Returned  int64           `json:"returned"`  // handed out, never sent, returned at batch end
}

// Pools lists every pool the ledger holds, and the pools the master data
// names that are still empty.
func (l *Line) Pools(ctx context.Context) ([]PoolView, error) {
	stats, err := l.store.Pools(ctx)
	if err != nil {
		return nil, err
	}
	byPool := map[string]int{}
	out := make([]PoolView, 0, len(stats))
	for _, s := range stats {
		byPool[s.Pool] = len(out)
		out = append(out, PoolView{Pool: s.Pool, Available: s.Available, Allocated: s.Allocated, Returned: s.Returned})
	}
	for _, k := range l.productKeys() {
		p := l.cfg.Products[k]
		for _, ls := range p.Levels {
			pool := poolOf(p, ls.Level)
			if pool == "" {
				continue
			}
			i, ok := byPool[pool]
			if !ok {
				i = len(out)
				byPool[pool] = i
				out = append(out, PoolView{Pool: pool})
			}
			if out[i].Product == "" {
				out[i].Product, out[i].Level = k, ls.Level
			}
		}
	}
	return out, nil
}

// ImportResult says what an import added.
type ImportResult struct {
	Pool   string `json:"pool"`
	Source string `json:"source"`
	SHA256 string `json:"sha256"`
	Codes  int    `json:"codes"`
}

// maxImportBytes bounds an uploaded code file.
const maxImportBytes = 64 << 20

// ImportCodeFile adds a platform code file (码段: text, one 20-digit code a
// line, or a zip of such files) to pool, all or nothing. pool must be a
// pool of the master data (an nmpa20 level's): the file's codes must carry
// that level's product id. A refused file changes nothing; the error wraps
// a *tracecode.CodeFileError listing the bad lines (tracecode.ErrBadCodeFile).
// The import is journaled as a command of user.
func (l *Line) ImportCodeFile(ctx context.Context, pool, name string, data []byte, user string) (ImportResult, error) {
	res, err := ImportResult{}, needUser("import", user)
	if err == nil {
		res, err = l.importCodeFile(ctx, pool, name, data)
	}
	args := map[string]any{"pool": pool, "file": name, "bytes": len(data)}
	if err == nil {
		args["codes"], args["sha256"] = res.Codes, res.SHA256
	}
	l.journalCommand(ctx, "", "import-codes", args, user, err)
	l.subs.notify()
	return res, err
}

func (l *Line) importCodeFile(ctx context.Context, pool, name string, data []byte) (ImportResult, error) {
	var productID string
	for _, k := range l.productKeys() {
		p := l.cfg.Products[k]
		for _, ls := range p.Levels {
			if poolOf(p, ls.Level) == pool {
				productID = ls.ProductID
			}
		}
	}
	switch {
	case pool == "":
		return ImportResult{}, errors.New("import: pool: required")
	case productID == "":
		var known []string
		for _, pv := range mustPools(l) {
			if pv.Product != "" {
				known = append(known, pv.Pool)
			}
		}
		return ImportResult{}, fmt.Errorf("import: pool %q is not an nmpa20 level's pool of the loaded master data (pools: %s)", pool, strings.Join(known, ", "))
	case len(data) == 0:
		return ImportResult{}, fmt.Errorf("import into %s: the file %q is empty", pool, name)
	case len(data) > maxImportBytes:
		return ImportResult{}, fmt.Errorf("import into %s: the file %q is %d bytes (max %d)", pool, name, len(data), maxImportBytes)
	}
	if name == "" {
		name = "upload"
	}
	f, err := tracecode.ParseCodeFile(name, data, productID)
	if err != nil {
		return ImportResult{}, fmt.Errorf("import into %s: %w", pool, err)
	}
	if err := tracecode.ImportCodeFile(ctx, l.store, pool, f); err != nil {
		return ImportResult{}, fmt.Errorf("import into %s: %w", pool, err)
	}
	return ImportResult{Pool: pool, Source: f.Source, SHA256: f.SHA256, Codes: len(f.Lines)}, nil
}

func mustPools(l *Line) []PoolView {
	pv, _ := l.Pools(context.Background())
	return pv
}

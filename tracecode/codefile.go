package tracecode

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrBadCodeFile is the identity of every rejected code file; the
// *CodeFileError says which lines and why.
var ErrBadCodeFile = errors.New("code file rejected")

// MaxCodeFileBytes bounds the uncompressed size of one code file (all zip
// entries together): about 24 million codes.
const MaxCodeFileBytes = 512 << 20

// maxProblems bounds the problems a CodeFileError keeps (it counts the rest).
const maxProblems = 1000

// CodeLine is one code of a platform code file and where it came from.
type CodeLine struct {
	File string // entry name within a zip; "" for a plain text file
	Line int    // 1-based
	Code Code
}

func (l CodeLine) where() string {
	if l.File != "" {
		return l.File + " line " + itoa(l.Line)
	}
	return "line " + itoa(l.Line)
}

// CodeFile is a platform code file (码段) that passed every check: every
// line is a 20-digit nmpa20 code of the expected product id, none twice.
type CodeFile struct {
	Source    string     // the file's base name
	SHA256    string     // of the file as read, hex
	ProductID string     // the 药品标识码 every code starts with
	Lines     []CodeLine // in file order
}

// Codes lists the codes in file order.
func (f *CodeFile) Codes() []Code {
	out := make([]Code, len(f.Lines))
	for i, l := range f.Lines {
		out[i] = l.Code
	}
	return out
}

// LineProblem is one rejected line.
type LineProblem struct {
	File   string // entry within a zip, "" for a plain file
	Line   int    // 1-based; 0 when about the file as a whole
	Reason string
}

func (p LineProblem) String() string {
	s := p.File
	if p.Line > 0 {
		if s != "" {
			s += " "
		}
		s += "line " + itoa(p.Line)
	}
	if s == "" {
		return p.Reason
	}
	return s + ": " + p.Reason
}

// CodeFileError lists why a code file was rejected. Nothing of it was
// imported.
type CodeFileError struct {
	Source   string
	Problems []LineProblem // the first maxProblems, in file order
	Total    int           // all problems found
}

func (e *CodeFileError) Error() string {
	const show = 10
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s), nothing imported", e.Source, e.Total)
	for i, p := range e.Problems {
		if i == show {
			fmt.Fprintf(&b, "; … and %d more", e.Total-show)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *CodeFileError) Unwrap() error { return ErrBadCodeFile }

// ReadCodeFile reads and checks a platform code file: plain text, one code
// per line, or a zip of such files (detected by content, not by name).
// Every line must be 20 digits, start with 8 and with productID (the
// level's 药品标识码), and appear once in the whole file. Blank lines are
// skipped. Any problem rejects the whole file with a *CodeFileError
// naming each line.
func ReadCodeFile(path, productID string) (*CodeFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("code file: %w", err)
	}
	return ParseCodeFile(filepath.Base(path), data, productID)
}

// ParseCodeFile is ReadCodeFile on the file's content; source names it.
func ParseCodeFile(source string, data []byte, productID string) (*CodeFile, error) {
	if len(productID) != 7 || !allDigits(productID) || productID[0] != '8' {
		return nil, fmt.Errorf("code file %s: product id %q is not a 7-digit 药品标识码 starting with 8", source, productID)
	}
	sum := sha256.Sum256(data)
	r := &codeReader{
		file: &CodeFile{Source: source, SHA256: hex.EncodeToString(sum[:]), ProductID: productID},
		err:  &CodeFileError{Source: source},
		seen: map[Code]CodeLine{},
	}
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")) {
		r.readZip(data)
	} else {
		if len(data) > MaxCodeFileBytes {
			r.problem("", 0, fmt.Sprintf("file is larger than %d MiB", MaxCodeFileBytes>>20))
		} else {
			r.readText("", bytes.NewReader(data))
		}
	}
	if r.err.Total == 0 && len(r.file.Lines) == 0 {
		r.problem("", 0, "no codes in the file")
	}
	if r.err.Total > 0 {
		return nil, r.err
	}
	return r.file, nil
}

type codeReader struct {
	file  *CodeFile
	err   *CodeFileError
	seen  map[Code]CodeLine
	total int64
}

func (r *codeReader) problem(file string, line int, reason string) {
	r.err.Total++
	if len(r.err.Problems) < maxProblems {
		r.err.Problems = append(r.err.Problems, LineProblem{File: file, Line: line, Reason: reason})
	}
}

func (r *codeReader) readZip(data []byte) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		r.problem("", 0, "not a readable zip: "+err.Error())
		return
	}
	files := 0
	for _, f := range zr.File {
		name := f.Name
		if f.FileInfo().IsDir() || strings.HasPrefix(name, "__MACOSX/") || filepath.Base(name) == ".DS_Store" {
			continue
		}
		files++
		if f.UncompressedSize64 > MaxCodeFileBytes || r.total+int64(f.UncompressedSize64) > MaxCodeFileBytes {
			r.problem(name, 0, fmt.Sprintf("zip content larger than %d MiB", MaxCodeFileBytes>>20))
			return
		}
		rc, err := f.Open()
		if err != nil {
			r.problem(name, 0, "cannot open zip entry: "+err.Error())
			continue
		}
		r.readText(name, io.LimitReader(rc, MaxCodeFileBytes-r.total+1))
		if err := rc.Close(); err != nil {
			r.problem(name, 0, "zip entry: "+err.Error())
		}
	}
	if files == 0 {
		r.problem("", 0, "zip holds no code files")
	}
}

func (r *codeReader) readText(file string, in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		r.total += int64(len(b)) + 1
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 BOM
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			continue
		}
		if reason := r.checkLine(s); reason != "" {
			r.problem(file, line, reason)
			continue
		}
		c := Code(s)
		cl := CodeLine{File: file, Line: line, Code: c}
		if first, dup := r.seen[c]; dup {
			r.problem(file, line, "duplicate of "+first.where())
			continue
		}
		r.seen[c] = cl
		r.file.Lines = append(r.file.Lines, cl)
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		r.problem(file, line+1, "line longer than 4096 bytes: not a code file")
	case err != nil:
		r.problem(file, line+1, "read: "+err.Error())
	}
	if r.total > MaxCodeFileBytes {
		r.problem(file, line, fmt.Sprintf("content larger than %d MiB", MaxCodeFileBytes>>20))
	}
}

func (r *codeReader) checkLine(s string) string {
	if !allDigits(s) {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return fmt.Sprintf("%q: character %s at column %d; a code is 20 digits", clip(s), quoteByte(s[i]), i+1)
			}
		}
	}
	if len(s) != 20 {
		return fmt.Sprintf("%q: %d digits, want 20", clip(s), len(s))
	}
	if s[0] != '8' {
		return fmt.Sprintf("%s: does not start with 8", s)
	}
	if s[:7] != r.file.ProductID {
		return fmt.Sprintf("%s: product id %s, this level's is %s", s, s[:7], r.file.ProductID)
	}
	return ""
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ImportCodeFile adds a checked code file to pool, all or nothing. If the
// store already knows some codes (pooled, used, anything), nothing is added
// and the *CodeFileError names their lines.
func ImportCodeFile(ctx context.Context, store PoolStore, pool string, f *CodeFile) error {
	source := f.Source + " sha256:" + f.SHA256
	err := store.AddToPool(ctx, pool, f.Codes(), source)
	if err == nil {
		return nil
	}
	var dup *DuplicateCodesError
	if !errors.As(err, &dup) {
		return fmt.Errorf("import %s into pool %q: %w", f.Source, pool, err)
	}
	bad := make(map[Code]bool, len(dup.Codes))
	for _, c := range dup.Codes {
		bad[c] = true
	}
	e := &CodeFileError{Source: f.Source}
	for _, l := range f.Lines {
		if bad[l.Code] {
			e.Total++
			if len(e.Problems) < maxProblems {
				e.Problems = append(e.Problems, LineProblem{File: l.File, Line: l.Line, Reason: string(l.Code) + ": already known to the store (pooled or used before)"})
			}
		}
	}
	if e.Total == 0 { // the store named codes the file does not hold
		return fmt.Errorf("import %s into pool %q: %w", f.Source, pool, err)
	}
	return e
}

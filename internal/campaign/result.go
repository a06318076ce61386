// Package campaign runs the proof campaigns of issue 13 — crash, fault,
// bad input and soak — and turns their own results into docs/reliability.md.
//
// Every campaign writes one Result as JSON (WriteResult) into a results
// directory; Report renders every result found there as Markdown. Nothing in
// docs/reliability.md is typed by hand: a row exists because a campaign ran
// its trial and counted what happened.
package campaign

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Result is what one run of one campaign found.
type Result struct {
	Campaign string    `json:"campaign"` // crash, fault, input, soak
	Title    string    `json:"title"`    // one line for the report's heading
	Command  string    `json:"command"`  // how to run it again
	Build    string    `json:"build"`    // version or commit of the build that ran
	Host     string    `json:"host"`     // machine summary: cores, OS
	Started  time.Time `json:"started"`
	Elapsed  float64   `json:"elapsed_s"`
	Rows     []Row     `json:"rows"`
	// Figures are named numbers worth a line of their own (units run,
	// kills, memory at start and end, …), in the order given.
	Figures []Figure `json:"figures,omitempty"`
	// Failures lists, in words, every check that failed; empty when the
	// campaign passed.
	Failures []string `json:"failures,omitempty"`
}

// Row is one thing tried, and how it went.
type Row struct {
	What     string `json:"what"`     // what was tried
	Tries    int    `json:"tries"`    // how many times
	Survived int    `json:"survived"` // tries where every check held
	Failed   int    `json:"failed"`   // tries where one did not
	Checks   string `json:"checks"`   // what was checked after each try
	Notes    string `json:"notes,omitempty"`
}

// Figure is a named measurement.
type Figure struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Passed reports whether every row survived every try and nothing failed.
func (r Result) Passed() bool {
	if len(r.Failures) > 0 {
		return false
	}
	for _, row := range r.Rows {
		if row.Failed > 0 || row.Survived != row.Tries {
			return false
		}
	}
	return true
}

// Validate checks that r is a result a report can be made from.
func (r Result) Validate() error {
	var errs []error
	if r.Campaign == "" {
		errs = append(errs, errors.New("campaign is empty"))
	}
	if r.Started.IsZero() {
		errs = append(errs, errors.New("started is missing"))
	}
	for i, row := range r.Rows {
		if row.What == "" {
			errs = append(errs, fmt.Errorf("row %d: what is empty", i+1))
		}
		if row.Tries < 0 || row.Survived < 0 || row.Failed < 0 || row.Survived+row.Failed != row.Tries {
			errs = append(errs, fmt.Errorf("row %d (%s): tries %d ≠ survived %d + failed %d", i+1, row.What, row.Tries, row.Survived, row.Failed))
		}
	}
	return errors.Join(errs...)
}

// WriteResult writes r to dir as <campaign>.json, replacing an earlier run
// of the same campaign, through a temporary file so that a reader never
// sees half a result.
func WriteResult(dir string, r Result) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("campaign result: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+r.Campaign+"-*.json")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, r.Campaign+".json"))
}

// ReadResults reads every <campaign>.json in dir, in the report's order
// (crash, fault, input, soak, then any other by name).
func ReadResults(dir string) ([]Result, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, n := range names {
		if strings.HasPrefix(filepath.Base(n), ".") {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var r Result
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out = append(out, r)
	}
	order := map[string]int{"crash": 0, "fault": 1, "input": 2, "soak": 3}
	rank := func(c string) int {
		if o, ok := order[c]; ok {
			return o
		}
		return len(order)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if ri, rj := rank(out[i].Campaign), rank(out[j].Campaign); ri != rj {
			return ri < rj
		}
		return out[i].Campaign < out[j].Campaign
	})
	return out, nil
}

// Report writes results as docs/reliability.md's Markdown.
func Report(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("# Reliability — the proof campaigns\n\n")
	b.WriteString("Generated by `linectl campaign report` from the campaigns' own result files; not edited by hand.\n")
	b.WriteString("Each campaign can be run again with the command under its heading.\n\n")
	if len(results) == 0 {
		b.WriteString("No campaign has been run.\n")
	}
	b.WriteString("| campaign | verdict | tries | survived | failed | run |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		tries, surv, failed := 0, 0, 0
		for _, row := range r.Rows {
			tries += row.Tries
			surv += row.Survived
			failed += row.Failed
		}
		verdict := "passed"
		if !r.Passed() {
			verdict = "**FAILED**"
		}
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %d | %d | %d | %s, %.0f s |\n", r.Campaign, anchor(r), verdict, tries, surv, failed, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed)
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n## %s\n\n", heading(r))
		fmt.Fprintf(&b, "`%s` — build %s on %s; started %s, %.0f s.\n\n", r.Command, orDash(r.Build), orDash(r.Host), r.Started.UTC().Format(time.RFC3339), r.Elapsed)
		if len(r.Rows) > 0 {
			b.WriteString("| what was tried | tries | survived | failed | checked after each | notes |\n|---|---|---|---|---|---|\n")
			for _, row := range r.Rows {
				fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s |\n", cell(row.What), row.Tries, row.Survived, row.Failed, cell(row.Checks), cell(row.Notes))
			}
			b.WriteString("\n")
		}
		if len(r.Figures) > 0 {
			for _, f := range r.Figures {
				fmt.Fprintf(&b, "- %s: %s\n", f.Name, f.Value)
			}
			b.WriteString("\n")
		}
		if len(r.Failures) > 0 {
			b.WriteString("Failures:\n\n")
			for _, f := range r.Failures {
				fmt.Fprintf(&b, "- %s\n", f)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func heading(r Result) string {
	if r.Title != "" {
		return r.Campaign + ": " + r.Title
	}
	return r.Campaign
}

// anchor is the GitHub-style anchor of r's heading.
func anchor(r Result) string {
	var b strings.Builder
	for _, c := range strings.ToLower(heading(r)) {
		switch {
		case c == ' ':
			b.WriteByte('-')
		case c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c > 127:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

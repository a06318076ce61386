package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/release"
	"github.com/tracline/tracline/internal/accounts"
)

// cmdRelease: linectl release --data DIR --batch B [--user U --meaning
// released|rejected --comment C] (password on stdin). Without --user it
// shows the batch record and its rules and signs nothing.
func cmdRelease(ctx context.Context, c *cli, args []string) error {
	return runRelease(ctx, c, args, controllerAccounts)
}

// controllerAccounts is the controller's accounts (internal/accounts, in
// the ledger) as the release's Authenticator.
func controllerAccounts(ctx context.Context, s *aggregation.Store, log *slog.Logger) (release.Authenticator, error) {
	acc, err := accounts.Open(ctx, accounts.Config{}, accounts.Ledger(s), log)
	if err != nil {
		return nil, err
	}
	return accounts.Signer(acc), nil
}

func runRelease(ctx context.Context, c *cli, args []string, accounts func(context.Context, *aggregation.Store, *slog.Logger) (release.Authenticator, error)) error {
	fs := newFlags("release", c)
	data := fs.String("data", "", "ledger data directory (required)")
	batch := fs.String("batch", "", "batch id (required)")
	user := fs.String("user", "", "the signing QA user; the password is read from stdin (first line). Without --user: show the record only")
	meaning := fs.String("meaning", "", "released or rejected (with --user)")
	comment := fs.String("comment", "", "the signature's comment (with --user)")
	hash := fs.String("hash", "", "the record hash the signer reviewed: refuse if the record changed since")
	sigs := fs.String("signatures", "", "four-eyes: ask for a second QA user's signature even if the ledger's policy is single (the policy itself is --set-policy's)")
	activation := fs.String("activation", "", "separate (linectl release --activate later) or on-release (default: the ledger's policy)")
	setPolicy := fs.String("set-policy", "", "set the ledger's release policy: single or four-eyes (with --user, an admin, and the password; --activation sets its activation)")
	activate := fs.Bool("activate", false, "activate the released batch (a separate step; needs --user and the password)")
	verify := fs.String("verify", "auto", "auto (verify the ledger when no journaled verify covers the batch), always, never")
	htmlOut := fs.String("html", "", "write the batch record as HTML to this file")
	pdfOut := fs.String("pdf", "", "write the batch record as PDF to this file")
	font := fs.String("font", release.DefaultFont, "TrueType font (.ttf or .ttc) with Chinese glyphs for --pdf")
	asJSON := fs.Bool("json", false, "print the record (and the signature's outcome) as JSON")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *setPolicy != "" {
		return setReleasePolicy(ctx, c, *data, *user, *setPolicy, *activation, accounts)
	}
	switch {
	case *data == "":
		return errors.New("--data DIR is required")
	case *batch == "":
		return errors.New("--batch B is required")
	case *verify != "auto" && *verify != "always" && *verify != "never":
		return fmt.Errorf("--verify %q: want auto, always or never", *verify)
	case *user == "" && (*meaning != "" || *comment != "" || *activate):
		return errors.New("--meaning, --comment and --activate need --user (and the password on stdin)")
	case *activate && (*meaning != "" || *comment != ""):
		return errors.New("--activate is its own step: without --meaning and --comment")
	}
	var m release.Meaning
	if *user != "" && !*activate {
		var err error
		if m, err = release.ParseMeaning(*meaning); err != nil {
			return fmt.Errorf("--meaning: %w", err)
		}
		if strings.TrimSpace(*comment) == "" {
			return errors.New("--comment is required: say why")
		}
	}
	asked := release.Config{Signatures: release.Signatures(*sigs), Activation: release.Activation(*activation)}
	if err := asked.Validate(); err != nil {
		return err
	}
	var fontBytes []byte
	if *pdfOut != "" { // before anything is signed
		var err error
		if fontBytes, err = release.LoadFont(*font); err != nil {
			return err
		}
	}
	var password string
	if *user != "" {
		var err error
		if password, err = readPassword(c.stdin); err != nil {
			return err
		}
	}
	if _, err := os.Stat(*data); err != nil {
		return fmt.Errorf("no ledger at %s: %w", *data, err)
	}
	s, err := aggregation.Open(*data, aggregation.Options{Logger: c.log})
	if err != nil {
		return err
	}
	defer s.Close()
	auth, err := accounts(ctx, s, c.log)
	if err != nil {
		return err
	}
	cfg, err := release.LoadConfig(ctx, s)
	if err != nil {
		return err
	}
	cfg = cfg.Stricter(asked)
	if asked.Activation != "" {
		cfg.Activation = asked.Activation
	}
	d, err := release.New(cfg, s, auth, nil, c.log)
	if err != nil {
		return err
	}
	rec, err := d.Record(ctx, *batch)
	if err != nil {
		return err
	}
	sys := aggregation.Actor{Kind: aggregation.ActorSystem, ID: "linectl-release"}
	if *verify == "always" || (*verify == "auto" && !rec.Chain.Verified && !*activate) {
		fmt.Fprintln(c.stderr, "linectl release: verifying the ledger (replays every event; minutes for millions of codes)…")
		run, err := d.Verify(ctx, sys)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "linectl release: verify %s in %.1f s: %d events, %d problems\n", map[bool]string{true: "OK", false: "FAILED"}[run.OK], run.Seconds, run.Events, run.Problems)
		if rec, err = d.Record(ctx, *batch); err != nil {
			return err
		}
	}
	var out *release.Outcome
	var signErr error
	switch {
	case *activate:
		signer, err := auth.Authenticate(ctx, *user, password)
		if err != nil {
			return fmt.Errorf("activate: %w", release.ErrAuth)
		}
		if err := d.Activate(ctx, *batch, aggregation.Actor{Kind: aggregation.ActorUser, ID: signer.User}); err != nil {
			return err
		}
		if rec, err = d.Record(ctx, *batch); err != nil {
			return err
		}
	case *user != "":
		out, signErr = d.Sign(ctx, release.SignRequest{Batch: *batch, User: *user, Password: password, Meaning: m, Comment: *comment, Hash: *hash})
		if signErr == nil {
			rec = out.Record
		}
	}
	if err := writeRecordFiles(rec, *htmlOut, *pdfOut, fontBytes); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		v := any(rec)
		if out != nil {
			v = struct {
				Record  *release.Record  `json:"record"`
				Outcome *release.Outcome `json:"outcome"`
			}{rec, &release.Outcome{Signature: out.Signature, Voided: out.Voided, Decided: out.Decided, State: out.State, Activated: out.Activated, Waiting: out.Waiting}}
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	} else {
		printRecordSummary(c.stdout, rec)
	}
	switch {
	case signErr != nil:
		fmt.Fprintf(c.stderr, "linectl release: %v\n", signErr)
		return exitError{1}
	case out != nil && !*asJSON:
		if out.Decided {
			fmt.Fprintf(c.stdout, "signed %s by %s: the batch is %s%s\n", m, *user, out.State, map[bool]string{true: " (activated)", false: ""}[out.Activated])
		} else {
			fmt.Fprintf(c.stdout, "signed %s by %s: %s\n", m, *user, out.Waiting)
		}
		for _, v := range out.Voided {
			fmt.Fprintf(c.stdout, "signature %d voided: the record changed after it\n", v)
		}
	case *activate && !*asJSON:
		fmt.Fprintf(c.stdout, "batch %s activated\n", *batch)
	}
	return nil
}

// setReleasePolicy: linectl release --data DIR --user ADMIN --set-policy
// single|four-eyes [--activation separate|on-release] (password on stdin).
func setReleasePolicy(ctx context.Context, c *cli, data, user, sigs, activation string, accounts func(context.Context, *aggregation.Store, *slog.Logger) (release.Authenticator, error)) error {
	if data == "" || user == "" {
		return errors.New("--set-policy needs --data DIR and --user (an admin; the password on stdin)")
	}
	cfg := release.Config{Signatures: release.Signatures(sigs), Activation: release.Activation(activation)}
	if err := cfg.Validate(); err != nil {
		return err
	}
	password, err := readPassword(c.stdin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(data); err != nil {
		return fmt.Errorf("no ledger at %s: %w", data, err)
	}
	s, err := aggregation.Open(data, aggregation.Options{Logger: c.log})
	if err != nil {
		return err
	}
	defer s.Close()
	auth, err := accounts(ctx, s, c.log)
	if err != nil {
		return err
	}
	if err := release.SetConfig(ctx, s, auth, user, password, cfg); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "release policy: %s signature(s), activation %s\n", cfg.Signatures, map[bool]string{true: "separate", false: string(cfg.Activation)}[cfg.Activation == ""])
	return nil
}

func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("the password is read from stdin (first line); got none")
	}
	return pw, nil
}

func writeRecordFiles(rec *release.Record, htmlPath, pdfPath string, font []byte) error {
	write := func(path string, fn func(io.Writer) error) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if htmlPath != "" {
		if err := write(htmlPath, func(w io.Writer) error { return release.WriteHTML(w, rec) }); err != nil {
			return fmt.Errorf("--html: %w", err)
		}
	}
	if pdfPath != "" {
		if err := write(pdfPath, func(w io.Writer) error { return release.WritePDF(w, rec, font) }); err != nil {
			return fmt.Errorf("--pdf: %w", err)
		}
	}
	return nil
}

func printRecordSummary(w io.Writer, rec *release.Record) {
	fmt.Fprintf(w, "batch %s (%s, line %s): %s\n", rec.Header.Batch, rec.Header.Product, rec.Header.Line, rec.State)
	fmt.Fprintf(w, "record sha256 %s\n", rec.Hash)
	for _, r := range rec.Rules {
		mark := "✓"
		if r.Status != release.RuleOK {
			mark = "✗"
		}
		fmt.Fprintf(w, "%s %-10s %s: %s\n", mark, r.ID, r.Status, r.Detail)
		for _, it := range r.Items {
			fmt.Fprintf(w, "    %s\n", it)
		}
		if r.More > 0 {
			fmt.Fprintf(w, "    … %d more\n", r.More)
		}
	}
	for _, s := range rec.Signatures {
		fmt.Fprintf(w, "signature %d: %s (%s) %s at %s: %s", s.Seq, s.FullName, s.User, s.Meaning, s.At, s.State)
		if s.Why != "" {
			fmt.Fprintf(w, " — %s", s.Why)
		}
		fmt.Fprintln(w)
	}
}

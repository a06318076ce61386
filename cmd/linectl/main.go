// Command linectl is the Tracline line controller: the daemon (run, demo) and
// its command-line tools (codes, verify, backup, restore, export, release,
// bench). Everything is built and wired here from decoded config; the
// packages below never read flags or the environment themselves.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// cli carries what every command needs: its streams and a logger.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// command is one linectl sub-command. Each lives in its own file.
type command struct {
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

// exitError makes linectl exit with a given code without printing more;
// the command has already said what was wrong.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func commands() map[string]command {
	return map[string]command{
		"codes":    {"generate, check, import, pool and render trace codes", cmdCodes},
		"verify":   {"replay the journal, check the hash chain and every invariant", cmdVerify},
		"export":   {"a released batch's hand-off document (msfx-xml, epcis-json, epcis-xml) on stdout", cmdExport}, // export helper
		"backup":   {"write a backup of the store to a file (or stdout)", cmdBackup},
		"restore":  {"restore a backup into an empty data directory", cmdRestore},
		"bench":    {"benchmarks printing JSON: ledger, devices, line, soak", cmdBench},
		"demo":     {"the whole line on built-in simulators, HMI on http://127.0.0.1:8080", cmdDemo},
		"run":      {"the controller against the devices its config names", cmdRun},
		"release":  {"show a batch record and its release rules, or sign its release (password on stdin)", cmdRelease},
		"campaign": {"the proof campaigns: input (bad input)", cmdCampaign},
	}
}

func cmdBench(ctx context.Context, c *cli, args []string) error {
	benches := map[string]func(context.Context, *cli, []string) error{
		"ledger":  benchLedger,
		"devices": benchDevices,
		"line":    benchLine,
		"soak":    benchSoak,
	}
	if len(args) == 0 || benches[args[0]] == nil {
		return fmt.Errorf("usage: linectl bench ledger|devices|line|soak [flags]")
	}
	return benches[args[0]](ctx, c, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: linectl <command> [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "linectl: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{
		stdin: stdin, stdout: stdout, stderr: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	// The gopcua server (in the demo's simulators) prints through the
	// standard logger; route it to ours at debug level.
	log.SetFlags(0)
	log.SetOutput(io.Discard)
	if err := cmd.run(ctx, c, args[1:]); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintf(stderr, "linectl %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

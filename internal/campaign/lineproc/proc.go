// Package lineproc runs a simulated line the way users run it: `linesim`
// and `linectl run` as two separate processes on loopback, the controller
// driven through its local HTTP API (commands, state) and the line through
// linesim's (ground truth, purge, the reject bin, link faults). It is the
// harness of the whole-line process tests (cmd/linectl) and of the crash
// and fault campaigns (internal/campaign).
//
// Every process is started in its own process group; Line.Close kills
// them all. Waiting is always polling a condition with a deadline (the
// caller's context); nothing here asserts how long something took.
//
// Who may import it: internal/campaign and cmd/linectl (tests and the
// campaign command).
package lineproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Binaries are the two programs a Line runs.
type Binaries struct {
	Linesim string
	Linectl string
}

// Build builds linesim and linectl from the module at root into dir.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return Binaries{}, fmt.Errorf("module root not found at %s: %w", root, err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return Binaries{}, fmt.Errorf("the go command is needed to build linesim and linectl: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	var b Binaries
	for _, x := range []struct {
		name string
		dst  *string
	}{{"linesim", &b.Linesim}, {"linectl", &b.Linectl}} {
		out := filepath.Join(dir, x.name)
		cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, "./cmd/"+x.name)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go build ./cmd/%s: %v\n%s", x.name, err, msg)
		}
		*x.dst = out
	}
	return b, nil
}

// Proc is one child process in its own process group; its stdout and
// stderr go to a log file.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // Wait's answer, once done is closed
}

// StartProc starts bin with args (and extra environment variables env,
// "K=V") in its own process group, its output in logPath.
func StartProc(name, logPath, bin string, env []string, args ...string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Kill kills the process group with SIGKILL (as a crash or a power cut
// would) and waits for the process to be reaped.
func (p *Proc) Kill() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Stop asks the process to stop (SIGTERM, as a supervisor would) and
// waits for it; the answer is its exit. Past ctx it is killed.
func (p *Proc) Stop(ctx context.Context) error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("%s did not stop on SIGTERM: %w", p.Name, ctx.Err())
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit (after Done).
func (p *Proc) Err() error { return p.err }

// Exited says whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Killed says whether the process exited on SIGKILL (its own kill point,
// or Kill).
func (p *Proc) Killed() bool {
	if !p.Exited() {
		return false
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Log is everything the process wrote so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Digest is what a failure is read from: the log's warnings, errors and
// anything not from the logger (a panic, a usage message), then its last n
// lines.
func (p *Proc) Digest(n int) string {
	var b strings.Builder
	for _, ln := range strings.Split(p.Log(), "\n") {
		if ln != "" && (!strings.HasPrefix(ln, "time=") || !strings.Contains(ln, "level=INFO")) {
			b.WriteString(ln + "\n")
		}
	}
	b.WriteString("--- last lines:\n")
	b.WriteString(p.Tail(n))
	return b.String()
}

// Tail is the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… %d lines before", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

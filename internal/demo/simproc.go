package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tracline/tracline/cmd/linesim/devsim"
	"github.com/tracline/tracline/cmd/linesim/sim"
)

// The simulated line in a process of its own (Options.SimCommand): the
// controller then shares neither its heap, its garbage collector nor its
// Go scheduler with the simulator's five OPC UA servers, PLC and conveyor
// — as on a real line, where the devices are other hardware. They still
// share this machine's CPUs.
//
// The protocol, over the child's stdin and stdout, one JSON object a line:
// the parent writes a simRequest; the child answers {"endpoints": …} once
// every device listens, then {"done": true} when the last unit has left
// the line; it closes the simulator and exits when its stdin ends (the
// parent closed it, or died). The ground truth is read over the
// simulator's own HTTP endpoint (GET /groundtruth).

// simRequest is what the parent asks of the simulator process.
type simRequest struct {
	Config sim.Config `json:"config"`
	// Nice is added to the process's niceness (0: the controller's).
	Nice int `json:"nice"`
}

type simMessage struct {
	Endpoints *sim.Endpoints `json:"endpoints,omitempty"`
	Done      bool           `json:"done,omitempty"`
	Err       string         `json:"error,omitempty"`
}

// simulator is what the demo needs of a simulated line, in this process
// (*sim.Sim) or another (*simProcess).
type simulator interface {
	Endpoints() sim.Endpoints
	Done() <-chan struct{}
	truth() (sim.GroundTruth, error)
	loopLag() (sim.LoopLag, error)
	Close() error
}

// inProcess is the simulated line in this process.
type inProcess struct{ *sim.Sim }

func (s inProcess) truth() (sim.GroundTruth, error) { return s.GroundTruth(), nil }

func (s inProcess) loopLag() (sim.LoopLag, error) { return s.LoopLag(), nil }

// ServeSim is the simulator process's side (`linectl bench simproc`): it
// reads a simRequest from in, starts the simulated line, reports on out,
// and runs until in ends or ctx does.
func ServeSim(ctx context.Context, in io.Reader, out io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("simulator process: no request on stdin: %w", err)
	}
	var req simRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return fmt.Errorf("simulator process: request: %w", err)
	}
	enc := json.NewEncoder(out)
	fail := func(err error) error {
		enc.Encode(simMessage{Err: err.Error()})
		return err
	}
	if req.Nice != 0 {
		// The raw syscall answers 20 − nice.
		raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
		if err == nil {
			err = syscall.Setpriority(syscall.PRIO_PROCESS, 0, 20-raw+req.Nice)
		}
		if err != nil {
			return fail(fmt.Errorf("simulator process: nice %+d: %w", req.Nice, err))
		}
	}
	s, err := sim.New(req.Config, log.With("part", "linesim"), sim.WithDevices(devsim.Factory(devsim.Config{}, log.With("part", "devsim"))))
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		return fail(err)
	}
	defer s.Close()
	ep := s.Endpoints()
	msgs := make(chan simMessage, 2)
	msgs <- simMessage{Endpoints: &ep}
	go func() {
		select {
		case <-s.Done():
			msgs <- simMessage{Done: true}
		case <-ctx.Done():
		}
	}()
	go func() {
		io.Copy(io.Discard, br) // until the parent closes stdin
		cancel()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
	}
}

// simProcess is the parent's handle on a simulator process.
type simProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ep    sim.Endpoints
	done  chan struct{}
	exit  chan error
}

// startSimProcess starts argv as a simulator process for cfg.
func startSimProcess(ctx context.Context, argv []string, cfg sim.Config, nice int) (_ *simProcess, err error) {
	if len(argv) == 0 {
		return nil, errors.New("demo: no simulator command")
	}
	cfg.Listen.HTTP = "" // the ground truth is read over HTTP
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("demo: simulator process %v: %w", argv, err)
	}
	p := &simProcess{cmd: cmd, stdin: stdin, done: make(chan struct{}), exit: make(chan error, 1)}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	req, _ := json.Marshal(simRequest{Config: cfg, Nice: nice})
	if _, err := stdin.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("demo: simulator process: %w", err)
	}
	msgs := make(chan simMessage)
	go func() {
		defer close(msgs)
		dec := json.NewDecoder(stdout)
		for {
			var m simMessage
			if dec.Decode(&m) != nil {
				return
			}
			msgs <- m
		}
	}()
	go func() { p.exit <- cmd.Wait() }()
	select {
	case m, ok := <-msgs:
		switch {
		case !ok:
			return nil, errors.New("demo: simulator process exited before it served")
		case m.Err != "":
			return nil, fmt.Errorf("demo: simulator process: %s", m.Err)
		case m.Endpoints == nil:
			return nil, errors.New("demo: simulator process: no endpoints")
		}
		p.ep = *m.Endpoints
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		return nil, errors.New("demo: simulator process did not serve within a minute")
	}
	go func() {
		for m := range msgs {
			if m.Done {
				close(p.done)
			}
		}
	}()
	return p, nil
}

func (p *simProcess) Endpoints() sim.Endpoints { return p.ep }

// cpuTime is the process's CPU time so far (user + system, from
// /proc/PID/stat; 0 if it cannot be read).
func (p *simProcess) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis: state is field 3,
	// utime 14 and stime 15, in clock ticks (USER_HZ, 100 on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * (time.Second / 100)
}

func (p *simProcess) Done() <-chan struct{} { return p.done }

// truth reads the simulator's ground truth over HTTP.
func (p *simProcess) truth() (sim.GroundTruth, error) {
	var gt sim.GroundTruth
	if err := getJSON(p.ep.HTTP, &gt); err != nil {
		return gt, fmt.Errorf("demo: the simulator process's ground truth: %w", err)
	}
	return gt, nil
}

// loopLag reads how late the simulator's event loop has been, over HTTP.
func (p *simProcess) loopLag() (sim.LoopLag, error) {
	var l sim.LoopLag
	if err := getJSON(strings.TrimSuffix(p.ep.HTTP, "/groundtruth")+"/looplag", &l); err != nil {
		return l, fmt.Errorf("demo: the simulator process's loop lag: %w", err)
	}
	return l, nil
}

// getJSON decodes the answer of GET url into v.
func getJSON(url string, v any) error {
	c := http.Client{Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Close ends the simulator process (its stdin closed, then killed if it
// has not exited within 10 s).
func (p *simProcess) Close() error {
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
	var err error
	select {
	case err = <-p.exit:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		err = <-p.exit
	}
	p.exit <- err // Close again returns the same
	return err
}

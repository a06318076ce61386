package line

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Engineering is the wiring's engineering access to the devices: what the
// engineer's screen shows (every mapped PLC signal with its value and age,
// the printer's buffer, the cameras' counters) and its test actions. It is
// optional; the Line refuses test actions while a batch runs.
type Engineering interface {
	// Monitor reads the devices' live values.
	Monitor(ctx context.Context) (Monitor, error)
	// Test carries out one test action and says what happened.
	Test(ctx context.Context, a TestAction) (string, error)
}

// Monitor is the engineer's live view of the devices.
type Monitor struct {
	Signals []SignalValue     `json:"signals"`
	Printer map[string]string `json:"printer,omitempty"` // e.g. buffer depth, codes held, counters
	Cameras map[string]string `json:"cameras,omitempty"` // counters by camera
}

// SignalValue is one mapped PLC signal.
type SignalValue struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	Value   string `json:"value"`
	AgeMs   int64  `json:"age_ms"` // -1: never read
}

// Test action kinds.
const (
	TestOutput = "output" // write a test value to a PLC output
	TestPrint  = "print"  // print a test code on the coding printer
	TestCamera = "camera" // trigger / read the camera once
)

// TestAction is an engineer's test action.
type TestAction struct {
	Kind   string `json:"kind"`             // output, print, camera
	Output string `json:"output,omitempty"` // output: the signal's name
	Value  int    `json:"value,omitempty"`  // output: the value
	Text   string `json:"text,omitempty"`   // print: the test text (never a production code)
	Device string `json:"device,omitempty"` // camera: which one ("" the unit camera)
}

// Validate checks the action's form.
func (a TestAction) Validate() error {
	switch a.Kind {
	case TestOutput:
		if a.Output == "" {
			return errors.New("test action output: output (the signal's name) is required")
		}
	case TestPrint, TestCamera:
	default:
		return fmt.Errorf("test action: kind %q is not output, print or camera", a.Kind)
	}
	return nil
}

// ErrNoEngineering: the wiring gave the line no engineering access.
var ErrNoEngineering = errors.New("no engineering access to the devices is configured")

// Monitor returns the engineer's live view of the devices.
func (l *Line) Monitor(ctx context.Context) (Monitor, error) {
	if l.cfg.Engineering == nil {
		return Monitor{}, ErrNoEngineering
	}
	c, cancel := context.WithTimeout(ctx, l.cfg.IOTimeout)
	defer cancel()
	return l.cfg.Engineering.Monitor(c)
}

// TestAction carries out an engineer's test action: refused while a batch
// runs (a test output or print on a running line would reach units). It is
// journaled as a command of user.
func (l *Line) TestAction(ctx context.Context, a TestAction, user string) (string, error) {
	out, err := "", needUser("test action", user)
	if err == nil {
		out, err = l.testAction(ctx, a)
	}
	batch := ""
	if run := l.current(); run != nil {
		batch = run.spec.ID
	}
	l.journalCommand(ctx, batch, "test-"+a.Kind, a, user, err)
	return out, err
}

func (l *Line) testAction(ctx context.Context, a TestAction) (string, error) {
	if err := a.Validate(); err != nil {
		return "", err
	}
	if l.cfg.Engineering == nil {
		return "", ErrNoEngineering
	}
	if run := l.current(); run != nil {
		st := run.r.Snapshot().State
		return "", fmt.Errorf("test action %s: batch %s is open (%s); complete it first: %w", a.Kind, run.spec.ID, st, ErrBusy)
	}
	c, cancel := context.WithTimeout(ctx, l.cfg.IOTimeout)
	defer cancel()
	start := time.Now()
	out, err := l.cfg.Engineering.Test(c, a)
	if err != nil {
		return out, fmt.Errorf("test action %s: %w", a.Kind, err)
	}
	l.log.Info("engineering test action", "kind", a.Kind, "took", time.Since(start), "result", out)
	return out, nil
}

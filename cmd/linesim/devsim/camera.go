package devsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/tracline/tracline/cmd/linesim/sim"
	"github.com/tracline/tracline/cmd/linesim/uasim"
)

// Node names of a simulated camera. The vision camera's object is "Camera",
// an aggregation camera's is "AggCamera"; the nodes are "<object>.<suffix>",
// e.g. "ns=1;s=Camera.LastResult".
const (
	CameraObject    = "Camera"
	AggCameraObject = "AggCamera"

	SuffixResultCount = "ResultCount"    // UInt32 R: seq of the last result
	SuffixLastResult  = "LastResult"     // String R: JSON ResultRecord
	SuffixResults     = "Results"        // String[] R: last N JSON ResultRecords, oldest first
	SuffixState       = "State"          // String R: running
	SuffixGetResult   = "GetResult"      // method (UInt32 seq) → (String JSON result); BadNotFound when gone
	SuffixStartJob    = "StartSingleJob" // method (UInt32 item) → (UInt32 jobId); trigger "method" only

	// Separate field nodes (for the field-node profile), written before
	// the counter: the last result's item, codes, grade and pass flag.
	SuffixItem  = "Item"  // UInt32 R
	SuffixCodes = "Codes" // String[] R
	SuffixGrade = "Grade" // String R
	SuffixPass  = "Pass"  // Boolean R
)

// CameraConfig configures a simulated camera (vision or aggregation).
type CameraConfig struct {
	// Listen is host:port ("" = 127.0.0.1:0).
	Listen string `yaml:"listen"`
	// Ring is how many results the Results ring keeps (default 256).
	Ring int `yaml:"ring"`
	// LowGrade is the grade published for a sim.CameraLowGrade fault
	// (default "D").
	LowGrade string `yaml:"low_grade"`
	// Trigger: "self" (default: a result for every unit that passes, with
	// the conveyor's item id) or "method" (OPC 40100 style: a result only
	// for units the controller triggered with StartSingleJob(item), carrying
	// the job's item id; a unit passing with no job pending gets no result).
	Trigger string `yaml:"trigger"`
}

// Validate reports what is wrong with the config.
func (c CameraConfig) Validate() error { return c.validate("devsim.camera") }

// validate names the settings under prefix (devsim.camera, devsim.agg_camera, …).
func (c CameraConfig) validate(prefix string) error {
	var errs []error
	if c.Ring < 0 || c.Ring > 100000 {
		errs = append(errs, fmt.Errorf("%s.ring: %d is outside 0..100000", prefix, c.Ring))
	}
	switch c.LowGrade {
	case "", "A", "B", "C", "D", "E", "F":
	default:
		errs = append(errs, fmt.Errorf("%s.low_grade: %q is not a grade A..F", prefix, c.LowGrade))
	}
	if err := checkListen(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("%s.listen: %w", prefix, err))
	}
	switch c.Trigger {
	case "", "self", "method":
	default:
		errs = append(errs, fmt.Errorf("%s.trigger: %q is not self or method", prefix, c.Trigger))
	}
	return errors.Join(errs...)
}

// resultDevice is an OPC UA server publishing ResultRecords.
type resultDevice struct {
	cfg    CameraConfig
	log    *slog.Logger
	srv    *uasim.Server
	object string
	level  int

	mu    sync.Mutex
	recs  recordLog
	vItem *uasim.Variable
	vCode *uasim.Variable
	vGrad *uasim.Variable
	vPass *uasim.Variable
	jobs  []uint32 // trigger "method": items of started jobs, oldest first
	jobID uint32
}

func newResultDevice(cfg CameraConfig, log *slog.Logger, object, name, uri string, level int) (*resultDevice, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Ring == 0 {
		cfg.Ring = 256
	}
	if cfg.LowGrade == "" {
		cfg.LowGrade = "D"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, port := splitListen(cfg.Listen)
	srv, err := uasim.New(uasim.Config{Name: name, NamespaceURI: uri, Host: host, Port: port}, log)
	if err != nil {
		return nil, err
	}
	d := &resultDevice{cfg: cfg, log: log, srv: srv, object: object, level: level}
	d.recs.size = cfg.Ring
	obj, err := srv.AddObject("", object)
	if err != nil {
		return nil, err
	}
	if d.recs.count, err = srv.AddVariable(obj, object+"."+SuffixResultCount, uint32(0), nil); err != nil {
		return nil, err
	}
	if d.recs.last, err = srv.AddVariable(obj, object+"."+SuffixLastResult, "", nil); err != nil {
		return nil, err
	}
	if d.recs.rings, err = srv.AddVariable(obj, object+"."+SuffixResults, []string{}, nil); err != nil {
		return nil, err
	}
	if _, err = srv.AddVariable(obj, object+"."+SuffixState, "running", nil); err != nil {
		return nil, err
	}
	if _, err = srv.AddMethod(obj, object+"."+SuffixGetResult, func(args []any) ([]any, error) {
		if len(args) != 1 {
			return nil, &uasim.StatusError{Code: 0x80AB0000, Msg: "GetResult takes one UInt32"}
		}
		seq, ok := args[0].(uint32)
		if !ok {
			return nil, &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("GetResult takes UInt32, not %T", args[0])}
		}
		d.mu.Lock()
		raw := d.recs.get(uint64(seq))
		d.mu.Unlock()
		if raw == "" {
			return nil, &uasim.StatusError{Code: 0x803E0000, Msg: fmt.Sprintf("result %d is gone", seq)} // BadNotFound
		}
		return []any{raw}, nil
	}); err != nil {
		return nil, err
	}
	if _, err = srv.AddMethod(obj, object+"."+SuffixStartJob, func(args []any) ([]any, error) {
		if cfg.Trigger != "method" {
			return nil, &uasim.StatusError{Code: 0x80AF0000, Msg: "camera triggers itself"} // BadInvalidState
		}
		if len(args) != 1 {
			return nil, &uasim.StatusError{Code: 0x80AB0000, Msg: "StartSingleJob takes one UInt32 item"}
		}
		item, ok := args[0].(uint32)
		if !ok {
			return nil, &uasim.StatusError{Code: 0x80740000, Msg: fmt.Sprintf("StartSingleJob takes UInt32, not %T", args[0])}
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.jobs) >= 1024 {
			return nil, &uasim.StatusError{Code: 0x80AF0000, Msg: "1024 jobs pending"}
		}
		d.jobs = append(d.jobs, item)
		d.jobID++
		return []any{d.jobID}, nil
	}); err != nil {
		return nil, err
	}
	if d.vItem, err = srv.AddVariable(obj, object+"."+SuffixItem, uint32(0), nil); err != nil {
		return nil, err
	}
	if d.vCode, err = srv.AddVariable(obj, object+"."+SuffixCodes, []string{}, nil); err != nil {
		return nil, err
	}
	if d.vGrad, err = srv.AddVariable(obj, object+"."+SuffixGrade, "", nil); err != nil {
		return nil, err
	}
	if d.vPass, err = srv.AddVariable(obj, object+"."+SuffixPass, false, nil); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *resultDevice) publish(item uint32, codes []string, grade string, pass bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if codes == nil {
		codes = []string{}
	}
	seq := d.recs.seq + 1
	rec := ResultRecord{Seq: seq, Item: item, Level: d.level, Codes: codes, Grade: grade, Pass: pass, At: time.Now().UTC()}
	err := errors.Join(d.vItem.Set(item), d.vCode.Set(codes), d.vGrad.Set(grade), d.vPass.Set(pass))
	if err == nil {
		err = d.recs.publish(seq, rec)
	}
	if err != nil {
		d.log.Error("devsim camera: publish result", "err", err)
	}
}

// Start serves OPC UA until ctx ends or Close.
func (d *resultDevice) Start(ctx context.Context) error { return d.srv.Start(ctx) }

// Addr is the OPC UA server's host:port.
func (d *resultDevice) Addr() string { return d.srv.Addr() }

// Endpoint is the opc.tcp URL.
func (d *resultDevice) Endpoint() string { return d.srv.Endpoint() }

// Close stops the server.
func (d *resultDevice) Close() error { return d.srv.Close() }

// ResultCount is the seq of the last published result.
func (d *resultDevice) ResultCount() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.recs.seq
}

// Camera is the simulated vision camera after the printer.
type Camera struct{ *resultDevice }

// NewCamera builds the simulated vision camera; Start serves it.
func NewCamera(cfg CameraConfig, log *slog.Logger) (*Camera, error) {
	d, err := newResultDevice(cfg, log, CameraObject, "linesim vision camera", "urn:tracline:linesim:camera", 0)
	if err != nil {
		return nil, fmt.Errorf("devsim camera: %w", err)
	}
	return &Camera{d}, nil
}

// Inspect publishes one result for item, from what is on the unit (with
// trigger "method": for the oldest started job's item, or nothing if no job
// is pending):
//   - sim.CameraOK: the code read (grade A, pass) — or a no-read if the unit
//     carries nothing;
//   - sim.CameraNoRead: no code, grade "", fail;
//   - sim.CameraLowGrade: the code read with the configured low grade, fail;
//   - sim.CameraLost: nothing is published (the line sees no result).
func (c *Camera) Inspect(item uint32, onUnit string, f sim.CameraFault) {
	if c.cfg.Trigger == "method" {
		c.mu.Lock()
		if len(c.jobs) == 0 {
			c.mu.Unlock()
			return // not triggered: no image, no result
		}
		item = c.jobs[0]
		c.jobs = c.jobs[1:]
		c.mu.Unlock()
	}
	switch f {
	case sim.CameraLost:
		return
	case sim.CameraNoRead:
		c.publish(item, nil, "", false)
	case sim.CameraLowGrade:
		if onUnit == "" {
			c.publish(item, nil, "", false)
			return
		}
		c.publish(item, []string{onUnit}, c.cfg.LowGrade, false)
	default:
		if onUnit == "" {
			c.publish(item, nil, "", false)
			return
		}
		c.publish(item, []string{onUnit}, "A", true)
	}
}

// AggCamera is a simulated aggregation camera reading a whole group at once.
type AggCamera struct{ *resultDevice }

// NewAggCamera builds an aggregation camera for groups of level (2 = box…);
// Start serves it.
func NewAggCamera(cfg CameraConfig, level int, log *slog.Logger) (*AggCamera, error) {
	if level < 2 || level > 9 {
		return nil, fmt.Errorf("devsim agg camera: level %d is outside 2..9", level)
	}
	d, err := newResultDevice(cfg, log, AggCameraObject, fmt.Sprintf("linesim aggregation camera L%d", level),
		fmt.Sprintf("urn:tracline:linesim:aggcamera:%d", level), level)
	if err != nil {
		return nil, fmt.Errorf("devsim agg camera L%d: %w", level, err)
	}
	return &AggCamera{d}, nil
}

// Read publishes one multi-code result for group: the codes seen on the
// group's top (empty codes are dropped), pass when at least one was read.
func (a *AggCamera) Read(group uint32, codes []string) {
	read := make([]string, 0, len(codes))
	for _, c := range codes {
		if c != "" {
			read = append(read, c)
		}
	}
	grade := ""
	if len(read) > 0 {
		grade = "A"
	}
	a.publish(group, read, grade, len(read) > 0)
}

// LabelScannerObject is the OPC UA object of the label scanner of level:
// "LabelScanner" for level 2, "LabelScanner3", "LabelScanner4", … above
// (nodes "ns=1;s=LabelScanner.LastResult", …; the same nodes as a camera).
func LabelScannerObject(level int) string {
	if level == 2 {
		return "LabelScanner"
	}
	return "LabelScanner" + strconv.Itoa(level)
}

// LabelScanner is the simulated label scanner after the labeller: it
// reads the applied label and the children through the top of a labelled
// group and publishes one ResultRecord per group, like an aggregation
// camera: item = group id, codes = [label, children…] (the label first),
// pass = a label was read, grade "".
type LabelScanner struct{ *resultDevice }

// NewLabelScanner builds the label scanner of groups of level (2 = box…);
// Start serves it. cfg.Trigger must be "" or "self" (the scanner reads
// every group that passes).
func NewLabelScanner(cfg CameraConfig, level int, log *slog.Logger) (*LabelScanner, error) {
	if level < 2 || level > 9 {
		return nil, fmt.Errorf("devsim label scanner: level %d is outside 2..9", level)
	}
	if cfg.Trigger == "method" {
		return nil, errors.New("devsim.label_scanner.trigger: a label scanner reads every group that passes; method is not supported")
	}
	d, err := newResultDevice(cfg, log, LabelScannerObject(level), fmt.Sprintf("linesim label scanner L%d", level),
		fmt.Sprintf("urn:tracline:linesim:labelscanner:%d", level), level)
	if err != nil {
		return nil, fmt.Errorf("devsim label scanner L%d: %w", level, err)
	}
	return &LabelScanner{d}, nil
}

// Scan publishes one result for group: sim.ScanCodes(label, children)
// (label "" = no label read: codes are the children only), pass when a
// label was read.
func (l *LabelScanner) Scan(group uint32, label string, children []string) {
	l.publish(group, sim.ScanCodes(label, children), "", label != "")
}

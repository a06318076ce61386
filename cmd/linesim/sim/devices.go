package sim

import (
	"fmt"
	"sync"
)

// PrintFault is what goes wrong when a unit passes the printing head.
type PrintFault int

const (
	PrintOK        PrintFault = iota
	PrintSkip                 // code consumed and reported printed, nothing lands on the unit
	PrintDuplicate            // previous code printed again, buffer not consumed, reported printed
)

func (f PrintFault) String() string {
	switch f {
	case PrintOK:
		return "ok"
	case PrintSkip:
		return "skip"
	case PrintDuplicate:
		return "duplicate"
	}
	return fmt.Sprintf("PrintFault(%d)", int(f))
}

// CameraFault is what goes wrong when the camera inspects a unit.
type CameraFault int

const (
	CameraOK       CameraFault = iota
	CameraNoRead               // result published with no code
	CameraLowGrade             // code read, grade below the minimum, fail
	CameraLost                 // no result published at all
)

func (f CameraFault) String() string {
	switch f {
	case CameraOK:
		return "ok"
	case CameraNoRead:
		return "no-read"
	case CameraLowGrade:
		return "low-grade"
	case CameraLost:
		return "lost"
	}
	return fmt.Sprintf("CameraFault(%d)", int(f))
}

// Label is a printed parent label as the labeller applies it.
type Label struct {
	Code string `json:"code"` // the code in the barcode field
	Text string `json:"text"` // human-readable text
}

// The conveyor-facing side of the simulated devices (implemented by
// cmd/linesim/devsim; stand-ins below until then or for in-process tests).

// Printer is the coding printer's head.
type Printer interface {
	// PrintOnto prints the next code onto the unit passing the head and
	// returns what physically landed on it ("" = nothing).
	PrintOnto(f PrintFault) (onUnit string)
}

// Camera is the vision camera after the printer.
type Camera interface {
	// Inspect publishes one result for item.
	Inspect(item uint32, onUnit string, f CameraFault)
}

// AggCamera reads a whole group (bundle or case top) at once.
type AggCamera interface {
	Read(group uint32, codes []string)
}

// LabelScanner reads a labelled group after the labeller: the label and
// the children's codes through the top, and publishes one result.
type LabelScanner interface {
	// Scan publishes ScanCodes(label, children) for group, passing when a
	// label was read (label "" = none read: a label without a code, or a
	// label-noread fault).
	Scan(group uint32, label string, children []string)
}

// LabelPrinter hands over printed labels, oldest first.
type LabelPrinter interface {
	NextLabel() (Label, bool)
}

// Devices is the set the conveyor drives. AggCameras[i] reads groups of
// level i+2, LabelScanners[i] scans their labels, Labels[i] prints the
// labels level i+2's labeller applies — or, with one label printer for
// every level (Labellers shared), Labels[0] prints them all. Endpoints
// names each device's address for clients.
type Devices struct {
	Printer       Printer
	Camera        Camera
	AggCameras    []AggCamera
	LabelScanners []LabelScanner // nil or short: those levels have no label scanner
	Labels        []LabelPrinter // nil or short: those levels' groups wait for labels that never come
	// Targets are the real listening addresses ("host:port") by device
	// name (printer, camera, agg_camera[_N], label_printer[_N],
	// label_scanner[_N]); the simulator puts
	// a netsim proxy in front of each and reports the proxy's address.
	Targets map[string]string
	// Close stops the devices.
	Close func() error
}

// StandIns returns in-process stand-in devices for l with no network
// side: the printer makes its own codes (SIM00000001, …) as if the
// controller always kept its buffer full, the cameras and label scanners
// only count, and the label printers print one label per group read
// (SIML2-000001 for group 1 of level 2) on the printer of the group's
// level (or the one shared printer). For tests of the conveyor and ground
// truth without a controller.
func StandIns(l Layout) *Devices {
	d := &Devices{Printer: &standinPrinter{}, Camera: &standinCamera{}, Targets: map[string]string{}, Close: func() error { return nil }}
	for i := 0; i < l.LabelPrinters; i++ {
		d.Labels = append(d.Labels, &standinLabels{})
	}
	for i := 0; i < l.Levels; i++ {
		var lp *standinLabels
		if k, ok := l.Printer(i); ok {
			lp = d.Labels[k].(*standinLabels)
		}
		d.AggCameras = append(d.AggCameras, &standinAgg{level: i + 2, labels: lp})
		d.LabelScanners = append(d.LabelScanners, &standinScanner{})
	}
	return d
}

type standinScanner struct {
	mu    sync.Mutex
	scans int
}

func (s *standinScanner) Scan(uint32, string, []string) {
	s.mu.Lock()
	s.scans++
	s.mu.Unlock()
}

type standinPrinter struct {
	mu   sync.Mutex
	n    int
	prev string
}

func (p *standinPrinter) PrintOnto(f PrintFault) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch f {
	case PrintDuplicate:
		if p.prev != "" {
			return p.prev
		}
	case PrintSkip:
		p.n++
		p.prev = fmt.Sprintf("SIM%08d", p.n)
		return ""
	}
	p.n++
	p.prev = fmt.Sprintf("SIM%08d", p.n)
	return p.prev
}

type standinCamera struct {
	mu      sync.Mutex
	results int
}

func (c *standinCamera) Inspect(item uint32, onUnit string, f CameraFault) {
	if f == CameraLost {
		return
	}
	c.mu.Lock()
	c.results++
	c.mu.Unlock()
}

type standinAgg struct {
	level  int
	labels *standinLabels
}

func (a *standinAgg) Read(group uint32, codes []string) {
	if a.labels == nil {
		return
	}
	a.labels.push(Label{Code: fmt.Sprintf("SIML%d-%06d", a.level, group), Text: fmt.Sprintf("level %d group %d (%d)", a.level, group, len(codes))})
}

type standinLabels struct {
	mu sync.Mutex
	q  []Label
}

func (l *standinLabels) push(lb Label) {
	l.mu.Lock()
	l.q = append(l.q, lb)
	l.mu.Unlock()
}

func (l *standinLabels) NextLabel() (Label, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.q) == 0 {
		return Label{}, false
	}
	lb := l.q[0]
	l.q = l.q[1:]
	return lb, true
}

package main

// The controller config of `linectl run`: the line, its products (master
// data), its settings and every device's profile — not a batch. Batches
// start from work orders, on the HMI or from an MES through the API.
//
// A config file written before batches came from work orders has a
// `batch:` section. It keeps working: at start, if the ledger has no batch
// of that number, it is started from that section as a work order (then
// reset and start it as before); if the batch is open on this line it is
// resumed (as any open batch is); if it is complete, or another batch is
// open, the section is ignored with a warning saying so. Remove the section
// once the batch is done, and start the next batch from the HMI.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tracline/tracline/aggregation"
	cameraopcua "github.com/tracline/tracline/camera/opcua"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/plc"
	printeropcua "github.com/tracline/tracline/printer/opcua"
	"github.com/tracline/tracline/printer/zpl"
	"github.com/tracline/tracline/tracecode"
)

// lineFile is the config of `linectl run`.
type lineFile struct {
	Line string `yaml:"line"`
	// Product and Products are product files (master data), relative to
	// this file; a work order names a product by its file's name without
	// .yaml (examples/amoxicillin-gs1.yaml is "amoxicillin-gs1").
	Product  string   `yaml:"product,omitempty"`
	Products []string `yaml:"products,omitempty"`
	// Batch is the old way to give the line its batch (see above).
	Batch    *batchFile   `yaml:"batch,omitempty"`
	Settings settingsFile `yaml:"settings"`
	Devices  devicesFile  `yaml:"devices"`
	// Handoff: where activated batches' documents go, QA's release policy.
	Handoff handoffFile `yaml:"handoff"`
	// HMI: the web server's security settings (docs/hmi.md).
	HMI hmiFile `yaml:"hmi"`

	dir string // directory of the config file
}

// hmiFile is the web server's settings.
type hmiFile struct {
	TLS struct {
		// CertFile and KeyFile (PEM), both set: the HMI is served over HTTPS
		// and its session cookies are Secure.
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	// TrustedProxies are the CIDR ranges of reverse proxies whose
	// X-Forwarded-For is believed (default none: the peer is the client).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// IdleTimeout ends a session unused this long (default 15m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// batchFile is a work order in a config file (old style; see above).
type batchFile struct {
	ID             string `yaml:"id"`
	ProductionDate string `yaml:"production_date"` // YYYY-MM-DD
	Expiry         string `yaml:"expiry"`          // YYYY-MM-DD
	Planned        int    `yaml:"planned"`         // level-1 units
	Workshop       string `yaml:"workshop"`
	Manager        string `yaml:"manager"`
	// Levels is how many packaging levels this batch aggregates (1 = units
	// only; default: all the product's levels).
	Levels int `yaml:"levels"`
	// Product is the work order's product key; default: the config's
	// first product.
	Product string `yaml:"product,omitempty"`
}

type settingsFile struct {
	// Gate is the time from the trigger photo-eye to the reject gate
	// (default 100ms). Margin is taken off it for the controller's own
	// deadline: the trigger's detection delay (a Modbus poll period, an OPC
	// UA publishing interval) plus a safety margin (default 20ms).
	Gate          time.Duration `yaml:"gate"`
	Margin        time.Duration `yaml:"margin"`
	PrinterBuffer int           `yaml:"printer_buffer"` // codes kept in the printer (default 8)
	AllocChunk    int           `yaml:"alloc_chunk"`    // codes allocated at a time (default 200)
	Challenge     []string      `yaml:"challenge"`      // expected outcomes of the test units, in order
	MinGrade      string        `yaml:"min_grade"`      // default: the level-1 rule's of the batch's product
	// GateTimeout: how long after a unit reached the gate its outcome
	// (plc.signals.gate_outcome) may take before its code is taken back
	// (default 2s).
	GateTimeout time.Duration `yaml:"gate_timeout"`
	// LabelMismatchHold: groups in a row carrying a label not theirs that
	// hold the line (default 2).
	LabelMismatchHold int `yaml:"label_mismatch_hold"`
	// LedgerDisk: the free space the ledger's disk must keep (warn_mb,
	// reserve_mb, period; defaults from the ledger's memtable size, see
	// docs/ledger.md "A full disk").
	LedgerDisk aggregation.DiskGuardConfig `yaml:"ledger_disk"`
}

type devicesFile struct {
	PLC        plc.Config           `yaml:"plc"`
	Printer    printeropcua.Config  `yaml:"printer"`
	Camera     cameraopcua.Config   `yaml:"camera"`
	AggCameras []cameraopcua.Config `yaml:"aggregation_cameras"` // [0] reads level-2 groups, [1] level 3, …
	// LabelPrinters are the labellers' label printers, one per aggregated
	// level as lines are built: [0] prints level 2's labels, [1] level
	// 3's, … — one for each aggregation camera. LabelPrinter is the older
	// form: one printer for every level's labels (one labeller), whose
	// labels of two levels closing together can cross. One form or the
	// other.
	LabelPrinters []zpl.Config `yaml:"label_printers"`
	LabelPrinter  *zpl.Config  `yaml:"label_printer"`
	// ReworkLabelPrinter is the rework station's label printer: reprints of
	// a parent's label go there, never to the in-line labeller's printer.
	ReworkLabelPrinter *zpl.Config `yaml:"rework_label_printer"`
	// LabelScanners read each labelled group after the labeller (its label
	// and its children's codes): [0] level 2, [1] level 3, …
	LabelScanners []cameraopcua.Config `yaml:"label_scanners"`
}

// loadLineFile reads and validates a controller config file.
func loadLineFile(path string) (*lineFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f lineFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty config file", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.dir = filepath.Dir(path)
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

func (f *lineFile) validate() error {
	var errs []error
	if f.Line == "" {
		errs = append(errs, errors.New("line: must name the line"))
	}
	files := f.productFiles()
	if len(files) == 0 {
		errs = append(errs, errors.New("product: must name a product file (or products: a list of them)"))
	}
	keys := map[string]string{}
	for i, file := range files {
		if strings.TrimSpace(file) == "" {
			errs = append(errs, fmt.Errorf("products[%d]: empty file name", i))
			continue
		}
		k := productKey(file)
		if other, dup := keys[k]; dup {
			errs = append(errs, fmt.Errorf("products: %s and %s have the same key %q (a work order names a product by its file name without .yaml)", other, file, k))
		}
		keys[k] = file
	}
	if b := f.Batch; b != nil {
		if b.ID == "" {
			errs = append(errs, errors.New("batch.id: must be set (or remove the batch section: batches start from work orders)"))
		}
		if b.Planned < 0 {
			errs = append(errs, fmt.Errorf("batch.planned: %d is negative", b.Planned))
		}
		if b.Levels < 0 || b.Levels > int(tracecode.MaxLevel) {
			errs = append(errs, fmt.Errorf("batch.levels: %d is outside 1..%d (0: all the product's levels)", b.Levels, tracecode.MaxLevel))
		}
		for _, d := range []struct{ field, v string }{{"batch.production_date", b.ProductionDate}, {"batch.expiry", b.Expiry}} {
			if d.v == "" {
				continue
			}
			if _, err := time.Parse("2006-01-02", d.v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a date YYYY-MM-DD", d.field, d.v))
			}
		}
		if b.Product != "" && keys[b.Product] == "" {
			errs = append(errs, fmt.Errorf("batch.product: %q is not one of the config's products (%s)", b.Product, strings.Join(sortedKeys(keys), ", ")))
		}
	}
	if err := f.Settings.LedgerDisk.Validate("settings.ledger_disk"); err != nil {
		errs = append(errs, err)
	}
	if err := f.Devices.PLC.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := f.Devices.Printer.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := f.Devices.Camera.Validate(); err != nil {
		errs = append(errs, err)
	}
	for i, c := range f.Devices.AggCameras {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("aggregation_cameras[%d]: %w", i, err))
		}
	}
	if f.Devices.LabelPrinter != nil {
		if err := f.Devices.LabelPrinter.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, f.Devices.validateLabelPrinters()...)
	if f.Devices.ReworkLabelPrinter != nil {
		if err := f.Devices.ReworkLabelPrinter.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rework_label_printer: %w", err))
		}
	}
	for i, c := range f.Devices.LabelScanners {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("label_scanners[%d]: %w", i, err))
		}
	}
	if len(f.Devices.LabelScanners) > 0 && f.Devices.LabelPrinter == nil && len(f.Devices.LabelPrinters) == 0 {
		errs = append(errs, errors.New("label_scanners: a label scanner verifies printed labels, but no label_printers (or label_printer) is configured"))
	}
	if _, err := f.machineConfig(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateLabelPrinters checks the labellers' printers: one form only,
// one printer for each level an aggregation camera reads, each level's
// label scanner on a level with a printer, and no printer shared by two
// labellers (nor with the rework station) — its labels would cross.
func (d devicesFile) validateLabelPrinters() []error {
	if len(d.LabelPrinters) == 0 {
		if d.LabelPrinters != nil {
			return []error{errors.New("label_printers: empty; list one printer per aggregated level ([0] = level 2), or leave the key out")}
		}
		return nil
	}
	var errs []error
	if d.LabelPrinter != nil {
		errs = append(errs, errors.New("label_printer and label_printers: give one — label_printers (a printer per level's labeller), or label_printer (one printer for every level's labels)"))
	}
	agg := len(d.AggCameras)
	for i := range d.LabelPrinters {
		if i >= agg {
			errs = append(errs, fmt.Errorf("label_printers[%d]: level %d is not aggregated on this line (aggregation_cameras reads %s): remove it", i, i+2, levelRange(agg)))
		}
	}
	if len(d.LabelPrinters) < agg {
		errs = append(errs, fmt.Errorf("label_printers: %d printer(s) for %d aggregated levels (aggregation_cameras reads %s): level %d's labeller has none; list one per level, [0] = level 2", len(d.LabelPrinters), agg, levelRange(agg), len(d.LabelPrinters)+2))
	}
	if n := len(d.LabelScanners); n > len(d.LabelPrinters) {
		errs = append(errs, fmt.Errorf("label_scanners[%d]: level %d has a label scanner but no label printer in label_printers", len(d.LabelPrinters), len(d.LabelPrinters)+2))
	}
	used := map[string]string{}
	if r := d.ReworkLabelPrinter; r != nil && r.Address != "" {
		used[strings.ToLower(r.Address)] = "rework_label_printer"
	}
	for i, c := range d.LabelPrinters {
		field := fmt.Sprintf("label_printers[%d]", i)
		if c.Name == "" {
			c.Name = labelPrinterName(tracecode.Level(i + 2)) // as wired: its messages name it so
		}
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s (level %d): %w", field, i+2, err))
			continue
		}
		a := strings.ToLower(c.Address)
		if other, dup := used[a]; dup {
			errs = append(errs, fmt.Errorf("%s (level %d): address %s is also %s's: each level's labeller needs a printer of its own, or their labels cross", field, i+2, c.Address, other))
			continue
		}
		used[a] = field
	}
	return errs
}

// reworkPrinter is the rework station's printer as wired: it reprints
// every level's labels, so unless its config lists symbology_by_level,
// each level's reprint takes the symbology of that level's labeller
// (label_printers) — an SSCC pallet label in GS1-128 beside an nmpa20 box
// label in Code 128, as they were first printed.
func (d devicesFile) reworkPrinter() *zpl.Config {
	if d.ReworkLabelPrinter == nil {
		return nil
	}
	rp := *d.ReworkLabelPrinter
	if len(rp.SymbologyByLevel) == 0 {
		for _, lp := range d.LabelPrinters {
			rp.SymbologyByLevel = append(rp.SymbologyByLevel, lp.Symbology)
		}
	}
	return &rp
}

// checkLabelSymbologies refuses, at start rather than at the first
// pallet's label, a label printer whose symbology cannot carry the codes
// of a level it labels for some product: a GS1 code (SSCC, GTIN + serial)
// needs gs1-128 or gs1-datamatrix, an nmpa20 code code128 or datamatrix.
// The labellers label the levels the aggregation cameras read; the rework
// station's printer reprints any coded parent level.
func (d devicesFile) checkLabelSymbologies(products map[string]*tracecode.Product) error {
	type labeller struct {
		field string
		cfg   zpl.Config
		level tracecode.Level // the one level it labels; 0: several
		all   bool            // every parent level, not only the aggregated ones
	}
	var ls []labeller
	for i, c := range d.LabelPrinters {
		ls = append(ls, labeller{fmt.Sprintf("label_printers[%d]", i), c, tracecode.Level(i + 2), false})
	}
	if d.LabelPrinter != nil {
		ls = append(ls, labeller{"label_printer", *d.LabelPrinter, 0, false})
	}
	if rp := d.reworkPrinter(); rp != nil {
		ls = append(ls, labeller{"rework_label_printer", *rp, 0, true})
	}
	var errs []error
	for _, l := range ls {
		for _, k := range slices.Sorted(maps.Keys(products)) {
			p := products[k]
			for lv := tracecode.Level(2); lv <= p.TopLevel(); lv++ {
				switch {
				case !p.Coded(lv), l.level != 0 && lv != l.level:
					continue
				case !l.all && int(lv)-2 >= len(d.AggCameras):
					continue // not aggregated on this line
				}
				r, sym := p.Rule(lv), l.cfg.SymbologyFor(lv)
				gs1 := r.Scheme != tracecode.SchemeNMPA20
				if gs1 == sym.GS1() {
					continue
				}
				want, key := "code128 or datamatrix", "symbology"
				if gs1 {
					want = "gs1-128 or gs1-datamatrix"
				}
				if l.level == 0 {
					key = fmt.Sprintf("symbology_by_level[%d]", lv-2)
				}
				errs = append(errs, fmt.Errorf("%s: product %s's level %d codes are %s, which symbology %s cannot print: set %s to %s",
					l.field, k, lv, r.Scheme, sym, key, want))
			}
		}
	}
	return errors.Join(errs...)
}

// levelRange says which levels n aggregation cameras read.
func levelRange(n int) string {
	switch n {
	case 0:
		return "no level"
	case 1:
		return "level 2"
	}
	return fmt.Sprintf("levels 2..%d", n+1)
}

// productFiles lists the config's product files as written.
func (f *lineFile) productFiles() []string {
	var out []string
	if f.Product != "" {
		out = append(out, f.Product)
	}
	return append(out, f.Products...)
}

// productKey is the key a work order names a product file by.
func productKey(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// loadProducts loads every product file (relative to the config file),
// by key.
func (f *lineFile) loadProducts() (map[string]*tracecode.Product, error) {
	out := map[string]*tracecode.Product{}
	for _, file := range f.productFiles() {
		path := file
		if !filepath.IsAbs(path) {
			path = filepath.Join(f.dir, path)
		}
		p, err := tracecode.LoadProduct(path)
		if err != nil {
			return nil, err
		}
		out[productKey(file)] = p
	}
	return out, nil
}

// firstProductKey is the product an old-style batch section means by default.
func (f *lineFile) firstProductKey() string {
	if f.Batch != nil && f.Batch.Product != "" {
		return f.Batch.Product
	}
	if files := f.productFiles(); len(files) > 0 {
		return productKey(files[0])
	}
	return ""
}

// machineConfig turns settings into the line's machine config. Ratios,
// the planned quantity and (when min_grade is not set) the minimum grade
// come per batch from its work order and product; the levels with a label
// scanner are checked for the batches that aggregate them.
func (f *lineFile) machineConfig() (line.Config, error) {
	s := f.Settings
	if s.Gate == 0 {
		s.Gate = 100 * time.Millisecond
	}
	if s.Margin == 0 {
		s.Margin = 20 * time.Millisecond
	}
	if s.Margin >= s.Gate {
		return line.Config{}, fmt.Errorf("settings.margin: %s leaves nothing of gate %s", s.Margin, s.Gate)
	}
	cfg := line.Config{Deadline: s.Gate - s.Margin, PrinterBuffer: s.PrinterBuffer, AllocChunk: s.AllocChunk,
		GateConfirm: f.gateConfirm(), GateTimeout: s.GateTimeout, LabelMismatchHold: s.LabelMismatchHold}
	if s.GateTimeout < 0 {
		return cfg, fmt.Errorf("settings.gate_timeout: %s is negative", s.GateTimeout)
	}
	if s.LabelMismatchHold < 0 {
		return cfg, fmt.Errorf("settings.label_mismatch_hold: %d is negative", s.LabelMismatchHold)
	}
	if cfg.PrinterBuffer == 0 {
		cfg.PrinterBuffer = 8
	}
	if cfg.AllocChunk == 0 {
		cfg.AllocChunk = 200
	}
	if s.MinGrade != "" {
		if len(s.MinGrade) != 1 {
			return cfg, fmt.Errorf("settings.min_grade: %q is not a grade A–F", s.MinGrade)
		}
		cfg.MinGrade = s.MinGrade[0]
	}
	for i, name := range s.Challenge {
		r, err := line.ParseReason(name)
		if err != nil {
			return cfg, fmt.Errorf("settings.challenge[%d]: %w", i, err)
		}
		cfg.Challenge = append(cfg.Challenge, line.ChallengeStep{Name: name, Expect: r})
	}
	if err := cfg.Validate(); err != nil {
		// The machine names its fields as settings does (min_grade,
		// printer_buffer, alloc_chunk, …): say where they are in the file.
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				errs = append(errs, fmt.Errorf("settings.%w", e))
			}
		} else {
			errs = append(errs, fmt.Errorf("settings.%w", err))
		}
		return cfg, errors.Join(errs...)
	}
	for i := range f.Devices.LabelScanners {
		if cfg.LabelCheck == nil {
			cfg.LabelCheck = map[tracecode.Level]bool{}
		}
		cfg.LabelCheck[tracecode.Level(i+2)] = true
	}
	return cfg, nil
}

// gateConfirm reports whether the PLC confirms each unit's gate outcome.
func (f *lineFile) gateConfirm() bool {
	_, ok := f.Devices.PLC.Signals[plc.SigGateOutcome]
	return ok
}

// workOrder is the old-style batch section as a work order.
func (f *lineFile) workOrder() line.WorkOrder {
	b := f.Batch
	return line.WorkOrder{Product: f.firstProductKey(), Batch: b.ID, ProductionDate: b.ProductionDate, Expiry: b.Expiry,
		Planned: int64(b.Planned), Levels: b.Levels, Workshop: b.Workshop, Manager: b.Manager, Source: "config"}
}

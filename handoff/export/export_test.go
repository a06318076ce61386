package export

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/handoff/epcisschema"
	"github.com/tracline/tracline/handoff/export/exporttest"
	"github.com/tracline/tracline/tracecode"
)

var fixedNow = func() time.Time { return time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC) }

func opts(p *tracecode.Product) Options {
	return Options{Product: p, Now: fixedNow, Chunk: 7}
}

// smallBatch: 26 units (+ a sampled, a decommissioned, a rejected and a
// voided code) in bundles of 3, cases of 2 bundles and pallets (SSCC) of 2
// cases; the last parent of each level is partial.
func smallBatch(t *testing.T, product string, state aggregation.BatchState) (*aggregation.Store, *tracecode.Product, *exporttest.Built) {
	p := loadProduct(t, product)
	s := openLedger(t, t.TempDir())
	b, err := exporttest.Build(ctx, s, p, exporttest.Shape{Batch: "B2612", Units: 26, Ratios: []int{3, 2, 2}, Extras: true,
		Released: state == aggregation.BatchReleased, Track: true})
	must(t, err)
	return s, p, b
}

func export(t *testing.T, s *aggregation.Store, batch string, f Format, o Options) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Write(ctx, &buf, s, batch, f, o)
	must(t, err)
	if st.Bytes != int64(buf.Len()) {
		t.Fatalf("stats say %d bytes, wrote %d", st.Bytes, buf.Len())
	}
	return buf.Bytes(), st
}

type msfxDoc struct {
	Events []struct {
		Name     string `xml:"Name,attr"`
		Relation struct {
			ProductCode string `xml:"productCode,attr"`
			SubTypeNo   string `xml:"subTypeNo,attr"`
			Cascade     int    `xml:"cascade,attr"`
			PackageSpec string `xml:"packageSpec,attr"`
			Batch       struct {
				BatchNo      string `xml:"batchNo,attr"`
				MadeDate     string `xml:"madeDate,attr"`
				ValidateDate string `xml:"validateDate,attr"`
				Workshop     string `xml:"workshop,attr"`
				LineName     string `xml:"lineName,attr"`
				LineManager  string `xml:"lineManager,attr"`
				Codes        []struct {
					Cur    string `xml:"curCode,attr"`
					Layer  int    `xml:"packLayer,attr"`
					Parent string `xml:"parentCode,attr"`
					Flag   int    `xml:"flag,attr"`
				} `xml:"Code"`
			} `xml:"Batch"`
		} `xml:"Relation"`
	} `xml:"Events>Event"`
}

func TestMSFX(t *testing.T) {
	for _, product := range []string{nmpaProduct, gs1Product} {
		t.Run(product[strings.LastIndex(product, "/")+1:], func(t *testing.T) {
			s, p, b := smallBatch(t, product, aggregation.BatchActive)
			out, st := export(t, s, "B2612", FormatMSFX, opts(p))
			var d msfxDoc
			must(t, xml.Unmarshal(out, &d))
			if len(d.Events) != 1 || d.Events[0].Name != "RelationCreate" {
				t.Fatalf("events %+v", d.Events)
			}
			r := d.Events[0].Relation
			if r.Cascade != 4 || r.PackageSpec != "1:3:6:12" || r.SubTypeNo != p.StandardCode || r.ProductCode == "" {
				t.Errorf("relation %+v", r)
			}
			bt := r.Batch
			if bt.BatchNo != "LOT-B2612" || bt.MadeDate != "2026-11-30" || bt.ValidateDate != "2028-10-31" ||
				bt.Workshop != "固体制剂车间" || bt.LineName != "line-1" || bt.LineManager != "张工" {
				t.Errorf("batch %+v", bt)
			}
			seen := map[string]int{}
			for i, c := range bt.Codes {
				if _, dup := seen[c.Cur]; dup {
					t.Fatalf("code %s twice", c.Cur)
				}
				seen[c.Cur] = i
				if c.Parent != "" {
					pi, ok := seen[c.Parent]
					if !ok {
						t.Fatalf("code %s: parent %s not written before it", c.Cur, c.Parent)
					}
					if bt.Codes[pi].Layer != c.Layer+1 {
						t.Fatalf("code %s of layer %d under a layer %d parent", c.Cur, c.Layer, bt.Codes[pi].Layer)
					}
				}
				want := FlagNormal
				if b.Partial[tracecode.Code(c.Cur)] {
					want = FlagPartial
				}
				if c.Flag != want {
					t.Errorf("code %s flag %d, want %d", c.Cur, c.Flag, want)
				}
			}
			// Every packed or top-level code exactly once, with its parent.
			n := 0
			for li, cs := range b.Levels {
				if st.Codes[li] != int64(len(cs)) {
					t.Errorf("level %d: stats %d codes, want %d", li+1, st.Codes[li], len(cs))
				}
				for _, c := range cs {
					i, ok := seen[string(c)]
					if !ok {
						t.Fatalf("L%d code %s missing", li+1, c)
					}
					if got := bt.Codes[i]; got.Layer != li+1 || got.Parent != string(b.Parent[c]) {
						t.Fatalf("code %s: layer %d parent %q, want %d %q", c, got.Layer, got.Parent, li+1, b.Parent[c])
					}
					n++
				}
			}
			if n != len(bt.Codes) {
				t.Fatalf("%d codes written, %d expected", len(bt.Codes), n)
			}
			for _, c := range []tracecode.Code{b.Sampled, b.Decomm, b.Rejected, b.Voided} {
				if _, ok := seen[string(c)]; ok {
					t.Errorf("code %s (not in the relation) written", c)
				}
			}
			if bt.Codes[0].Layer != 4 {
				t.Errorf("first code of layer %d, want the top (4)", bt.Codes[0].Layer)
			}
		})
	}
}

func TestUpload(t *testing.T) {
	s, p, _ := smallBatch(t, nmpaProduct, aggregation.BatchReleased)
	plain, _ := export(t, s, "B2612", FormatMSFX, opts(p))
	var up bytes.Buffer
	_, err := Upload(ctx, &up, s, "B2612", opts(p))
	must(t, err)
	raw, err := base64.StdEncoding.DecodeString(up.String())
	must(t, err)
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	must(t, err)
	if len(zr.File) != 1 || zr.File[0].Name != "relation-B2612.xml" {
		t.Fatalf("zip entries %v", zr.File)
	}
	f, err := zr.File[0].Open()
	must(t, err)
	got, err := io.ReadAll(f)
	must(t, err)
	if !bytes.Equal(got, plain) {
		t.Fatal("the zipped XML differs from the plain export")
	}
}

// pev is one EPCIS event, from either binding.
type pev struct {
	Type, Action, BizStep, Disposition, Parent, Reason, Lot, Expiry, Time string
	EPCs                                                                  []string
}

func parseJSON(t *testing.T, doc []byte) []pev {
	t.Helper()
	var d struct {
		Type      string `json:"type"`
		EPCISBody struct {
			EventList []struct {
				Type        string            `json:"type"`
				EventTime   string            `json:"eventTime"`
				Action      string            `json:"action"`
				BizStep     string            `json:"bizStep"`
				Disposition string            `json:"disposition"`
				ParentID    string            `json:"parentID"`
				EPCList     []string          `json:"epcList"`
				ChildEPCs   []string          `json:"childEPCs"`
				Reason      string            `json:"tl:reason"`
				ILMD        map[string]string `json:"ilmd"`
			} `json:"eventList"`
		} `json:"epcisBody"`
	}
	must(t, json.Unmarshal(doc, &d))
	var out []pev
	for _, e := range d.EPCISBody.EventList {
		out = append(out, pev{Type: e.Type, Time: e.EventTime, Action: e.Action, BizStep: e.BizStep, Disposition: e.Disposition,
			Parent: e.ParentID, Reason: e.Reason, Lot: e.ILMD["cbvmda:lotNumber"], Expiry: e.ILMD["cbvmda:itemExpirationDate"],
			EPCs: append(e.EPCList, e.ChildEPCs...)})
	}
	return out
}

func parseXML(t *testing.T, doc []byte) []pev {
	t.Helper()
	// ObjectEvent and AggregationEvent interleave: decode both in order.
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var out []pev
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		must(t, err)
		se, ok := tok.(xml.StartElement)
		if !ok || (se.Name.Local != "ObjectEvent" && se.Name.Local != "AggregationEvent") {
			continue
		}
		var e = struct {
			XMLName     xml.Name
			EventTime   string   `xml:"eventTime"`
			Action      string   `xml:"action"`
			BizStep     string   `xml:"bizStep"`
			Disposition string   `xml:"disposition"`
			ParentID    string   `xml:"parentID"`
			EPCList     []string `xml:"epcList>epc"`
			ChildEPCs   []string `xml:"childEPCs>epc"`
			Reason      string   `xml:"urn:tracline:epcis: reason"`
			ILMD        struct {
				Lot    string `xml:"urn:epcglobal:cbv:mda lotNumber"`
				Expiry string `xml:"urn:epcglobal:cbv:mda itemExpirationDate"`
			} `xml:"ilmd"`
		}{}
		must(t, dec.DecodeElement(&e, &se))
		strip := func(s, p string) string {
			if !strings.HasPrefix(s, p) && s != "" {
				t.Fatalf("CBV value %q without prefix %s", s, p)
			}
			return strings.TrimPrefix(s, p)
		}
		out = append(out, pev{Type: e.XMLName.Local, Time: e.EventTime, Action: e.Action, BizStep: strip(e.BizStep, "urn:epcglobal:cbv:bizstep:"),
			Disposition: strip(e.Disposition, "urn:epcglobal:cbv:disp:"), Parent: e.ParentID, Reason: e.Reason,
			Lot: e.ILMD.Lot, Expiry: e.ILMD.Expiry, EPCs: append(e.EPCList, e.ChildEPCs...)})
	}
	return out
}

// checkEPCIS checks the events against what was built.
func checkEPCIS(t *testing.T, x *exporter, b *exporttest.Built, evs []pev, active bool) {
	t.Helper()
	uri := func(c tracecode.Code) string {
		u, err := x.appendURI(nil, c)
		must(t, err)
		return string(u)
	}
	var completed, activatedAt time.Time
	must(t, x.l.Trail(ctx, x.batch, func(ev aggregation.Event) error {
		switch ev.Kind {
		case aggregation.EvComplete:
			completed = ev.At
		case aggregation.EvActivate:
			activatedAt = ev.At
		}
		return nil
	}))
	stamp := func(at time.Time) string { return at.In(x.o.Location).Format("2006-01-02T15:04:05.000Z07:00") }
	commissioned := map[string]int{}
	activated := map[string]int{}
	children := map[string][]string{}
	fates := map[string]pev{}
	for _, e := range evs {
		switch {
		case e.Type == "ObjectEvent" && e.BizStep == "commissioning":
			if e.Action != "ADD" || e.Disposition != "inactive" || len(e.EPCs) > 7 || e.Time != stamp(completed) {
				t.Fatalf("commissioning event %+v", e)
			}
			sscc := strings.Contains(e.EPCs[0], "/00/")
			if !sscc && (e.Lot != "LOT-B2612" || e.Expiry != "2028-10-31") || sscc && e.Lot != "" {
				t.Fatalf("commissioning ILMD lot %q expiry %q for %s", e.Lot, e.Expiry, e.EPCs[0])
			}
			for _, c := range e.EPCs {
				commissioned[c]++
			}
		case e.Type == "ObjectEvent" && e.Disposition == "active":
			if e.Action != "OBSERVE" || e.Time != stamp(activatedAt) {
				t.Fatalf("activation event %+v (activated %s)", e, stamp(activatedAt))
			}
			for _, c := range e.EPCs {
				activated[c]++
			}
		case e.Type == "AggregationEvent":
			if e.Action != "ADD" || e.BizStep != "packing" || e.Parent == "" || e.Time != stamp(completed) {
				t.Fatalf("aggregation event %+v", e)
			}
			if _, dup := children[e.Parent]; dup {
				t.Fatalf("parent %s packed twice", e.Parent)
			}
			children[e.Parent] = e.EPCs
		case e.Type == "ObjectEvent" && len(e.EPCs) == 1:
			fates[e.EPCs[0]] = e
		default:
			t.Fatalf("unexpected event %+v", e)
		}
	}
	wantKids := map[string][]string{}
	for li, cs := range b.Levels {
		for _, c := range cs {
			u := uri(c)
			if commissioned[u] != 1 {
				t.Fatalf("L%d code %s commissioned %d times", li+1, u, commissioned[u])
			}
			if want := map[bool]int{true: 1}[active]; activated[u] != want {
				t.Fatalf("L%d code %s activated %d times, want %d", li+1, u, activated[u], want)
			}
			if p, ok := b.Parent[c]; ok {
				wantKids[uri(p)] = append(wantKids[uri(p)], u)
			}
		}
	}
	if len(wantKids) != len(children) {
		t.Fatalf("%d aggregation events, want %d", len(children), len(wantKids))
	}
	for p, kids := range wantKids {
		got := slices.Clone(children[p])
		slices.Sort(got)
		slices.Sort(kids)
		if !slices.Equal(kids, got) {
			t.Fatalf("parent %s: children %v, want %v", p, children[p], kids)
		}
	}
	for _, f := range []struct {
		code                       tracecode.Code
		action, step, disp, reason string
		commissioned               int
	}{
		{b.Sampled, "OBSERVE", "sampling", "non_sellable_other", "sampled: QA retain sample 留样", 1},
		{b.Decomm, "DELETE", "decommissioning", "inactive", "decommissioned: damaged carton <torn> & crushed", 1},
		{b.Rejected, "OBSERVE", "destroying", "destroyed", "rejected: grade F", 0},
		{b.Voided, "OBSERVE", "destroying", "destroyed", "voided: line purge", 0},
	} {
		u := uri(f.code)
		e, ok := fates[u]
		if !ok || e.Action != f.action || e.BizStep != f.step || e.Disposition != f.disp || e.Reason != f.reason {
			t.Errorf("fate of %s: %+v, want %s %s %s %q", u, e, f.action, f.step, f.disp, f.reason)
		}
		if commissioned[u] != f.commissioned || activated[u] != 0 {
			t.Errorf("%s (%s): commissioned %d activated %d", u, f.step, commissioned[u], activated[u])
		}
	}
	if len(fates) != 4 {
		t.Errorf("%d single-code events, want 4", len(fates))
	}
}

func TestEPCIS(t *testing.T) {
	for _, product := range []string{nmpaProduct, gs1Product} {
		for _, state := range []aggregation.BatchState{aggregation.BatchReleased, aggregation.BatchActive} {
			t.Run(product[strings.LastIndex(product, "/")+1:]+"/"+state.String(), func(t *testing.T) {
				s, p, b := smallBatch(t, product, state)
				x, err := newExporter(ctx, s, "B2612", opts(p))
				must(t, err)
				x.o.defaults()
				active := state == aggregation.BatchActive

				doc, st := export(t, s, "B2612", FormatEPCISJSON, opts(p))
				if err := epcisschema.ValidateJSON(doc); err != nil {
					t.Fatalf("JSON does not validate: %v\n%s", err, doc)
				}
				evs := parseJSON(t, doc)
				if int64(len(evs)) != st.Events {
					t.Fatalf("%d events, stats say %d", len(evs), st.Events)
				}
				checkEPCIS(t, x, b, evs, active)

				xdoc, xst := export(t, s, "B2612", FormatEPCISXML, opts(p))
				if err := epcisschema.ValidateXML(ctx, xdoc); err != nil {
					t.Fatalf("XML does not validate: %v\n%s", err, xdoc)
				}
				xevs := parseXML(t, xdoc)
				if len(xevs) != len(evs) || xst.Events != st.Events {
					t.Fatalf("XML has %d events, JSON %d", len(xevs), len(evs))
				}
				checkEPCIS(t, x, b, xevs, active)
				for i := range evs {
					if a, b := evs[i], xevs[i]; a.Type != b.Type || a.Reason != b.Reason || strings.Join(a.EPCs, " ") != strings.Join(b.EPCs, " ") {
						t.Fatalf("event %d differs: JSON %+v, XML %+v", i, a, b)
					}
				}
			})
		}
	}
}

func TestURIs(t *testing.T) {
	p := loadProduct(t, gs1Product)
	x := &exporter{o: Options{Product: p}}
	x.o.defaults()
	for _, tt := range []struct{ code, want string }{
		{"(01)06901234567892(21)A7xK2p", "https://id.gs1.org/01/06901234567892/21/A7xK2p"},
		{"(01)06901234567892(21)A/B%1&\"", "https://id.gs1.org/01/06901234567892/21/A%2FB%251%26%22"},
		{"(00)369012340000000017", "https://id.gs1.org/00/369012340000000017"},
		{"80217621475594406924", "urn:nmpa20:80217621475594406924"},
	} {
		got, err := x.appendURI(nil, tracecode.Code(tt.code))
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: %s %v, want %s", tt.code, got, err, tt.want)
		}
	}
	if _, err := x.appendURI(nil, "12345"); err == nil {
		t.Error("a code of no scheme got a URI")
	}
}

func TestRefusals(t *testing.T) {
	p := loadProduct(t, nmpaProduct)
	s := openLedger(t, t.TempDir())
	spec := aggregation.BatchSpec{ID: "OPEN", Product: p.GenericName, Line: "l", Levels: []aggregation.LevelSpec{{Level: 1, Scheme: tracecode.SchemeNMPA20}}}
	must(t, s.CreateBatch(ctx, spec, line))
	spec.ID = "QAREJ"
	must(t, s.CreateBatch(ctx, spec, line))
	must(t, s.Complete(ctx, "QAREJ", line))
	must(t, s.Release(ctx, "QAREJ", aggregation.Signature{User: "qa", Meaning: "rejected", At: relAt, Comment: "no"}, qa))
	spec.ID, spec.Product = "OTHER", "another product"
	must(t, s.CreateBatch(ctx, spec, line))
	must(t, s.Complete(ctx, "OTHER", line))
	must(t, s.Release(ctx, "OTHER", aggregation.Signature{User: "qa", Meaning: "released", At: relAt}, qa))
	tests := []struct {
		name, batch string
		f           Format
		o           Options
		is          error
		says        string
	}{
		{"open batch", "OPEN", FormatMSFX, opts(p), ErrNotReleased, "batch OPEN is open"},
		{"QA-rejected batch", "QAREJ", FormatEPCISJSON, opts(p), ErrNotReleased, "batch QAREJ is qa_rejected"},
		{"unknown batch", "NOPE", FormatEPCISXML, opts(p), aggregation.ErrNotFound, "NOPE"},
		{"other product", "OTHER", FormatMSFX, opts(p), ErrProduct, `of product "another product"`},
		{"no product", "OPEN", FormatMSFX, Options{}, nil, "product is required"},
		{"bad chunk", "OPEN", FormatMSFX, Options{Product: p, Chunk: -1}, nil, "chunk -1"},
		{"bad base", "OPEN", FormatMSFX, Options{Product: p, NMPA20Base: "not a uri"}, nil, "nmpa20_base"},
		{"bad format", "OPEN", "pdf", opts(p), nil, `unknown export format "pdf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Write(ctx, &buf, s, tt.batch, tt.f, tt.o)
			if err == nil || tt.is != nil && !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want %v saying %q", err, tt.is, tt.says)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %d bytes for a refused export", buf.Len())
			}
		})
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestWriteErrors: a writer that fails midway and a cancelled context end
// the export with an error naming the cause, for every format; a handed-off
// batch is still exported.
func TestWriteErrors(t *testing.T) {
	p := loadProduct(t, nmpaProduct)
	s := openLedger(t, t.TempDir())
	_, err := exporttest.Build(ctx, s, p, exporttest.Shape{Batch: "E1", Units: 3000, Ratios: []int{10, 20}})
	must(t, err)
	must(t, s.HandedOff(ctx, "E1", "doc-1", "accepted", qa))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, f := range Formats {
		if _, err := Write(ctx, &failWriter{after: 300 << 10}, s, "E1", f, Options{Product: p}); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s to a failing writer: %v", f, err)
		}
		if _, err := Write(cancelled, io.Discard, s, "E1", f, Options{Product: p}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", f, err)
		}
		if _, err := Write(ctx, io.Discard, s, "E1", f, Options{Product: p}); err != nil {
			t.Errorf("%s of a handed-off batch: %v", f, err)
		}
	}
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/examples"
	"github.com/tracline/tracline/handoff/export"
	"github.com/tracline/tracline/tracecode"
)

const exportUsage = `usage: linectl export --data DIR --batch B --format msfx-xml|epcis-json|epcis-xml [--product FILE | --config FILE] [--upload] [--chunk N] [--nmpa20-base URI] [--digital-link-base URL]

Writes a released (or active, or handed-off) batch's hand-off document on stdout.
--product is the product file (master data and filed rules) the batch was made with
(the ledger records the product's name, not its master data); or --config, the line's
config file (as for linectl run): the batch's product among its products. Without either,
the batch's product among the embedded examples (a demo's ledger).
--upload (msfx-xml only) writes the relation XML as the platform's upload takes it:
zipped, then base64.`

// cmdExport: linectl export --data DIR --batch B --format F --product FILE
func cmdExport(ctx context.Context, c *cli, args []string) error {
	fs := newFlags("export", c)
	fs.Usage = func() { fmt.Fprintln(c.stderr, exportUsage) }
	data := fs.String("data", "", "ledger data directory (required)")
	batch := fs.String("batch", "", "batch id (required)")
	format := fs.String("format", "", "msfx-xml, epcis-json or epcis-xml (required)")
	product := fs.String("product", "", "product file the batch was made with (or --config)")
	config := fs.String("config", "", "the line's config file: its product: names the product file")
	upload := fs.Bool("upload", false, "msfx-xml: zip, then base64, as the platform's upload takes it")
	chunk := fs.Int("chunk", export.DefaultChunk, "EPCIS: EPCs per commissioning/activation event")
	nmpaBase := fs.String("nmpa20-base", export.DefaultNMPA20Base, "EPCIS: URI prefix of nmpa20 codes")
	dlBase := fs.String("digital-link-base", export.DefaultDigitalLinkBase, "EPCIS: GS1 Digital Link base")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--data", *data}, {"--batch", *batch}, {"--format", *format}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 || fs.NArg() > 0 {
		fmt.Fprintln(c.stderr, exportUsage)
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		return fmt.Errorf("%s required", strings.Join(missing, ", "))
	}
	f, err := export.ParseFormat(*format)
	if err != nil {
		return err
	}
	if *upload && f != export.FormatMSFX {
		return fmt.Errorf("--upload packages the msfx-xml relation file, not %s", f)
	}
	if *product != "" && *config != "" {
		return errors.New("give --product or --config, not both")
	}
	var productFor func(aggregation.BatchSpec) (*tracecode.Product, error)
	switch {
	case *product != "":
		productFor = func(aggregation.BatchSpec) (*tracecode.Product, error) { return tracecode.LoadProduct(*product) }
	case *config != "":
		lf, err := loadLineFile(*config)
		if err != nil {
			return err
		}
		products, err := lf.loadProducts()
		if err != nil {
			return err
		}
		productFor = productOfBatch(products) // the batch's own product among the config's
	default:
		// DESIGN.md's contract names no product: the batch's product among
		// the embedded examples (a demo's ledger), else ask for one.
		products, err := examples.Products()
		if err != nil {
			return err
		}
		pick := productOfBatch(products)
		productFor = func(spec aggregation.BatchSpec) (*tracecode.Product, error) {
			p, err := pick(spec)
			if err != nil {
				return nil, fmt.Errorf("%w; give the product's master data with --product FILE or the line's --config FILE", err)
			}
			return p, nil
		}
	}
	if *chunk < 1 || *chunk > 100000 {
		return fmt.Errorf("--chunk %d: want 1..100000 EPCs per event", *chunk)
	}
	if _, err := os.Stat(*data); err != nil {
		return fmt.Errorf("no ledger at %s: %w", *data, err)
	}
	s, err := aggregation.Open(*data, aggregation.Options{Logger: c.log})
	if err != nil {
		return fmt.Errorf("ledger %s: %w", *data, err)
	}
	defer s.Close()
	spec, err := s.Spec(ctx, *batch)
	if errors.Is(err, aggregation.ErrNotFound) {
		return fmt.Errorf("batch %q is not in the ledger at %s", *batch, *data)
	} else if err != nil {
		return err
	}
	p, err := productFor(spec)
	if err != nil {
		return err
	}
	o := export.Options{Product: p, Chunk: *chunk, NMPA20Base: *nmpaBase, DigitalLinkBase: *dlBase}
	if err := o.Validate(); err != nil {
		return err
	}
	// A refusal (state, product) comes before anything is written.
	w := bufio.NewWriterSize(c.stdout, 64<<10)
	if *upload {
		_, err = export.Upload(ctx, w, s, *batch, o)
	} else {
		_, err = export.Write(ctx, w, s, *batch, f, o)
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

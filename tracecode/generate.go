package tracecode

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
)

// ErrSerialSpaceExhausted is returned when a generator's rule cannot yield
// another unique serial with reasonable effort (half its space is used).
var ErrSerialSpaceExhausted = errors.New("serial space of the rule nearly exhausted")

// Generator makes GS1 codes for one product level under its filed rule:
// SGTINs (the level's GTIN + a serial of the rule's length and alphabet) or
// SSCCs (extension digit + company prefix + serial reference + check digit).
// Serials come from crypto/rand, are uniformly distributed over the
// alphabet (rejection sampling, no modulo bias) and so are not sequential.
//
// A Generator guarantees uniqueness within its own run (it remembers every
// code it made). Uniqueness against everything ever issued is the ledger's
// job: when the codes are added to a pool, PoolStore.AddToPool refuses any
// code the store already knows (*DuplicateCodesError), so a collision with
// an earlier run is caught there, never printed. A Generator is not safe
// for concurrent use.
type Generator struct {
	scheme  Scheme
	prefix  string // "(01)"+GTIN+"(21)" or "(00)"+extension digit+company prefix
	charset string
	length  int     // serial (or serial reference) length
	space   float64 // number of distinct serials
	seen    map[serialKey]struct{}
	rnd     io.Reader
	buf     []byte
	pos     int
}

// NewGenerator prepares a generator for level l of p. nmpa20 levels are
// refused: their codes come from the platform and are imported.
func NewGenerator(p *Product, l Level) (*Generator, error) {
	return newGenerator(p, l, rand.Reader)
}

func newGenerator(p *Product, l Level, rnd io.Reader) (*Generator, error) {
	ls, ok := p.Level(l)
	if !ok {
		return nil, fmt.Errorf("%s has no level %s", p.GenericName, l)
	}
	if ls.Rule == nil {
		return nil, fmt.Errorf("level %s (%s) carries no code", l, ls.Name)
	}
	g := &Generator{scheme: ls.Rule.Scheme, seen: map[serialKey]struct{}{}, rnd: rnd, buf: make([]byte, 8192)}
	g.pos = len(g.buf)
	switch ls.Rule.Scheme {
	case SchemeNMPA20:
		return nil, fmt.Errorf("level %s (%s) uses nmpa20: its codes come from the platform's code files and are imported, never generated", l, ls.Name)
	case SchemeGS1SGTIN:
		g.prefix = "(01)" + ls.GTIN + "(21)"
		g.charset = ls.Rule.Serial.Charset()
		g.length = ls.Rule.Serial.Length
	case SchemeGS1SSCC:
		g.prefix = fmt.Sprintf("(00)%d%s", *ls.Rule.SSCC.ExtensionDigit, ls.Rule.SSCC.CompanyPrefix)
		g.charset = "0123456789"
		g.length = 17 - (len(g.prefix) - 4)
	default:
		return nil, fmt.Errorf("level %s: %w", l, ls.Rule.Scheme.Validate())
	}
	if g.length < 1 || g.length > len(serialKey{}) || len(g.charset) < 2 || len(g.charset) > 256 {
		return nil, fmt.Errorf("level %s: rule gives no serial space (length %d, %d characters)", l, g.length, len(g.charset))
	}
	g.space = math.Pow(float64(len(g.charset)), float64(g.length))
	return g, nil
}

// Scheme is the scheme of the codes this generator makes.
func (g *Generator) Scheme() Scheme { return g.scheme }

// Made is the number of codes made so far.
func (g *Generator) Made() int { return len(g.seen) }

func (g *Generator) randByte() (byte, error) {
	if g.pos == len(g.buf) {
		if _, err := io.ReadFull(g.rnd, g.buf); err != nil {
			return 0, fmt.Errorf("random source: %w", err)
		}
		g.pos = 0
	}
	b := g.buf[g.pos]
	g.pos++
	return b, nil
}

// serialKey is a serial as the seen-set remembers it: a fixed-size array
// holds no pointer, so a million of them cost the garbage collector nothing.
type serialKey [20]byte

// Next makes one new code, different from every code this generator made.
func (g *Generator) Next() (Code, error) {
	var tmp [64]byte
	out, err := g.appendNext(tmp[:0])
	if err != nil {
		return "", err
	}
	return Code(out), nil
}

// appendNext appends one new code to dst.
func (g *Generator) appendNext(dst []byte) ([]byte, error) {
	if float64(len(g.seen)+1) > g.space/2 {
		return dst, fmt.Errorf("%d codes made out of %.0f possible: %w", len(g.seen), g.space, ErrSerialSpaceExhausted)
	}
	m := len(g.charset)
	limit := 256 - 256%m // accept bytes below limit: no modulo bias
	start := len(dst)
	for {
		dst = append(dst[:start], g.prefix...)
		var key serialKey
		for k := 0; k < g.length; {
			b, err := g.randByte()
			if err != nil {
				return dst[:start], err
			}
			if int(b) < limit {
				key[k] = g.charset[int(b)%m]
				k++
			}
		}
		if _, dup := g.seen[key]; dup {
			continue // drawn before in this run: draw again
		}
		g.seen[key] = struct{}{}
		dst = append(dst, key[:g.length]...)
		if g.scheme == SchemeGS1SSCC {
			d, _ := GS1CheckDigit(string(dst[start+4:]))
			dst = append(dst, d)
		}
		return dst, nil
	}
}

// Generate makes n new codes.
func (g *Generator) Generate(n int) ([]Code, error) {
	if n < 0 {
		return nil, fmt.Errorf("count %d is negative", n)
	}
	if len(g.seen) == 0 && n > 0 {
		g.seen = make(map[serialKey]struct{}, n)
	}
	// All codes share one backing string: one allocation, not n.
	size := len(g.prefix) + g.length + 1
	buf := make([]byte, 0, n*size)
	ends := make([]int, n)
	for i := range n {
		var err error
		if buf, err = g.appendNext(buf); err != nil {
			return nil, err
		}
		ends[i] = len(buf)
	}
	all := string(buf)
	out := make([]Code, n)
	prev := 0
	for i, e := range ends {
		out[i] = Code(all[prev:e])
		prev = e
	}
	return out, nil
}

// CarriedData is what a code carries besides its identity.
type CarriedData struct {
	Batch          string // AI (10)
	Expiry         string // AI (17), YYMMDD (DD may be 00)
	ProductionDate string // AI (11), YYMMDD
}

func (d CarriedData) get(x Data) string {
	switch x {
	case DataBatch:
		return d.Batch
	case DataExpiry:
		return d.Expiry
	case DataProductionDate:
		return d.ProductionDate
	}
	return ""
}

// Compose makes the full code to print on a level-l unit: the identity c
// plus the data the rule says the code carries. Its elements are in the
// order they are encoded in a GS1 carrier (fixed-length AIs first, see
// GS1Data), so a scan of the printed symbol normalizes to the same text.
// The result is checked against the rule (Match).
func (p *Product) Compose(l Level, c Code, d CarriedData) (Parsed, error) {
	ls, ok := p.Level(l)
	if !ok || ls.Rule == nil {
		return Parsed{}, fmt.Errorf("level %s of %s carries no code", l, p.GenericName)
	}
	text := string(c)
	for _, x := range ls.Rule.Carries {
		v := d.get(x)
		if v == "" {
			return Parsed{}, fmt.Errorf("level %s's rule says the code carries %s; none given", l, x)
		}
		text += "(" + x.AI() + ")" + v
	}
	parsed, err := Parse(text)
	if err != nil {
		return Parsed{}, fmt.Errorf("compose %s: %w", c, err)
	}
	if parsed.Code != c {
		return Parsed{}, fmt.Errorf("compose %s: not a canonical code (parses as %s)", c, parsed.Code)
	}
	if err := p.Match(l, &parsed); err != nil {
		return Parsed{}, err
	}
	parsed.encodingOrder()
	return parsed, nil
}

// encodingOrder puts fixed-length elements first, keeping relative order.
func (p *Parsed) encodingOrder() {
	var out [maxElements]Element
	k := 0
	for pass := 0; pass < 2; pass++ {
		for _, e := range p.Elements() {
			d := lookupAIExact(e.AI)
			if (d != nil && d.fixed) == (pass == 0) {
				out[k] = e
				k++
			}
		}
	}
	p.elems = out
}

package outbox

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Kind is the protocol an endpoint speaks.
type Kind string

const (
	// KindEPCIS is an EPCIS 2.0 capture interface (POST /capture → capture job).
	KindEPCIS Kind = "epcis-capture"
	// KindPlatform is the platform's relation upload (zipped, base64 relation
	// file; processing status polled). Our stand-in's wire format.
	KindPlatform Kind = "platform-upload"
)

// Formats of hand-off documents.
const (
	FormatRelation  = "msfx-xml"   // 码上放心-style relation XML
	FormatEPCISJSON = "epcis-json" // EPCIS 2.0 JSON-LD
	FormatEPCISXML  = "epcis-xml"  // EPCIS 2.0 XML
)

var formatExt = map[string]string{FormatRelation: ".xml", FormatEPCISJSON: ".json", FormatEPCISXML: ".xml"}

// defaultFormats is what an endpoint of a kind takes unless it says.
var defaultFormats = map[Kind][]string{
	KindEPCIS:    {FormatEPCISJSON, FormatEPCISXML},
	KindPlatform: {FormatRelation},
}

// Endpoint is one receiver of hand-off documents.
type Endpoint struct {
	// Name identifies the endpoint in the journal and on screens.
	Name string `yaml:"name" json:"name"`
	Kind Kind   `yaml:"kind" json:"kind"`
	// URL is the receiver's base URL: the capture interface's root (the
	// outbox posts to URL/capture) or the platform's (URL/relation/upload).
	URL string `yaml:"url" json:"url"`
	// Formats are the document formats sent here (default: epcis-json and
	// epcis-xml for epcis-capture, msfx-xml for platform-upload).
	Formats []string `yaml:"formats" json:"formats,omitempty"`
	// Token, if set, is sent as "Authorization: Bearer <token>" (or in
	// TokenHeader, as is).
	Token       string `yaml:"token" json:"-"`
	TokenHeader string `yaml:"token_header" json:"token_header,omitempty"`
	// Timeout bounds one HTTP exchange (default 30s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// RetryFor is how long a send that fails for a reason that may pass
	// (no answer, a transport error, 5xx) is retried, counted from the
	// round's first send, before the delivery is failed (default 72h: a
	// receiver down for a weekend's hours is waited for, and the document
	// goes out by itself once it is back). A refusal (4xx) fails it at once.
	RetryFor time.Duration `yaml:"retry_for" json:"retry_for"`
	// MaxSends, if set, also fails a delivery after this many sends (and a
	// status question after this many wrong answers in a row); 0 (the
	// default): no limit but RetryFor and PollFor.
	MaxSends int `yaml:"max_sends" json:"max_sends"`
	// BackoffMin and BackoffMax bound the wait between sends; it doubles
	// from BackoffMin, with jitter (defaults 2s and 2m: once a receiver is
	// back, the waiting documents go out within BackoffMax).
	BackoffMin time.Duration `yaml:"backoff_min" json:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max" json:"backoff_max"`
	// PollMin and PollMax bound the wait between status questions once the
	// receiver has accepted a document (defaults 2s and 5m).
	PollMin time.Duration `yaml:"poll_min" json:"poll_min"`
	PollMax time.Duration `yaml:"poll_max" json:"poll_max"`
	// PollFor is how long a receiver may take to process a document before
	// the delivery is failed (default 48h).
	PollFor time.Duration `yaml:"poll_for" json:"poll_for"`
}

// Config configures the outbox.
type Config struct {
	// Dir holds the documents' files (created if missing).
	Dir       string     `yaml:"dir" json:"dir"`
	Endpoints []Endpoint `yaml:"endpoints" json:"endpoints"`
}

// Validate checks the configuration; messages name the field.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("outbox.dir: empty")
	}
	names := map[string]bool{}
	for i, e := range c.Endpoints {
		f := func(field, format string, a ...any) error {
			return fmt.Errorf("outbox.endpoints[%d].%s: %s", i, field, fmt.Sprintf(format, a...))
		}
		if e.Name == "" || len(e.Name) > 64 {
			return f("name", "want 1..64 characters, got %q", e.Name)
		}
		if names[e.Name] {
			return f("name", "%q is used twice", e.Name)
		}
		names[e.Name] = true
		if _, ok := defaultFormats[e.Kind]; !ok {
			return f("kind", "%q is not epcis-capture or platform-upload", e.Kind)
		}
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return f("url", "%q is not an http(s) URL", e.URL)
		}
		for _, fm := range e.Formats {
			if !slices.Contains(defaultFormats[e.Kind], fm) {
				return f("formats", "%s does not take %q (it takes %v)", e.Kind, fm, defaultFormats[e.Kind])
			}
		}
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"timeout", e.Timeout}, {"retry_for", e.RetryFor}, {"backoff_min", e.BackoffMin}, {"backoff_max", e.BackoffMax},
			{"poll_min", e.PollMin}, {"poll_max", e.PollMax}, {"poll_for", e.PollFor}} {
			if d.v < 0 {
				return f(d.name, "%v is negative", d.v)
			}
		}
		if e.MaxSends < 0 {
			return f("max_sends", "%d is negative", e.MaxSends)
		}
		if e.BackoffMin > 0 && e.BackoffMax > 0 && e.BackoffMax < e.BackoffMin {
			return f("backoff_max", "%v is less than backoff_min %v", e.BackoffMax, e.BackoffMin)
		}
		if e.PollMin > 0 && e.PollMax > 0 && e.PollMax < e.PollMin {
			return f("poll_max", "%v is less than poll_min %v", e.PollMax, e.PollMin)
		}
		if e.TokenHeader != "" && e.Token == "" {
			return f("token", "empty, but token_header %q is set", e.TokenHeader)
		}
	}
	return nil
}

// withDefaults fills in the defaults.
func (e Endpoint) withDefaults() Endpoint {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&e.Timeout, 30*time.Second)
	def(&e.BackoffMin, 2*time.Second)
	def(&e.BackoffMax, 2*time.Minute)
	def(&e.RetryFor, 72*time.Hour)
	def(&e.PollMin, 2*time.Second)
	def(&e.PollMax, 5*time.Minute)
	def(&e.PollFor, 48*time.Hour)
	if e.BackoffMax < e.BackoffMin {
		e.BackoffMax = e.BackoffMin
	}
	if e.PollMax < e.PollMin {
		e.PollMax = e.PollMin
	}
	if len(e.Formats) == 0 {
		e.Formats = defaultFormats[e.Kind]
	}
	return e
}

func (e Endpoint) takes(format string) bool { return slices.Contains(e.Formats, format) }

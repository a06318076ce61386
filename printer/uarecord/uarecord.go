// Package uarecord receives a device's record stream over OPC UA — print
// records from a coding printer, results from a camera — without losing any
// silently. It is the shared OPC UA client plumbing of printer/opcua and
// camera/opcua; only those import it.
//
// The device profile it expects: a record node whose value is one whole
// record (with a sequence number inside, so one value is atomic), optionally
// a counter node (the sequence number of the last record) and a ring node
// (an array of the last N records). A Stream subscribes to the record node
// and delivers records in sequence order on Events. When the sequence jumps
// (the server keeps one value per monitored item per publishing interval, or
// the link was down) it reads the ring and delivers what it still holds; what
// it cannot recover is delivered as a Gap event, never guessed.
//
// Links fail: the Stream reconnects with backoff, says so with Down and Up
// events, and a watchdog probes the counter node every Watchdog period. A
// failed probe means a dead link; records that show in the counter but never
// arrive by subscription two probes in a row mean a dead subscription (the
// gopcua client can come back "connected" with its subscription silently
// gone, upstream issue #910) — both lead to a fresh connection and
// subscription, then recovery from the ring.
package uarecord

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/tracline/tracline/internal/latency"
	"github.com/tracline/tracline/internal/uasec"
)

// Security selects the OPC UA secure channel.
type Security struct {
	// Policy: "None" (default) or "Basic256Sha256".
	Policy string `yaml:"policy"`
	// Mode: "None" (default with policy None), "Sign" or "SignAndEncrypt".
	Mode string `yaml:"mode"`
	// CertFile and KeyFile: the client's application instance certificate
	// and its RSA private key, required for Basic256Sha256. PEM or DER, any
	// file extension; the key PKCS#1 or PKCS#8 (openssl's default), not
	// encrypted. The certificate must carry the client's application URI.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func (s Security) secure() bool { return s.Policy != "" && s.Policy != "None" }

// Validate reports what is wrong; prefix names the config path.
func (s Security) Validate(prefix string) error {
	var errs []error
	switch s.Policy {
	case "", "None":
		if s.Mode != "" && s.Mode != "None" {
			errs = append(errs, fmt.Errorf("%s.mode: %q needs policy Basic256Sha256 (policy is None)", prefix, s.Mode))
		}
	case "Basic256Sha256":
		switch s.Mode {
		case "Sign", "SignAndEncrypt":
		default:
			errs = append(errs, fmt.Errorf("%s.mode: %q is not Sign or SignAndEncrypt", prefix, s.Mode))
		}
		if s.CertFile == "" || s.KeyFile == "" {
			errs = append(errs, fmt.Errorf("%s: policy Basic256Sha256 needs cert_file and key_file", prefix))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.policy: %q is not None or Basic256Sha256", prefix, s.Policy))
	}
	return errors.Join(errs...)
}

// Config is one record stream.
type Config struct {
	// Endpoint is the server's opc.tcp URL.
	Endpoint string   `yaml:"endpoint"`
	Security Security `yaml:"security"`
	// Trust says which server certificates are accepted under
	// Basic256Sha256 (trusted certificate files or folders, and/or
	// pinning on first use); required with that policy.
	Trust uasec.TrustConfig `yaml:"trust"`
	// RecordNode holds the last record (node id text, e.g. "ns=1;s=Camera.LastResult").
	RecordNode string `yaml:"record_node"`
	// CountNode holds the sequence number of the last record; the watchdog
	// reads it. Optional but strongly advised.
	CountNode string `yaml:"count_node"`
	// RingNode holds the last N records (String[]); without it every missed
	// record is a gap.
	RingNode string `yaml:"ring_node"`
	// FetchObject and FetchMethod: "results by id" (OPC 40100 style). The
	// method takes the record number (UInt32) and returns the record
	// (String); a Bad status or "" means the device no longer has it. Used
	// for records the ring does not hold (or with no ring at all).
	FetchObject string `yaml:"fetch_object"`
	FetchMethod string `yaml:"fetch_method"`
	// FieldNodes switches to the separate-nodes profile for devices that do
	// not publish a record as one value: RecordNode is then the record
	// counter (subscribed), and each entry maps a key of the record to the
	// node holding that field. On every counter change the stream reads the
	// counter and all field nodes in one Read request and builds a JSON
	// record {"<SeqKey>": counter, key: value, …}. If the counter moved on
	// between the notification and the read, the values belong to the newer
	// record and the records in between come from the ring or are a gap —
	// the device must write the fields before the counter.
	FieldNodes map[string]string `yaml:"field_nodes"`
	// SeqKey is the record key of the counter in field mode (default "seq").
	SeqKey string `yaml:"seq_key"`
	// PublishingInterval requested for the subscription (default 10ms).
	// The server may grant a longer one (node-opcua: 50ms at least): the
	// stream then warns, and PublishingInterval() reports what was granted.
	PublishingInterval time.Duration `yaml:"publishing_interval"`
	// Watchdog is the probe period (default 1s; never shorter than four
	// times the granted publishing plus sampling interval).
	Watchdog time.Duration `yaml:"watchdog"`
	// RequestTimeout bounds every request (default 2s).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ReconnectMax caps the reconnect backoff (default 2s; it starts at 50ms).
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// Latency is the device's answer budget (DefaultLatency): when every
	// request's answer has come later than Budget for at least For, the
	// device is too slow for the line and its link is reported down (the
	// line holds naming it); the link is back only once the device
	// answers within the budget again.
	Latency latency.Config `yaml:"latency"`
}

// DefaultLatency is a stream's answer budget unless its config says
// otherwise: 250 ms, late for 1.5 s. On loopback and on a plant network a
// read takes a few ms; the line's deadline (gate − margin) is 80 ms in the
// examples, so a device that needs 250 ms per answer cannot keep a single
// unit in time, and one late answer in 1.5 s of late answers is no
// scheduling hiccup. docs/devices.md says how these were chosen.
var DefaultLatency = latency.Config{Budget: 250 * time.Millisecond, For: 1500 * time.Millisecond}

// Validate reports what is wrong; prefix names the config path
// (e.g. "camera.opcua").
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, fmt.Errorf("%s.endpoint: must be set (opc.tcp://host:port)", prefix))
	} else if len(c.Endpoint) < 10 || c.Endpoint[:10] != "opc.tcp://" {
		errs = append(errs, fmt.Errorf("%s.endpoint: %q does not start with opc.tcp://", prefix, c.Endpoint))
	}
	errs = append(errs, c.Security.Validate(prefix+".security"))
	errs = append(errs, c.Trust.Validate(prefix, c.Security.Policy))
	errs = append(errs, CheckNode(prefix+".record_node", c.RecordNode, true))
	errs = append(errs, CheckNode(prefix+".count_node", c.CountNode, false))
	errs = append(errs, CheckNode(prefix+".ring_node", c.RingNode, false))
	errs = append(errs, CheckNode(prefix+".fetch_method", c.FetchMethod, false))
	if c.FetchMethod != "" {
		errs = append(errs, CheckNode(prefix+".fetch_object", c.FetchObject, true))
	}
	for k, n := range c.FieldNodes {
		if k == "" {
			errs = append(errs, fmt.Errorf("%s.field_nodes: an empty key", prefix))
		}
		errs = append(errs, CheckNode(prefix+".field_nodes."+k, n, true))
	}
	if _, clash := c.FieldNodes[c.seqKey()]; clash {
		errs = append(errs, fmt.Errorf("%s.field_nodes.%s: the key is the counter's (seq_key)", prefix, c.seqKey()))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"publishing_interval", c.PublishingInterval}, {"watchdog", c.Watchdog}, {"request_timeout", c.RequestTimeout}, {"reconnect_max", c.ReconnectMax}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s.%s: %s is negative", prefix, d.name, d.v))
		}
	}
	errs = append(errs, c.Latency.Validate(prefix+".latency"))
	if c.PublishingInterval > 0 && c.PublishingInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("%s.publishing_interval: %s is below 1ms", prefix, c.PublishingInterval))
	}
	return errors.Join(errs...)
}

// CheckNode checks a node id's text form; path names it in the message.
func CheckNode(path, node string, required bool) error {
	if node == "" {
		if required {
			return fmt.Errorf("%s: must be set (e.g. ns=1;s=Device.Node)", path)
		}
		return nil
	}
	rest := node
	if strings.HasPrefix(rest, "ns=") || strings.HasPrefix(rest, "nsu=") {
		i := strings.IndexByte(rest, ';')
		if i < 0 {
			return fmt.Errorf("%s: %q is not an OPC UA node id (ns=<index>;<i|s|g|b>=<id>)", path, node)
		}
		rest = rest[i+1:]
	}
	if len(rest) < 3 || rest[1] != '=' || !strings.ContainsRune("isgb", rune(rest[0])) {
		return fmt.Errorf("%s: %q is not an OPC UA node id (ns=<index>;<i|s|g|b>=<id>)", path, node)
	}
	if _, err := ua.ParseNodeID(node); err != nil {
		return fmt.Errorf("%s: %q is not an OPC UA node id: %v", path, node, err)
	}
	return nil
}

func (c Config) seqKey() string {
	if c.SeqKey == "" {
		return "seq"
	}
	return c.SeqKey
}

func (c Config) fieldMode() bool { return len(c.FieldNodes) > 0 }

func (c *Config) defaults() {
	c.SeqKey = c.seqKey()
	if c.fieldMode() && c.CountNode == "" {
		c.CountNode = c.RecordNode
	}
	if c.PublishingInterval == 0 {
		c.PublishingInterval = 10 * time.Millisecond
	}
	if c.Watchdog == 0 {
		c.Watchdog = time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 2 * time.Second
	}
	c.Latency = c.Latency.WithDefaults(DefaultLatency)
}

// Kind is what an Event says.
type Kind int

const (
	KindRecord Kind = iota + 1 // a record, in sequence order
	KindGap                    // records From..To are lost for good
	KindDown                   // the link is down (Err says why); records may be missed meanwhile
	KindUp                     // the link is up again; missed records follow as records or a gap
	KindReset                  // the device's counter went backwards (restart): From is the old, To the new count
)

func (k Kind) String() string {
	switch k {
	case KindRecord:
		return "record"
	case KindGap:
		return "gap"
	case KindDown:
		return "down"
	case KindUp:
		return "up"
	case KindReset:
		return "reset"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Event is one thing a Stream delivers.
type Event struct {
	Kind Kind
	At   time.Time
	Seq  uint64 // KindRecord
	Raw  string // KindRecord: the record as the device published it
	From uint64 // KindGap, KindReset
	To   uint64 // KindGap, KindReset
	Err  error  // KindDown
}

// Decoder extracts the sequence number from a raw record.
type Decoder func(raw string) (seq uint64, err error)

// Sentinel errors.
var (
	ErrDown   = errors.New("opc ua link down")
	ErrClosed = errors.New("stream closed")
	// ErrRefused marks a request the device answered with a Bad status: it
	// was received and not carried out.
	ErrRefused = errors.New("device refused")
)

// Stream is one device's record stream plus a request channel (Read, Write,
// Call) on the same connection.
type Stream struct {
	cfg    Config
	name   string
	decode Decoder
	log    *slog.Logger
	events chan Event
	lat    *latency.Watch // every request's answer time

	// The client's certificate (DER) and key, loaded by New (Basic256Sha256).
	cert []byte
	key  *rsa.PrivateKey

	connMu   sync.Mutex // Connect and Close, one at a time
	mu       sync.Mutex
	granted  time.Duration // publishing interval the server granted (0 before the first subscription)
	client   *opcua.Client
	lastSeq  uint64
	baseline bool
	seqCond  chan struct{} // closed and replaced whenever lastSeq moves
	cancel   context.CancelFunc
	done     chan struct{}
	closed   bool
}

// New builds a stream; it does not touch the network until Connect.
func New(cfg Config, name string, decode Decoder, log *slog.Logger) (*Stream, error) {
	if err := cfg.Validate(name); err != nil {
		return nil, err
	}
	if decode == nil {
		return nil, fmt.Errorf("%s: no record decoder", name)
	}
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stream{cfg: cfg, name: name, decode: decode, log: log, events: make(chan Event, 1024), seqCond: make(chan struct{}),
		lat: latency.New(cfg.Latency, DefaultLatency)}
	if cfg.Security.secure() {
		var err error
		if s.cert, s.key, err = uasec.LoadKeyPair(cfg.Security.CertFile, cfg.Security.KeyFile); err != nil {
			return nil, fmt.Errorf("%s.security: %w", name, err)
		}
	}
	return s, nil
}

// PublishingInterval is the publishing interval the server granted for the
// current (or last) subscription; 0 before the first one. Connect returns
// only after the first subscription is made.
func (s *Stream) PublishingInterval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.granted
}

// Events delivers records, gaps and link changes in order. It is closed
// after Close. The consumer must keep reading: a full channel holds the
// stream back (nothing is dropped; the device's ring covers the delay).
func (s *Stream) Events() <-chan Event { return s.events }

// Connect makes the first connection and subscription (bounded by ctx)
// and starts the background loop that keeps the stream alive until Close.
// Records published before Connect are not delivered: the stream starts at
// the device's current count.
func (s *Stream) Connect(ctx context.Context) error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.mu.Lock()
	if s.closed || s.done != nil {
		s.mu.Unlock()
		return fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	s.mu.Unlock()
	c, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("%s: connect %s: %w", s.name, s.cfg.Endpoint, err)
	}
	count, err := s.readCount(ctx, c)
	if err != nil {
		c.Close(context.Background())
		return fmt.Errorf("%s: connect %s: %w", s.name, s.cfg.Endpoint, err)
	}
	s.mu.Lock()
	s.baseline = true
	s.lastSeq = count
	s.mu.Unlock()
	sess, err := s.open(ctx, c, true)
	if err != nil {
		c.Close(context.Background())
		s.mu.Lock()
		s.baseline = false
		s.mu.Unlock()
		return fmt.Errorf("%s: connect %s: %w", s.name, s.cfg.Endpoint, err)
	}
	s.mu.Lock()
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	s.mu.Unlock()
	go s.loop(lctx, c, sess)
	return nil
}

// Close stops the stream and closes Events. Safe before Connect and twice;
// during Connect it waits for Connect to return.
func (s *Stream) Close() error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	} else {
		close(s.events)
	}
	return nil
}

// Count reads the device's record count now (its counter node, or the
// last record's seq): where its records stand, delivered or not.
func (s *Stream) Count(ctx context.Context) (uint64, error) {
	c, err := s.current()
	if err != nil {
		return 0, fmt.Errorf("%s: read the record count: %w", s.name, err)
	}
	n, err := s.readCount(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("%s: read the record count: %w", s.name, err)
	}
	return n, nil
}

// LastSeq is the sequence number of the last record delivered or given up
// as a gap.
func (s *Stream) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq
}

// WaitSeq waits until every record up to seq was delivered (or reported
// lost), or ctx ends.
func (s *Stream) WaitSeq(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		last, ch := s.lastSeq, s.seqCond
		s.mu.Unlock()
		if last >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for record %d (at %d): %w", s.name, seq, last, ctx.Err())
		case <-ch:
		}
	}
}

func (s *Stream) current() (*opcua.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.client == nil {
		return nil, ErrDown
	}
	return s.client, nil
}

// sendTimed is send with the request's answer time noted in the stream's
// latency watch (answers only: a request that fails is the link's matter).
func sendTimed[T any](ctx context.Context, s *Stream, req func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	v, err := send(ctx, s.cfg.RequestTimeout, req)
	if err == nil {
		s.lat.Observe(start, time.Now())
	}
	return v, err
}

// send runs one OPC UA request and never hands gopcua an expired context.
// gopcua v0.8.0 numbers a message before it looks at the context: a
// message numbered and then not sent makes strict servers (node-opcua) drop
// the connection, and the next request fails with EOF. So ctx is checked
// first, and the request runs under a context that only RequestTimeout
// ends, long enough never to expire between numbering and sending. If the
// caller's ctx ends meanwhile, send returns at once and leaves the request
// to finish (or time out) on its own: its outcome is then unknown.
func send[T any](ctx context.Context, timeout time.Duration, req func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("not sent: %w", err)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		v, err := req(rctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, fmt.Errorf("sent, answer not awaited: %w", ctx.Err())
	}
}

// Read reads a node's value (decoded Go value).
func (s *Stream) Read(ctx context.Context, node string) (any, error) {
	c, err := s.current()
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", s.name, node, err)
	}
	return s.readWith(ctx, c, node)
}

func (s *Stream) readWith(ctx context.Context, c *opcua.Client, node string) (any, error) {
	nid, err := ua.ParseNodeID(node)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", s.name, node, err)
	}
	resp, err := sendTimed(ctx, s, func(rctx context.Context) (*ua.ReadResponse, error) {
		return c.Read(rctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: nid, AttributeID: ua.AttributeIDValue}}})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", s.name, node, err)
	}
	if len(resp.Results) != 1 || resp.Results[0] == nil {
		return nil, fmt.Errorf("%s: read %s: empty answer", s.name, node)
	}
	r := resp.Results[0]
	if r.Status != ua.StatusOK {
		return nil, fmt.Errorf("%s: read %s: %w", s.name, node, r.Status)
	}
	if r.Value == nil {
		return nil, fmt.Errorf("%s: read %s: no value", s.name, node)
	}
	return r.Value.Value(), nil
}

// Write writes a node's value. The value must be a type OPC UA carries
// (string, []string, bool, uint32, ...). A Bad status is an error wrapping
// the status code.
func (s *Stream) Write(ctx context.Context, node string, v any) error {
	c, err := s.current()
	if err != nil {
		return fmt.Errorf("%s: write %s: %w", s.name, node, err)
	}
	nid, err := ua.ParseNodeID(node)
	if err != nil {
		return fmt.Errorf("%s: write %s: %w", s.name, node, err)
	}
	vr, err := ua.NewVariant(v)
	if err != nil {
		return fmt.Errorf("%s: write %s: value %T: %w", s.name, node, v, err)
	}
	resp, err := sendTimed(ctx, s, func(rctx context.Context) (*ua.WriteResponse, error) {
		return c.Write(rctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
			NodeID:      nid,
			AttributeID: ua.AttributeIDValue,
			Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: vr},
		}}})
	})
	if err != nil {
		return fmt.Errorf("%s: write %s: %w", s.name, node, err)
	}
	if len(resp.Results) != 1 {
		return fmt.Errorf("%s: write %s: %d results", s.name, node, len(resp.Results))
	}
	if resp.Results[0] != ua.StatusOK {
		return fmt.Errorf("%s: write %s: %w: %w", s.name, node, ErrRefused, resp.Results[0])
	}
	return nil
}

// Call calls a method and returns its output arguments.
func (s *Stream) Call(ctx context.Context, object, method string, args ...any) ([]any, error) {
	c, err := s.current()
	if err != nil {
		return nil, fmt.Errorf("%s: call %s: %w", s.name, method, err)
	}
	oid, err := ua.ParseNodeID(object)
	if err != nil {
		return nil, fmt.Errorf("%s: call %s: object: %w", s.name, method, err)
	}
	mid, err := ua.ParseNodeID(method)
	if err != nil {
		return nil, fmt.Errorf("%s: call %s: %w", s.name, method, err)
	}
	in := make([]*ua.Variant, len(args))
	for i, a := range args {
		if in[i], err = ua.NewVariant(a); err != nil {
			return nil, fmt.Errorf("%s: call %s: argument %d (%T): %w", s.name, method, i, a, err)
		}
	}
	res, err := sendTimed(ctx, s, func(rctx context.Context) (*ua.CallMethodResult, error) {
		return c.Call(rctx, &ua.CallMethodRequest{ObjectID: oid, MethodID: mid, InputArguments: in})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: call %s: %w", s.name, method, err)
	}
	if res.StatusCode != ua.StatusOK {
		return nil, fmt.Errorf("%s: call %s: %w: %w", s.name, method, ErrRefused, res.StatusCode)
	}
	out := make([]any, len(res.OutputArguments))
	for i, o := range res.OutputArguments {
		if o != nil {
			out[i] = o.Value()
		}
	}
	return out, nil
}

// Package opcua is the PLC driver over OPC UA (gopcua client): inputs by
// subscription, outputs by Write, security None or Basic256Sha256
// Sign / SignAndEncrypt with the client certificate and key from config,
// reconnect with backoff, and a watchdog for the silent-subscription
// failure of upstream gopcua issue #910 (after a link cut the client can come
// back "connected" with its subscription dead): when the heartbeat input
// has not been notified for a while, the driver reads it directly; if the
// PLC answers with a newer value the subscription is re-created, if it does
// not answer the connection is dropped and re-opened.
//
// gopcua's own auto-reconnect is switched off: the driver owns the
// lifecycle, so every loss is one LinkDown event and every recovery one
// LinkUp. cmd/ wires it; the line sees only plc.PLC.
//
// Every OPC UA request is preceded by a check of its ctx: gopcua v0.8.0
// consumes a sequence number for a request made with an already-expired
// context without sending it, and strict servers drop the connection at the
// gap. The publishing interval the server grants (it may revise the one
// asked for) is what the driver's heartbeat watchdog allows for.
package opcua

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/tracline/tracline/internal/uasec"
	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/internal/link"
)

// Client handles of the monitored inputs.
const (
	hItem uint32 = iota + 1
	hRunning
	hHeartbeat
	hGate
)

// Driver is a plc.PLC over OPC UA.
type Driver struct {
	cfg   plc.Config
	log   *slog.Logger
	out   *link.Outbox
	nodes map[string]*ua.NodeID
	key   *rsa.PrivateKey
	cert  []byte

	mu      sync.Mutex
	cur     link.Current[opcua.Client]
	ls      link.LinkState // as reported by events; WriteVerdict checks it
	granted time.Duration  // publishing interval of the current subscription (under mu)

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	started   bool

	// Resubscribed counts subscriptions re-created by the #910 watchdog.
	resubscribed int64
	// killSub (tests only) makes serve delete its subscription on the
	// server without telling anyone — the symptom of upstream #910.
	killSub chan struct{}
}

var (
	_ plc.PLC              = (*Driver)(nil)
	_ plc.IntervalReporter = (*Driver)(nil)
)

// New validates cfg (protocol opcua), parses node ids and loads the
// certificate and key; it does not touch the network.
func New(cfg plc.Config, log *slog.Logger) (*Driver, error) {
	if cfg.Protocol != plc.ProtoOPCUA {
		return nil, fmt.Errorf("plc/opcua: plc.protocol is %q, not opcua", cfg.Protocol)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Driver{cfg: cfg, log: log.With("plc", "opcua"), out: link.NewOutbox(1024), nodes: map[string]*ua.NodeID{}, done: make(chan struct{})}
	for name, s := range cfg.Signals {
		id, err := ua.ParseNodeID(s.Node)
		if err != nil {
			return nil, fmt.Errorf("plc.signals.%s: node %q: %w", name, s.Node, err)
		}
		d.nodes[name] = id
	}
	if cfg.OPCUA.SecurityPolicy != plc.SecPolicyNone {
		var err error
		if d.cert, err = loadCert(cfg.OPCUA.Certificate); err != nil {
			return nil, fmt.Errorf("plc.opcua.certificate: %w", err)
		}
		if d.key, err = loadKey(cfg.OPCUA.PrivateKey); err != nil {
			return nil, fmt.Errorf("plc.opcua.private_key: %w", err)
		}
	}
	return d, nil
}

// Connect opens the first session and subscription (waiting at most until
// ctx ends) and starts the watchdog. Afterwards the driver reconnects by
// itself; losses arrive as events.
func (d *Driver) Connect(ctx context.Context) error {
	if d.started {
		return errors.New("plc/opcua: Connect called twice")
	}
	c, err := d.dial(ctx)
	if err != nil {
		return fmt.Errorf("plc/opcua %s: %w", d.cfg.OPCUA.Endpoint, err)
	}
	// Subscribe and take the item counter's baseline before returning, so
	// that every unit triggered after Connect is an event.
	st := d.newState()
	d.cur.Swap(c) // before start emits link-up (see run)
	sess, err := d.start(ctx, c, st)
	if err != nil {
		d.cur.Swap(nil)
		d.closeClient(c)
		return fmt.Errorf("plc/opcua %s: %w", d.cfg.OPCUA.Endpoint, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel, d.started = cancel, true
	go d.run(runCtx, sess, st)
	return nil
}

func (d *Driver) newState() *state {
	bits := 32
	if d.cfg.Signals[plc.SigItemTrigger].Type == plc.TypeU16 {
		bits = 16
	}
	return &state{tracker: link.NewTracker(d.cfg.CatchUp, bits), hb: link.NewHeartbeat(d.cfg.HeartbeatTimeout)}
}

// start reads the item counter and the gate ring once (the baseline, or
// after a reconnect the catch-up, independent of when the first
// notification lands), subscribes, and emits link-up and what the reads
// imply. The reads come before the monitored items are created, so that
// every notification carries a value at least as new as the read: a
// notification older than the read would look like a counter going
// backwards (a false counter or ring reset).
func (d *Driver) start(ctx context.Context, c *opcua.Client, st *state) (*session, error) {
	iv, err := d.readU32(ctx, c, plc.SigItemTrigger)
	if err != nil {
		return nil, fmt.Errorf("read item_trigger: %w", err)
	}
	var ring any
	_, haveGate := d.nodes[plc.SigGateOutcome]
	if haveGate {
		if ring, err = d.readValue(ctx, c, plc.SigGateOutcome); err != nil {
			return nil, fmt.Errorf("read gate_outcome: %w", err)
		}
	}
	s, err := d.subscribe(ctx, c)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	st.hb.Reset(now)
	st.lastNotify = now
	evs := append(d.ls.Up(now), st.tracker.Observe(iv, now)...)
	if haveGate {
		evs = append(evs, d.gateEvents(st, ring, now)...)
	}
	if !d.out.Emit(ctx, evs...) {
		return nil, ctx.Err()
	}
	return s, nil
}

// Events implements plc.PLC.
func (d *Driver) Events() <-chan plc.Event { return d.out.C }

// PublishingInterval implements plc.IntervalReporter: the publishing
// interval the server granted for the current (or last) subscription, which
// may differ from plc.opcua.publishing_interval; 0 before the first
// subscription (Connect sets it before it returns).
func (d *Driver) PublishingInterval() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.granted
}

// Close implements plc.PLC.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		if d.started {
			d.cancel()
			<-d.done
		} else if c := d.cur.Swap(nil); c != nil {
			d.closeClient(c)
		}
		close(d.out.C)
	})
	return nil
}

func (d *Driver) closeClient(c *opcua.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c.Close(ctx)
}

// dial opens a secure channel and a session.
func (d *Driver) dial(ctx context.Context) (*opcua.Client, error) {
	o := d.cfg.OPCUA
	opts := []opcua.Option{
		opcua.AutoReconnect(false),
		opcua.RequestTimeout(o.Timeout),
		opcua.DialTimeout(o.Timeout),
		opcua.SessionTimeout(time.Minute),
		opcua.ApplicationName("Tracline line controller"),
	}
	if o.SecurityPolicy == plc.SecPolicyNone {
		opts = append(opts, opcua.SecurityPolicy(ua.SecurityPolicyURINone), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AuthAnonymous())
	} else {
		// The server's certificate is checked against plc.opcua.trust
		// before any secure channel; gopcua then encrypts the
		// OpenSecureChannel request for exactly that certificate, so a
		// server without its private key cannot complete the handshake.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		eps, err := opcua.GetEndpoints(ctx, o.Endpoint, opcua.DialTimeout(o.Timeout), opcua.RequestTimeout(o.Timeout))
		if err != nil {
			return nil, fmt.Errorf("get endpoints: %w", err)
		}
		mode := ua.MessageSecurityModeFromString(o.SecurityMode)
		ep, err := opcua.SelectEndpoint(eps, o.SecurityPolicy, mode)
		if err == nil && (ep.SecurityPolicyURI != ua.FormatSecurityPolicyURI(o.SecurityPolicy) || ep.SecurityMode != mode) {
			err = fmt.Errorf("it offered %s/%s instead", ep.SecurityPolicyURI, ep.SecurityMode)
		}
		if err != nil {
			return nil, fmt.Errorf("the server offers no %s/%s endpoint: %w", o.SecurityPolicy, o.SecurityMode, err)
		}
		cert, err := uasec.ServerCertificate(ep.ServerCertificate)
		if err != nil {
			return nil, fmt.Errorf("%s/%s endpoint: %w", o.SecurityPolicy, o.SecurityMode, err)
		}
		if err := o.Trust.Check(o.Endpoint, ep.ServerCertificate); err != nil {
			return nil, err
		}
		use := *ep
		use.ServerCertificate = cert // the checked certificate, without its issuers
		opts = append(opts, opcua.PrivateKey(d.key), opcua.Certificate(d.cert),
			opcua.SecurityFromEndpoint(&use, ua.UserTokenTypeAnonymous), opcua.AuthAnonymous())
	}
	c, err := opcua.NewClient(o.Endpoint, opts...)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*o.Timeout)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		d.closeClient(c)
		return nil, err
	}
	return c, nil
}

// WriteVerdict implements plc.PLC: one Write of UInt32[3] {item, result,
// reason}. While the link is reported down — also with the session up and
// the heartbeat stale — it fails at once with plc.ErrNotConnected.
func (d *Driver) WriteVerdict(ctx context.Context, v plc.Verdict) error {
	if err := v.Validate(); err != nil {
		return err
	}
	if !d.ls.IsUp() {
		return fmt.Errorf("plc/opcua: verdict item %d: %w", v.Item, plc.ErrNotConnected)
	}
	val := []uint32{v.Item, uint32(v.Result), uint32(v.Reason)}
	if err := d.write(ctx, plc.SigVerdict, val); err != nil {
		return fmt.Errorf("plc/opcua: verdict item %d: %w", v.Item, err)
	}
	return nil
}

// Set implements plc.PLC. It is attempted whenever a session is open,
// whatever the heartbeat says. A Boolean signal gets value%2: 0/1 for the
// stop request and alarm, the toggle for controller_alive.
func (d *Driver) Set(ctx context.Context, o plc.Output, value int) error {
	if err := plc.CheckOutputValue(o, value); err != nil {
		return err
	}
	s, ok := d.cfg.Signals[o.String()]
	if !ok {
		return fmt.Errorf("plc/opcua: %s: %w", o, plc.ErrNoSignal)
	}
	var val any
	switch s.Type {
	case plc.TypeBool:
		val = value%2 != 0
	case plc.TypeU16:
		val = uint16(value)
	case plc.TypeI16:
		val = int16(value)
	default:
		return fmt.Errorf("plc/opcua: %s: type %s cannot be written", o, s.Type)
	}
	if err := d.write(ctx, o.String(), val); err != nil {
		return fmt.Errorf("plc/opcua: %s=%d: %w", o, value, err)
	}
	return nil
}

func (d *Driver) write(ctx context.Context, sig string, val any) error {
	c := d.cur.Get()
	if c == nil {
		return plc.ErrNotConnected
	}
	variant, err := ua.NewVariant(val)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil { // gopcua would burn a sequence number
		return err
	}
	res, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      d.nodes[sig],
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: variant},
	}}})
	if err != nil {
		return err
	}
	if len(res.Results) != 1 {
		return fmt.Errorf("write %s: %d results", d.cfg.Signals[sig].Node, len(res.Results))
	}
	if res.Results[0] != ua.StatusOK {
		return fmt.Errorf("write %s: %w", d.cfg.Signals[sig].Node, res.Results[0])
	}
	return nil
}

// Resubscribed reports how often the watchdog re-created a silent
// subscription (upstream #910).
func (d *Driver) Resubscribed() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resubscribed
}

// session is one connected client with its subscription.
type session struct {
	c       *opcua.Client
	sub     *opcua.Subscription
	notifs  chan *opcua.PublishNotificationData
	granted time.Duration // the subscription's publishing interval
}

// run owns the connection: subscribe, watch, reconnect.
func (d *Driver) run(ctx context.Context, sess *session, st *state) {
	defer close(d.done)
	back := link.Backoff{Min: d.cfg.ReconnectMin, Max: d.cfg.ReconnectMax}
	for {
		if sess == nil {
			if !back.Wait(ctx) {
				return
			}
			c, err := d.dial(ctx)
			if err != nil {
				d.log.Debug("reconnect failed", "err", err)
				continue
			}
			// The client is published before start emits link-up and the
			// items recovered from the counter: whoever reacts to them can
			// write at once.
			d.cur.Swap(c)
			if sess, err = d.start(ctx, c, st); err != nil {
				d.cur.Swap(nil)
				d.log.Debug("re-subscribe failed", "err", err)
				d.closeClient(c)
				continue
			}
			d.log.Info("reconnected", "endpoint", d.cfg.OPCUA.Endpoint)
		}
		back.Reset()
		err := d.serve(ctx, sess, st)
		d.cur.Swap(nil)
		d.closeClient(sess.c)
		sess = nil
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("link lost", "err", err)
		if !d.out.Emit(ctx, d.ls.Down(err, time.Now())...) {
			return
		}
	}
}

// state is what survives reconnects.
type state struct {
	tracker     *link.Tracker
	hb          *link.Heartbeat
	gate        link.GateTracker
	running     bool
	haveRunning bool
	lastNotify  time.Time
}

// subscribe creates the subscription and its monitored items, and adopts
// the publishing interval the server granted: the heartbeat watchdog
// allows two of them on top of heartbeat_timeout (a change reaches the
// driver only at the next publish).
func (d *Driver) subscribe(ctx context.Context, c *opcua.Client) (*session, error) {
	s := &session{c: c, notifs: make(chan *opcua.PublishNotificationData, 256)}
	if err := ctx.Err(); err != nil { // gopcua would burn a sequence number
		return nil, err
	}
	asked := d.cfg.OPCUA.PublishingInterval
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: asked}, s.notifs)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	s.sub = sub
	granted := sub.RevisedPublishingInterval
	if granted <= 0 {
		granted = asked // a server that does not say: assume it granted what was asked
	}
	if granted != asked.Truncate(time.Millisecond) { // gopcua asks in whole milliseconds
		d.log.Warn("the server revised the publishing interval", "asked", asked, "granted", granted)
	}
	d.mu.Lock()
	d.granted = granted
	d.mu.Unlock()
	s.granted = granted
	sigs := []string{plc.SigItemTrigger, plc.SigRunning, plc.SigHeartbeat}
	handles := []uint32{hItem, hRunning, hHeartbeat}
	if _, ok := d.nodes[plc.SigGateOutcome]; ok {
		sigs, handles = append(sigs, plc.SigGateOutcome), append(handles, hGate)
	}
	items := make([]*ua.MonitoredItemCreateRequest, len(sigs))
	for i, sig := range sigs {
		items[i] = opcua.NewMonitoredItemCreateRequestWithDefaults(d.nodes[sig], ua.AttributeIDValue, handles[i])
		items[i].RequestedParameters.QueueSize = 100 // keep every counter change within a publishing interval
		if handles[i] == hGate {
			items[i].RequestedParameters.QueueSize = 1 // each value is the whole ring: the newest holds all
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, items...)
	if err != nil {
		return nil, fmt.Errorf("monitor inputs: %w", err)
	}
	if len(res.Results) != len(items) {
		return nil, fmt.Errorf("monitor inputs: %d results for %d items", len(res.Results), len(items))
	}
	for i, r := range res.Results {
		if r.StatusCode != ua.StatusOK {
			return nil, fmt.Errorf("monitor %s: %w", d.cfg.Signals[sigs[i]].Node, r.StatusCode)
		}
	}
	return s, nil
}

// silence is how long the heartbeat may go unnotified before the watchdog
// acts: heartbeat_timeout plus two granted publishing intervals.
func (d *Driver) silence(granted time.Duration) time.Duration {
	return d.cfg.HeartbeatTimeout + 2*granted
}

// serve runs one connection until it fails.
func (d *Driver) serve(ctx context.Context, s *session, st *state) error {
	c := s.c
	st.hb.SetTimeout(d.silence(s.granted))
	check := max(d.silence(s.granted)/4, 5*time.Millisecond)
	tick := time.NewTicker(check)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.killSub:
			d.cancelSub(ctx, s.sub)
		case n := <-s.notifs:
			if n == nil {
				continue
			}
			if n.Error != nil {
				return fmt.Errorf("subscription: %w", n.Error)
			}
			dc, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			st.lastNotify = time.Now()
			for _, it := range dc.MonitoredItems {
				if !d.out.Emit(ctx, d.handle(st, it)...) {
					return ctx.Err()
				}
			}
		case now := <-tick.C:
			if err := st.hb.Stale(now); err != nil {
				// No heartbeat notification for too long: ask the PLC directly.
				hv, rerr := d.readU32(ctx, c, plc.SigHeartbeat)
				if rerr != nil {
					return fmt.Errorf("heartbeat silent and read failed: %w", rerr)
				}
				if st.hb.Changed(hv) {
					// The PLC is alive but our subscription is silent (#910).
					d.log.Warn("subscription silent while the PLC answers: re-creating it")
					d.mu.Lock()
					d.resubscribed++
					d.mu.Unlock()
					if !d.out.Emit(ctx, d.ls.Down(fmt.Errorf("subscription silent for %s while the PLC answers; re-created", now.Sub(st.lastNotify).Round(time.Millisecond)), now)...) {
						return ctx.Err()
					}
					d.cancelSub(ctx, s.sub)
					ns, err := d.start(ctx, c, st)
					if err != nil {
						return err
					}
					*s = *ns
					st.hb.SetTimeout(d.silence(s.granted))
					if nc := max(d.silence(s.granted)/4, 5*time.Millisecond); nc != check {
						check = nc
						tick.Reset(check)
					}
					continue
				}
				// Connected, PLC answers, heartbeat really stopped.
				if !d.out.Emit(ctx, d.ls.Down(err, now)...) {
					return ctx.Err()
				}
			}
		}
	}
}

// cancelSub deletes a subscription on the server (best effort).
func (d *Driver) cancelSub(ctx context.Context, sub *opcua.Subscription) {
	cctx, cancel := context.WithTimeout(ctx, d.cfg.OPCUA.Timeout)
	defer cancel()
	if cctx.Err() != nil { // gopcua would burn a sequence number
		return
	}
	if err := sub.Cancel(cctx); err != nil {
		d.log.Debug("delete subscription", "err", err)
	}
}

// gateEvents turns one value of the gate ring node into events.
func (d *Driver) gateEvents(st *state, v any, now time.Time) []plc.Event {
	s := d.cfg.Signals[plc.SigGateOutcome]
	var evs []plc.Event
	a, ok := v.([]uint32)
	if !ok {
		evs = []plc.Event{{Kind: plc.EventGateError, At: now,
			Err: fmt.Errorf("gate_outcome %s: value is %T, not UInt32[%d] {count, item, outcome, …}", s.Node, v, 1+2*s.Length)}}
	} else if g, err := link.GateFromArray(a, s.Length); err != nil {
		evs = []plc.Event{{Kind: plc.EventGateError, At: now, Err: fmt.Errorf("gate_outcome %s: %w", s.Node, err)}}
	} else {
		evs = st.gate.Observe(g, now)
	}
	link.LogGate(d.log, evs)
	return evs
}

// handle turns one monitored-item notification into events.
func (d *Driver) handle(st *state, it *ua.MonitoredItemNotification) []plc.Event {
	if it == nil || it.Value == nil || it.Value.Value == nil {
		return nil
	}
	if it.Value.Status != ua.StatusOK && it.Value.EncodingMask&ua.DataValueStatusCode != 0 {
		return nil // bad quality: no value to act on
	}
	now := time.Now()
	if it.ClientHandle == hGate {
		return d.gateEvents(st, it.Value.Value.Value(), now)
	}
	v, ok := toU32(it.Value.Value.Value())
	if !ok {
		d.log.Warn("input of unexpected type", "handle", it.ClientHandle, "type", fmt.Sprintf("%T", it.Value.Value.Value()))
		return nil
	}
	switch it.ClientHandle {
	case hItem:
		return st.tracker.Observe(v, now)
	case hRunning:
		r := v != 0
		if st.haveRunning && r == st.running {
			return nil
		}
		st.running, st.haveRunning = r, true
		return []plc.Event{{Kind: plc.EventRunning, At: now, Running: r}}
	case hHeartbeat:
		st.hb.Observe(v, now)
		if d.ls.IsUp() {
			return nil
		}
		return d.ls.Up(now) // heartbeat back after a stale period
	}
	return nil
}

func (d *Driver) readU32(ctx context.Context, c *opcua.Client, sig string) (uint32, error) {
	raw, err := d.readValue(ctx, c, sig)
	if err != nil {
		return 0, err
	}
	v, ok := toU32(raw)
	if !ok {
		return 0, fmt.Errorf("read %s: unexpected type %T", d.cfg.Signals[sig].Node, raw)
	}
	return v, nil
}

// readValue reads one signal's value (one Read service call).
func (d *Driver) readValue(ctx context.Context, c *opcua.Client, sig string) (any, error) {
	rctx, cancel := context.WithTimeout(ctx, d.cfg.OPCUA.Timeout)
	defer cancel()
	if err := rctx.Err(); err != nil { // gopcua would burn a sequence number
		return nil, err
	}
	res, err := c.Read(rctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: d.nodes[sig], AttributeID: ua.AttributeIDValue}}})
	if err != nil {
		return nil, err
	}
	if len(res.Results) != 1 || res.Results[0].Value == nil {
		return nil, fmt.Errorf("read %s: no value", d.cfg.Signals[sig].Node)
	}
	if res.Results[0].Status != ua.StatusOK {
		return nil, fmt.Errorf("read %s: %w", d.cfg.Signals[sig].Node, res.Results[0].Status)
	}
	return res.Results[0].Value.Value(), nil
}

func toU32(v any) (uint32, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case uint16:
		return uint32(x), true
	case int16:
		return uint32(uint16(x)), true
	case uint32:
		return x, true
	case int32:
		return uint32(x), true
	case byte:
		return uint32(x), true
	case int64:
		return uint32(x), true
	case uint64:
		return uint32(x), true
	}
	return 0, false
}

// loadCert and loadKey read the client's certificate and key with the one
// loader of every Tracline OPC UA client (PEM or DER, PKCS#1 or PKCS#8).
func loadCert(file string) ([]byte, error) { return uasec.LoadCertificate(file) }

func loadKey(file string) (*rsa.PrivateKey, error) { return uasec.LoadPrivateKey(file) }

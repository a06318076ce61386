package uasim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

func startServer(t *testing.T) (*Server, *Variable, *Variable, chan any) {
	t.Helper()
	s, err := New(Config{Name: "test", NamespaceURI: "urn:tracline:test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.AddObject("", "Dev")
	if err != nil {
		t.Fatal(err)
	}
	ro, err := s.AddVariable(obj, "Dev.Counter", uint32(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	writes := make(chan any, 10)
	rw, err := s.AddVariable(obj, "Dev.Code", "", func(v any) error {
		str, ok := v.(string)
		if !ok {
			return errors.New("want a string")
		}
		if str == "bad" {
			return &StatusError{Code: uint32(ua.StatusBadOutOfRange), Msg: "bad"}
		}
		writes <- v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddMethod(obj, "Dev.Add", func(args []any) ([]any, error) {
		if len(args) != 2 {
			return nil, errors.New("two args")
		}
		a, ok1 := args[0].(int32)
		b, ok2 := args[1].(int32)
		if !ok1 || !ok2 {
			return nil, errors.New("int32 args")
		}
		return []any{a + b}, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, ro, rw, writes
}

func connect(t *testing.T, endpoint string) *opcua.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := opcua.NewClient(endpoint, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{NamespaceURI: "urn:x"}, true},
		{"no namespace", Config{}, false},
		{"bad port", Config{NamespaceURI: "urn:x", Port: 70000}, false},
		{"negative min", Config{NamespaceURI: "urn:x", MinPublishingInterval: -1}, false},
		{"max below min", Config{NamespaceURI: "urn:x", MinPublishingInterval: 10 * time.Millisecond, MaxPublishingInterval: time.Millisecond}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestReadWriteCallAndGuards(t *testing.T) {
	s, ro, rw, writes := startServer(t)
	c := connect(t, s.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := ro.Set(uint32(42)); err != nil {
		t.Fatal(err)
	}
	nid := ua.MustParseNodeID(ro.NodeID())
	rr, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: nid, AttributeID: ua.AttributeIDValue}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rr.Results[0].Value.Value(); got != uint32(42) {
		t.Fatalf("read = %v, want 42", got)
	}

	write := func(node string, v any) ua.StatusCode {
		t.Helper()
		resp, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
			NodeID:      ua.MustParseNodeID(node),
			AttributeID: ua.AttributeIDValue,
			Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
		}}})
		if err != nil {
			t.Fatalf("write %s: %v", node, err)
		}
		return resp.Results[0]
	}
	tests := []struct {
		name string
		node string
		val  any
		want ua.StatusCode
	}{
		{"accepted", rw.NodeID(), "0123", ua.StatusOK},
		{"callback rejects type", rw.NodeID(), int32(5), ua.StatusBadTypeMismatch},
		{"callback status", rw.NodeID(), "bad", ua.StatusBadOutOfRange},
		{"read-only", ro.NodeID(), uint32(1), ua.StatusBadNotWritable},
		{"unknown node", "ns=1;s=Nope", "x", ua.StatusBadNodeIDUnknown},
		{"unknown namespace (crashes plain gopcua)", "ns=7;s=Dev.Code", "x", ua.StatusBadNodeIDUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := write(tc.node, tc.val); got != tc.want {
				t.Fatalf("status = %v, want %v", got, tc.want)
			}
		})
	}
	select {
	case v := <-writes:
		if v != "0123" {
			t.Fatalf("callback got %v", v)
		}
	default:
		t.Fatal("write callback not called")
	}
	if got := rw.Get(); got != "0123" {
		t.Fatalf("value after write = %v", got)
	}
	if len(writes) != 0 {
		t.Fatalf("rejected writes reached the callback's accept path: %d", len(writes))
	}

	// Method call.
	res, err := c.Call(ctx, &ua.CallMethodRequest{
		ObjectID:       ua.MustParseNodeID(s.NodeID("Dev")),
		MethodID:       ua.MustParseNodeID(s.NodeID("Dev.Add")),
		InputArguments: []*ua.Variant{ua.MustVariant(int32(2)), ua.MustVariant(int32(3))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != ua.StatusOK || len(res.OutputArguments) != 1 || res.OutputArguments[0].Value() != int32(5) {
		t.Fatalf("call = %v %v", res.StatusCode, res.OutputArguments)
	}
	res, err = c.Call(ctx, &ua.CallMethodRequest{
		ObjectID: ua.MustParseNodeID(s.NodeID("Dev")),
		MethodID: ua.MustParseNodeID(s.NodeID("Dev.Nope")),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != ua.StatusBadMethodInvalid {
		t.Fatalf("unknown method status = %v", res.StatusCode)
	}

	// DeleteMonitoredItems with an unknown id and a sub-millisecond publishing
	// interval (both crash plain gopcua v0.8.0).
	notes := make(chan *opcua.PublishNotificationData, 16)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 100 * time.Microsecond}, notes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(nid, ua.AttributeIDValue, 1)); err != nil {
		t.Fatal(err)
	}
	dr, err := sub.Unmonitor(ctx, 99999)
	if err != nil {
		t.Fatal(err)
	}
	if dr.Results[0] != ua.StatusBadMonitoredItemIDInvalid {
		t.Fatalf("unmonitor unknown = %v", dr.Results[0])
	}
	// The server is still alive and the subscription delivers.
	if err := ro.Set(uint32(77)); err != nil {
		t.Fatal(err)
	}
	waitValue(t, ctx, notes, uint32(77))
}

func waitValue(t *testing.T, ctx context.Context, notes chan *opcua.PublishNotificationData, want any) {
	t.Helper()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("no notification with %v", want)
		case n := <-notes:
			if n.Error != nil {
				t.Fatalf("notification error: %v", n.Error)
			}
			dc, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			for _, it := range dc.MonitoredItems {
				if it.Value != nil && it.Value.Value != nil && it.Value.Value.Value() == want {
					return
				}
			}
		}
	}
}

func TestRevisePublishingInterval(t *testing.T) {
	s, err := New(Config{NamespaceURI: "urn:x", MaxPublishingInterval: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want float64 }{
		{0, 1}, {0.5, 1}, {-3, 1}, {10.7, 10}, {5000, 1000},
	}
	for _, tc := range tests {
		if got := s.revisePublishingInterval(tc.in); got != tc.want {
			t.Errorf("revise(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestAddAfterStartAndBadValues(t *testing.T) {
	s, ro, _, _ := startServer(t)
	if _, err := s.AddVariable("", "Late", int32(1), nil); !errors.Is(err, ErrStarted) {
		t.Fatalf("AddVariable after Start: %v", err)
	}
	if err := ro.Set(struct{}{}); err == nil {
		t.Fatal("Set(struct{}) accepted")
	}
	if err := ro.Set(1 << 40); err == nil {
		t.Fatal("Set(int too big) accepted")
	}
	s2, _ := New(Config{NamespaceURI: "urn:x"}, nil)
	if _, err := s2.AddVariable("NoSuchObject", "V", int32(1), nil); err == nil {
		t.Fatal("unknown parent accepted")
	}
	if _, err := s2.AddVariable("", "V", int32(1), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.AddVariable("", "V", int32(1), nil); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriptionIDsNotReused: gopcua numbers a new subscription
// len(Subs)+1, which after a deletion can be a live subscription's id.
func TestSubscriptionIDsNotReused(t *testing.T) {
	s, ro, _, _ := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subscribe := func(c *opcua.Client) (*opcua.Subscription, chan *opcua.PublishNotificationData) {
		notes := make(chan *opcua.PublishNotificationData, 64)
		sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 5 * time.Millisecond}, notes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sub.Monitor(ctx, ua.TimestampsToReturnNeither,
			opcua.NewMonitoredItemCreateRequestWithDefaults(ua.MustParseNodeID(ro.NodeID()), ua.AttributeIDValue, 7)); err != nil {
			t.Fatal(err)
		}
		return sub, notes
	}
	c1, c2, c3 := connect(t, s.Endpoint()), connect(t, s.Endpoint()), connect(t, s.Endpoint())
	sub1, _ := subscribe(c1)
	sub2, notes2 := subscribe(c2)
	if err := sub1.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	// The server deletes asynchronously: wait for it.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		svc := s.srv.SubscriptionService
		svc.Mu.Lock()
		_, still := svc.Subs[sub1.SubscriptionID]
		svc.Mu.Unlock()
		if !still {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("subscription 1 never deleted")
		case <-tick.C:
		}
	}
	sub3, notes3 := subscribe(c3)
	if sub3.SubscriptionID == sub2.SubscriptionID {
		t.Fatalf("new subscription got live id %d", sub2.SubscriptionID)
	}
	if err := ro.Set(uint32(4242)); err != nil {
		t.Fatal(err)
	}
	waitValue(t, ctx, notes2, uint32(4242))
	waitValue(t, ctx, notes3, uint32(4242))
}

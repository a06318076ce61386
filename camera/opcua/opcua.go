// Package opcua drives a vision or aggregation camera over OPC UA by
// subscription, by profile: a result node carrying one whole result as JSON
// (field names configurable), a result counter and a ring of recent results
// for gap recovery. It implements camera.Camera. Only cmd/ wires it.
//
// Not done yet: the method profile (OPC 40100 StartSingleJob, results by
// job id) — see docs/devices-printer-camera.md.
package opcua

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/tracline/tracline/camera"
	"github.com/tracline/tracline/printer/uarecord"
)

// Fields names the JSON keys of a result record.
type Fields struct {
	Seq   string `yaml:"seq"`   // positive integer (default "seq")
	Item  string `yaml:"item"`  // item or group id, uint32 (default "item")
	Codes string `yaml:"codes"` // string or array of strings (default "codes")
	Grade string `yaml:"grade"` // "A".."F", "" or ISO 0..4 (default "grade")
	Pass  string `yaml:"pass"`  // bool (default "pass")
	Time  string `yaml:"time"`  // RFC 3339 (default "at"; optional in records)
	Level string `yaml:"level"` // optional (default "level")
}

func (f *Fields) defaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&f.Seq, "seq")
	set(&f.Item, "item")
	set(&f.Codes, "codes")
	set(&f.Grade, "grade")
	set(&f.Pass, "pass")
	set(&f.Time, "at")
	set(&f.Level, "level")
}

// Config is a camera profile.
type Config struct {
	// Name of the camera in messages (default "camera").
	Name string `yaml:"name"`
	// Stream: endpoint, security, record_node (JSON result), count_node,
	// ring_node, publishing_interval, watchdog, request_timeout.
	Stream uarecord.Config `yaml:"stream"`
	Fields Fields          `yaml:"fields"`
	// TriggerObject and TriggerMethod: for cameras the controller triggers
	// (OPC 40100 StartSingleJob style): the method takes the item id
	// (UInt32). Results still arrive by subscription.
	TriggerObject string `yaml:"trigger_object"`
	TriggerMethod string `yaml:"trigger_method"`
}

// Validate reports what is wrong, naming the setting.
func (c Config) Validate() error {
	p := "camera." + c.name()
	errs := []error{c.Stream.Validate(p)}
	f := c.Fields
	f.defaults()
	errs = append(errs, uarecord.CheckNode(p+".trigger_method", c.TriggerMethod, false))
	if c.TriggerMethod != "" {
		errs = append(errs, uarecord.CheckNode(p+".trigger_object", c.TriggerObject, true))
	}
	seen := map[string]string{}
	for _, kv := range []struct{ k, v string }{{"seq", f.Seq}, {"item", f.Item}, {"codes", f.Codes}, {"grade", f.Grade}, {"pass", f.Pass}, {"time", f.Time}, {"level", f.Level}} {
		if other, dup := seen[kv.v]; dup {
			errs = append(errs, fmt.Errorf("%s.fields.%s: key %q is already used by fields.%s", p, kv.k, kv.v, other))
		}
		seen[kv.v] = kv.k
	}
	return errors.Join(errs...)
}

func (c Config) name() string {
	if c.Name == "" {
		return "camera"
	}
	return c.Name
}

// SimProfile is the profile of a linesim camera at endpoint: object is
// "Camera" for the vision camera, "AggCamera" for an aggregation camera.
func SimProfile(endpoint, object string) Config {
	return Config{
		Name: object,
		Stream: uarecord.Config{
			Endpoint:   endpoint,
			RecordNode: "ns=1;s=" + object + ".LastResult",
			CountNode:  "ns=1;s=" + object + ".ResultCount",
			RingNode:   "ns=1;s=" + object + ".Results",
		},
	}
}

// SimFieldProfile is the separate-field-nodes profile of a linesim camera:
// the counter is subscribed and item, codes, grade and pass are read from
// their own nodes; with ring true the JSON ring recovers missed results,
// without it every missed result is a gap.
func SimFieldProfile(endpoint, object string, ring bool) Config {
	c := Config{
		Name: object,
		Stream: uarecord.Config{
			Endpoint:   endpoint,
			RecordNode: "ns=1;s=" + object + ".ResultCount",
			FieldNodes: map[string]string{
				"item":  "ns=1;s=" + object + ".Item",
				"codes": "ns=1;s=" + object + ".Codes",
				"grade": "ns=1;s=" + object + ".Grade",
				"pass":  "ns=1;s=" + object + ".Pass",
			},
		},
	}
	if ring {
		c.Stream.RingNode = "ns=1;s=" + object + ".Results"
	}
	return c
}

// Camera is a camera over OPC UA.
type Camera struct {
	cfg    Config
	log    *slog.Logger
	stream *uarecord.Stream
	events chan camera.Event

	mu        sync.Mutex
	connected bool
	done      chan struct{}
	quit      chan struct{}
	quitOnce  sync.Once
}

var (
	_ camera.Camera    = (*Camera)(nil)
	_ camera.Triggerer = (*Camera)(nil)
)

// ErrNoTrigger: the profile names no trigger method.
var ErrNoTrigger = errors.New("camera profile has no trigger_method: this camera is triggered by the line (its photo-eye), not by the controller, so it cannot be read on demand")

// StartSingleJob triggers one inspection for item by the profile's trigger
// method. The result arrives on Events like any other.
func (c *Camera) StartSingleJob(ctx context.Context, item uint32) error {
	if c.cfg.TriggerMethod == "" {
		return fmt.Errorf("camera %q: %w", c.cfg.name(), ErrNoTrigger)
	}
	if _, err := c.stream.Call(ctx, c.cfg.TriggerObject, c.cfg.TriggerMethod, item); err != nil {
		return fmt.Errorf("camera %q: start job for item %d: %w", c.cfg.name(), item, err)
	}
	return nil
}

// New validates the profile; it does not touch the network.
func New(cfg Config, log *slog.Logger) (*Camera, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Fields.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Camera{cfg: cfg, log: log, events: make(chan camera.Event, 1024), done: make(chan struct{}), quit: make(chan struct{})}
	st, err := uarecord.New(cfg.Stream, "camera "+strconv.Quote(cfg.name()), func(raw string) (uint64, error) {
		r, err := DecodeResult(raw, cfg.Fields)
		return r.Seq, err
	}, log)
	if err != nil {
		return nil, err
	}
	c.stream = st
	return c, nil
}

// Connect connects (bounded by ctx) and starts delivering events. Results
// published before Connect are not delivered.
func (c *Camera) Connect(ctx context.Context) error {
	if err := c.stream.Connect(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	go c.run()
	return nil
}

// PublishingInterval is the publishing interval the camera's OPC UA server
// granted for the result subscription (it may be longer than the profile
// asked: results then arrive at the server's pace); 0 before Connect. An
// optional ability: cmd/ checks the line's deadline margin.
func (c *Camera) PublishingInterval() time.Duration { return c.stream.PublishingInterval() }

// ResultCount reads the camera's result count now: the number of its last
// result, delivered or not (line.ResultCounter, the purge's mark).
func (c *Camera) ResultCount(ctx context.Context) (uint64, error) { return c.stream.Count(ctx) }

// Events delivers results, gaps and link changes in order; closed after Close.
func (c *Camera) Events() <-chan camera.Event { return c.events }

// Close stops the camera's stream. Safe twice and before Connect.
func (c *Camera) Close() error {
	c.quitOnce.Do(func() { close(c.quit) })
	err := c.stream.Close()
	c.mu.Lock()
	connected := c.connected
	c.mu.Unlock()
	if connected {
		<-c.done
	} else {
		select {
		case <-c.done:
		default:
			close(c.done)
			close(c.events)
		}
	}
	return err
}

func (c *Camera) run() {
	defer func() {
		close(c.events)
		close(c.done)
	}()
	for ev := range c.stream.Events() {
		out := camera.Event{At: ev.At}
		switch ev.Kind {
		case uarecord.KindRecord:
			r, err := DecodeResult(ev.Raw, c.cfg.Fields)
			if err != nil {
				out.Kind, out.From, out.To, out.Lost = camera.EventGap, ev.Seq, ev.Seq, 1
				out.Err = err
				break
			}
			out.Kind, out.Result = camera.EventResult, r
		case uarecord.KindGap:
			out.Kind, out.From, out.To, out.Lost = camera.EventGap, ev.From, ev.To, int(ev.To-ev.From+1)
		case uarecord.KindDown:
			out.Kind, out.Err = camera.EventDown, ev.Err
		case uarecord.KindUp:
			out.Kind = camera.EventUp
		case uarecord.KindReset:
			out.Kind, out.From, out.To = camera.EventReset, ev.From, ev.To
			out.Err = fmt.Errorf("result counter went from %d to %d", ev.From, ev.To)
		default:
			continue
		}
		select {
		case c.events <- out:
		case <-c.quit:
			return
		}
	}
}

// DecodeResult decodes one JSON result record with the given field names.
// It never panics; a record without a valid seq or item is an error.
func DecodeResult(raw string, f Fields) (camera.Result, error) {
	f.defaults()
	var r camera.Result
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return r, fmt.Errorf("result is not a JSON object: %w", err)
	}
	get := func(key string, dst any, required bool) error {
		v, ok := m[key]
		if !ok || string(v) == "null" {
			if required {
				return fmt.Errorf("result has no %q", key)
			}
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("result %q: %s: %v", key, v, err)
		}
		return nil
	}
	if err := get(f.Seq, &r.Seq, true); err != nil {
		return r, err
	}
	if r.Seq == 0 {
		return r, fmt.Errorf("result %q is 0", f.Seq)
	}
	if err := get(f.Item, &r.Item, true); err != nil {
		return r, err
	}
	if err := get(f.Pass, &r.Pass, true); err != nil {
		return r, err
	}
	if v, ok := m[f.Codes]; ok && string(v) != "null" {
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			if one != "" {
				r.Codes = []string{one}
			}
		} else if err := json.Unmarshal(v, &r.Codes); err != nil {
			return r, fmt.Errorf("result %q: %s is neither a string nor an array of strings", f.Codes, v)
		}
	}
	var codes []string
	for _, c := range r.Codes {
		if c != "" {
			codes = append(codes, c)
		}
	}
	r.Codes = codes
	if v, ok := m[f.Grade]; ok && string(v) != "null" {
		g, err := parseGrade(v)
		if err != nil {
			return r, fmt.Errorf("result %q: %v", f.Grade, err)
		}
		r.Grade = g
	}
	if err := get(f.Level, &r.Level, false); err != nil {
		return r, err
	}
	if err := get(f.Time, &r.At, false); err != nil {
		return r, err
	}
	return r, nil
}

// parseGrade accepts "A".."F" (E counted as a letter some cameras use), ""
// (none) or an ISO/IEC 15415 numeric grade 0..4.
func parseGrade(v json.RawMessage) (byte, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		switch {
		case s == "":
			return 0, nil
		case len(s) == 1 && s[0] >= 'A' && s[0] <= 'F':
			return s[0], nil
		}
		return 0, fmt.Errorf("grade %q is not A..F", s)
	}
	var n float64
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("grade %s is neither a letter nor a number", v)
	}
	switch {
	case n >= 3.5 && n <= 4:
		return 'A', nil
	case n >= 2.5 && n < 3.5:
		return 'B', nil
	case n >= 1.5 && n < 2.5:
		return 'C', nil
	case n >= 0.5 && n < 1.5:
		return 'D', nil
	case n >= 0 && n < 0.5:
		return 'F', nil
	}
	return 0, fmt.Errorf("numeric grade %v is outside 0..4", n)
}

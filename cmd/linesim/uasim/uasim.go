// Package uasim is a small toolkit around the gopcua v0.8.0 OPC UA server for
// the line simulator: start a server on 127.0.0.1, add objects and variables in
// one namespace, get a callback when a client writes, answer method calls, and
// publish values from Go.
//
// It exists because the gopcua server, used directly, is easy to crash or to
// race with; uasim guards what was measured here:
//   - a Write to an unknown namespace index dereferences nil: uasim answers the
//     Write service itself (BadNodeIdUnknown for such nodes);
//   - DeleteMonitoredItems with an unknown id dereferences nil: uasim checks ids
//     first (BadMonitoredItemIdInvalid);
//   - a publishing interval < 1 ms makes time.NewTicker panic: uasim revises it
//     into [MinPublishingInterval, MaxPublishingInterval] before the server sees it;
//   - method calls need a handler registered before Start: uasim registers one
//     Call handler that dispatches to the methods added with AddMethod;
//   - any other panic in a service handler is recovered and answered with
//     BadInternalError instead of killing the process;
//   - variable values live behind uasim's own lock (the server's Node.SetAttribute
//     is not synchronised), so Set from any goroutine is race-free.
//
// It also makes the server well-formed for generic clients (UaExpert,
// node-opcua), which plain gopcua is not:
//   - GetEndpoints and FindServers answer with every endpoint the server offers,
//     named by the URL the client asked about — linesim's servers sit behind
//     netsim proxies on other ports, and gopcua returns only endpoints whose URL
//     equals the requested one, i.e. none (discovery.go);
//   - Read and Browse of uasim's namespace come from uasim's own model: a
//     variable's DataType is the built-in type of its value (UInt32 is i=7, not
//     gopcua's i=267), ValueRank is -1 or 1, ArrayDimensions {} or {0},
//     AccessLevel says whether it has a WriteFunc; objects, variables and
//     methods sit under the server's Objects folder with BrowseNames in
//     namespace 1 (addrspace.go). A variable keeps the type of its initial
//     value: Set and client writes of another type are refused.
//
// Known limits of the server that uasim does not fix: Close takes up to ~10 s
// and leaves clients "connected" (uasim's Close does not wait for it; simulate
// disconnects with cmd/linesim/netsim), only SecurityPolicy None is offered,
// index ranges in Read and Write are refused, TranslateBrowsePathsToNodeIDs is
// unsupported, methods declare no InputArguments/OutputArguments, and a
// subscription delivers at most one value per monitored item per publishing
// interval (publish records atomically in one value, with a counter).
//
// Node ids are plain strings in the OPC UA text form: "ns=1;s=Printer.NextCode".
// Only cmd/linesim and its subpackages import uasim.
package uasim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/tracline/tracline/internal/netport"
)

// Config describes one simulated OPC UA server.
type Config struct {
	// Name is the application name the server reports.
	Name string `yaml:"name"`
	// NamespaceURI is the URI of the one namespace uasim creates (index 1).
	NamespaceURI string `yaml:"namespace_uri"`
	// Host to listen on; "" means 127.0.0.1.
	Host string `yaml:"host"`
	// Port to listen on; 0 picks a free port (see Server.Endpoint).
	Port int `yaml:"port"`
	// MinPublishingInterval is the smallest publishing interval granted to a
	// subscription; 0 means 1 ms (the smallest the server survives).
	MinPublishingInterval time.Duration `yaml:"min_publishing_interval"`
	// MaxPublishingInterval is the largest; 0 means 1 hour.
	MaxPublishingInterval time.Duration `yaml:"max_publishing_interval"`
}

// Validate reports what is wrong with the config.
func (c Config) Validate() error {
	var errs []error
	if c.NamespaceURI == "" {
		errs = append(errs, errors.New("uasim.namespace_uri: must not be empty"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("uasim.port: %d is not a TCP port (0..65535)", c.Port))
	}
	if c.MinPublishingInterval < 0 {
		errs = append(errs, fmt.Errorf("uasim.min_publishing_interval: %s is negative", c.MinPublishingInterval))
	}
	if c.MaxPublishingInterval < 0 {
		errs = append(errs, fmt.Errorf("uasim.max_publishing_interval: %s is negative", c.MaxPublishingInterval))
	}
	if c.MaxPublishingInterval > 0 && c.MaxPublishingInterval < c.MinPublishingInterval {
		errs = append(errs, fmt.Errorf("uasim.max_publishing_interval: %s is below min_publishing_interval %s",
			c.MaxPublishingInterval, c.MinPublishingInterval))
	}
	return errors.Join(errs...)
}

// Sentinel errors.
var (
	ErrStarted  = errors.New("uasim: server already started")
	ErrNotFound = errors.New("uasim: no such node")
	ErrExists   = errors.New("uasim: node already exists")
)

// WriteFunc is called when a client writes a variable. It gets the value as
// decoded by OPC UA (string, bool, int32, uint32, []string, ...). Returning
// an error rejects the write (the client gets BadTypeMismatch or, for a
// *StatusError, its code) and the value is not changed.
type WriteFunc func(v any) error

// MethodFunc answers a method call with output arguments. Input arguments are
// decoded Go values. Returning an error answers the call with
// BadInvalidArgument or, for a *StatusError, its code.
type MethodFunc func(args []any) ([]any, error)

// StatusError lets a WriteFunc or MethodFunc choose the OPC UA status code
// (as uint32, e.g. 0x80AB0000 BadInvalidArgument) the client sees.
type StatusError struct {
	Code uint32
	Msg  string
}

func (e *StatusError) Error() string { return fmt.Sprintf("status 0x%08X: %s", e.Code, e.Msg) }

// Server is one simulated OPC UA server.
type Server struct {
	cfg Config
	log *slog.Logger

	srv *server.Server
	ns  *server.NodeNameSpace

	mu      sync.Mutex
	vars    map[string]*Variable  // by node id string
	nodes   map[string]*node      // every node of the namespace, by node id string (see addrspace.go)
	top     []*node               // the nodes directly under the server's Objects folder
	methods map[string]MethodFunc // by method node id string
	started bool
	closed  bool
	cancel  context.CancelFunc
	port    int

	placeholders uint32 // see avoidSubscriptionIDReuse (touched only by the server's single service goroutine)
}

// Variable is one variable node whose value uasim owns.
type Variable struct {
	s       *Server
	nodeID  *ua.NodeID
	idStr   string
	onWrite WriteFunc
	typ     varType // declared by the initial value; Set and writes keep to it

	mu  sync.Mutex
	val *ua.DataValue
}

// New builds a server from config; it does not listen until Start.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Name == "" {
		cfg.Name = "linesim"
	}
	if cfg.MinPublishingInterval == 0 {
		cfg.MinPublishingInterval = time.Millisecond
	}
	if cfg.MaxPublishingInterval == 0 {
		cfg.MaxPublishingInterval = time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		vars:    map[string]*Variable{},
		nodes:   map[string]*node{},
		methods: map[string]MethodFunc{},
	}
	return s, nil
}

// NamespaceIndex is the index of uasim's namespace (always 1: the server has
// only namespace 0 and this one).
func (s *Server) NamespaceIndex() uint16 { return 1 }

// NodeID returns the node id string for a name in uasim's namespace.
func (s *Server) NodeID(name string) string {
	return ua.NewStringNodeID(s.NamespaceIndex(), name).String()
}

// build creates the gopcua server lazily, once the port is known.
func (s *Server) build(port int) {
	s.srv = server.New(
		server.EndPoint(s.cfg.Host, port),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.ServerName(s.cfg.Name),
		server.SetLogger(logAdapter{s.log}),
	)
	// uasim's nodes live in this namespace; clients find them under the
	// server's Objects folder (uasim's Browse puts them there, see addrspace.go).
	s.ns = server.NewNodeNameSpace(s.srv, s.cfg.NamespaceURI)
}

// AddObject adds an object node named name (node id "ns=1;s=<name>") under
// parent ("" = the server's Objects folder; else an object's node id or
// name). Clients browse it as a BaseObjectType instance organized by its
// parent, with the BrowseName name less its parent's name and a dot
// ("Dev.Head" under "Dev" is "Head"). Objects, variables and methods must be
// added before Start.
func (s *Server) AddObject(parent, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.addNodeLocked(parent, name, ua.NodeClassObject, "object")
	if err != nil {
		return "", err
	}
	s.ns.AddNode(s.gopcuaNode(n, nil))
	return n.id.String(), nil
}

// AddVariable adds a variable node named name (its node id is "ns=1;s=<name>")
// under parent ("" = the server's Objects folder) with an initial value. The
// initial value's type is the variable's DataType, ValueRank and
// ArrayDimensions for clients (uint32 → UInt32, []uint32 → UInt32[] with
// ArrayDimensions {0}, ...); Set and client writes must keep to it. With
// onWrite nil the variable is read-only for clients.
func (s *Server) AddVariable(parent, name string, initial any, onWrite WriteFunc) (*Variable, error) {
	dv, err := dataValue(initial)
	if err != nil {
		return nil, fmt.Errorf("variable %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.addNodeLocked(parent, name, ua.NodeClassVariable, "variable")
	if err != nil {
		return nil, err
	}
	v := &Variable{s: s, nodeID: n.id, idStr: n.id.String(), onWrite: onWrite, val: dv, typ: typeOf(dv.Value)}
	n.v = v
	s.ns.AddNode(s.gopcuaNode(n, func() *ua.DataValue { return v.dataValue() }))
	s.vars[v.idStr] = v
	return v, nil
}

// AddMethod registers a method named name (node id "ns=1;s=<name>") on the
// object parent ("" = the server's Objects folder). Must be called before Start.
func (s *Server) AddMethod(parent, name string, h MethodFunc) (string, error) {
	if h == nil {
		return "", fmt.Errorf("method %q: nil handler", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.addNodeLocked(parent, name, ua.NodeClassMethod, "method")
	if err != nil {
		return "", err
	}
	s.ns.AddNode(s.gopcuaNode(n, nil))
	s.methods[n.id.String()] = h
	return n.id.String(), nil
}

// addNodeLocked adds a node to uasim's model (see addrspace.go).
func (s *Server) addNodeLocked(parent, name string, class ua.NodeClass, what string) (*node, error) {
	if s.started {
		return nil, ErrStarted
	}
	if name == "" {
		return nil, fmt.Errorf("%s: empty name", what)
	}
	if err := s.ensureBuilt(); err != nil {
		return nil, err
	}
	p, err := s.parentLocked(parent)
	if err != nil {
		return nil, err
	}
	nid := ua.NewStringNodeID(s.NamespaceIndex(), name)
	if _, dup := s.nodes[nid.String()]; dup {
		return nil, fmt.Errorf("%s %q: %w", what, name, ErrExists)
	}
	siblings := s.top
	if p != nil {
		siblings = p.children
	}
	n := &node{id: nid, name: name, class: class, parent: p, ref: id.HasComponent,
		browse: browseNameFor(p, siblings, name)}
	if class == ua.NodeClassObject {
		n.ref = id.Organizes
	}
	if p != nil {
		p.children = append(p.children, n)
	} else {
		s.top = append(s.top, n)
	}
	s.nodes[nid.String()] = n
	return n, nil
}

// ensureBuilt creates the gopcua server on first use. The endpoint URL is
// fixed at server.New, so a free port is picked here when Port is 0.
func (s *Server) ensureBuilt() error {
	if s.srv != nil {
		return nil
	}
	port := s.cfg.Port
	if port == 0 {
		p, err := freePort(s.cfg.Host)
		if err != nil {
			return fmt.Errorf("uasim %s: %w", s.cfg.Name, err)
		}
		port = p
	}
	s.port = port
	s.build(port)
	return nil
}

// parentLocked finds an object by node id or name; "" is the Objects folder (nil).
func (s *Server) parentLocked(parent string) (*node, error) {
	if parent == "" {
		return nil, nil
	}
	p, ok := s.nodes[parent]
	if !ok {
		p, ok = s.nodes[ua.NewStringNodeID(s.NamespaceIndex(), parent).String()]
	}
	if !ok || p.class != ua.NodeClassObject {
		return nil, fmt.Errorf("parent object %q: %w", parent, ErrNotFound)
	}
	return p, nil
}

// Variable returns the variable with the given node id or name.
func (s *Server) Variable(nodeIDOrName string) (*Variable, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vars[nodeIDOrName]; ok {
		return v, true
	}
	v, ok := s.vars[ua.NewStringNodeID(s.NamespaceIndex(), nodeIDOrName).String()]
	return v, ok
}

// Start listens and serves until ctx ends or Close is called. With Port 0 a
// free port is picked; Endpoint and Addr report it.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	if s.closed {
		return errors.New("uasim: server closed")
	}
	if err := s.ensureBuilt(); err != nil {
		return err
	}
	port := s.port
	s.installHandlers()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := s.srv.Start(sctx); err != nil {
		cancel()
		return fmt.Errorf("uasim %s: start on %s:%d: %w", s.cfg.Name, s.cfg.Host, port, err)
	}
	s.cancel = cancel
	s.started = true
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-sctx.Done():
		}
	}()
	s.log.Info("opc ua server started", "name", s.cfg.Name, "endpoint", s.endpointLocked())
	return nil
}

// Endpoint is the opc.tcp URL clients connect to (valid after Start).
func (s *Server) Endpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpointLocked()
}

func (s *Server) endpointLocked() string {
	return "opc.tcp://" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.port))
}

// Addr is host:port (valid after Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.port))
}

// Close stops listening. The gopcua server's own shutdown can take ~10 s; Close
// does not wait for it (it finishes in the background) and returns at once.
// Safe to call more than once and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	cancel := s.cancel
	srv := s.srv
	s.mu.Unlock()
	if !started {
		return nil
	}
	cancel()
	go srv.Close()
	return nil
}

// NodeID returns the variable's node id string.
func (v *Variable) NodeID() string { return v.idStr }

// Get returns the current value.
func (v *Variable) Get() any {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.val == nil || v.val.Value == nil {
		return nil
	}
	return v.val.Value.Value()
}

// Set changes the value and notifies subscribers. The value must be of the
// variable's type, the type of its initial value (a plain int is converted
// to the variable's integer type when it fits); anything else is refused and
// the value stays.
func (v *Variable) Set(val any) error {
	val, err := v.typ.coerceInt(val)
	if err != nil {
		return fmt.Errorf("variable %s: %w", v.idStr, err)
	}
	dv, err := dataValue(val)
	if err != nil {
		return fmt.Errorf("variable %s: %w", v.idStr, err)
	}
	if !v.typ.accepts(dv.Value) {
		return fmt.Errorf("variable %s: value %T is a %s, the variable is a %s", v.idStr, val, typeOf(dv.Value), v.typ)
	}
	v.mu.Lock()
	v.val = dv
	v.mu.Unlock()
	v.s.notify(v.nodeID)
	return nil
}

// accessLevel is the AccessLevel (and UserAccessLevel) clients read.
func (v *Variable) accessLevel() byte {
	if v.onWrite != nil {
		return byte(ua.AccessLevelTypeCurrentRead | ua.AccessLevelTypeCurrentWrite)
	}
	return byte(ua.AccessLevelTypeCurrentRead)
}

func (v *Variable) dataValue() *ua.DataValue {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.val
}

func (s *Server) notify(nid *ua.NodeID) {
	s.mu.Lock()
	started := s.started && !s.closed
	srv := s.srv
	s.mu.Unlock()
	if !started || srv.MonitoredItemService == nil {
		return
	}
	srv.ChangeNotification(nid)
}

func dataValue(val any) (dv *ua.DataValue, err error) {
	defer func() {
		if r := recover(); r != nil {
			dv, err = nil, fmt.Errorf("value %T is not an OPC UA type: %v", val, r)
		}
	}()
	if i, ok := val.(int); ok {
		if i < math.MinInt32 || i > math.MaxInt32 {
			return nil, fmt.Errorf("value %d does not fit Int32", i)
		}
		val = int32(i)
	}
	vr, err := ua.NewVariant(val)
	if err != nil {
		return nil, fmt.Errorf("value %T is not an OPC UA type: %w", val, err)
	}
	return &ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value:           vr,
		SourceTimestamp: time.Now(),
		ServerTimestamp: time.Now(),
	}, nil
}

func freePort(host string) (int, error) { return netport.Free(host) }

// logAdapter turns the server's printf-style logging into slog records.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Debug(msg string, args ...any) { a.l.Debug(fmt.Sprintf(msg, args...)) }
func (a logAdapter) Info(msg string, args ...any)  { a.l.Debug(fmt.Sprintf(msg, args...)) }
func (a logAdapter) Warn(msg string, args ...any)  { a.l.Debug(fmt.Sprintf(msg, args...)) }
func (a logAdapter) Error(msg string, args ...any) { a.l.Debug(fmt.Sprintf(msg, args...)) }

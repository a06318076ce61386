package uasim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// installHandlers registers uasim's service handlers. gopcua's
// RegisterHandler keeps the first handler for a service, so ours, registered
// before Start, win over the defaults registered inside Start.
func (s *Server) installHandlers() {
	reg := func(typeID uint16, name string, h server.Handler) {
		s.srv.RegisterHandler(typeID, s.recoverer(name, h))
	}
	reg(id.GetEndpointsRequest_Encoding_DefaultBinary, "GetEndpoints", s.handleGetEndpoints)
	reg(id.FindServersRequest_Encoding_DefaultBinary, "FindServers", s.handleFindServers)
	reg(id.ReadRequest_Encoding_DefaultBinary, "Read", s.handleRead)
	reg(id.BrowseRequest_Encoding_DefaultBinary, "Browse", s.handleBrowse)
	reg(id.BrowseNextRequest_Encoding_DefaultBinary, "BrowseNext", s.handleBrowseNext)
	reg(id.WriteRequest_Encoding_DefaultBinary, "Write", s.handleWrite)
	reg(id.CallRequest_Encoding_DefaultBinary, "Call", s.handleCall)
	reg(id.CreateSubscriptionRequest_Encoding_DefaultBinary, "CreateSubscription", s.handleCreateSubscription)
	reg(id.DeleteMonitoredItemsRequest_Encoding_DefaultBinary, "DeleteMonitoredItems", s.handleDeleteMonitoredItems)
	reg(id.CreateMonitoredItemsRequest_Encoding_DefaultBinary, "CreateMonitoredItems", s.handleCreateMonitoredItems)
	reg(id.DeleteSubscriptionsRequest_Encoding_DefaultBinary, "DeleteSubscriptions", func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		if s.srv.Session(r.Header()) == nil {
			return nil, ua.StatusBadSessionIDInvalid
		}
		return s.srv.SubscriptionService.DeleteSubscriptions(sc, r, reqID)
	})
	reg(id.PublishRequest_Encoding_DefaultBinary, "Publish", func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		return s.srv.SubscriptionService.Publish(sc, r, reqID)
	})
}

// recoverer turns a panic inside a service handler into BadInternalError
// instead of a crashed simulator.
func (s *Server) recoverer(name string, h server.Handler) server.Handler {
	return func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (resp ua.Response, err error) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Warn("opc ua service handler panicked; answered BadInternalError",
					"server", s.cfg.Name, "service", name, "panic", fmt.Sprint(p))
				resp, err = nil, ua.StatusBadInternalError
			}
		}()
		if r == nil || r.Header() == nil {
			return nil, ua.StatusBadRequestHeaderInvalid
		}
		return h(sc, r, reqID)
	}
}

func respHeader(req *ua.RequestHeader) *ua.ResponseHeader {
	return &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      req.RequestHandle,
		ServiceResult:      ua.StatusOK,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}

// handleWrite answers Write itself: unknown namespaces and nodes are refused
// (the default handler dereferences nil), writes go through the variable's
// WriteFunc, and accepted values are stored under uasim's lock.
func (s *Server) handleWrite(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results := make([]ua.StatusCode, len(req.NodesToWrite))
	for i, w := range req.NodesToWrite {
		results[i] = s.writeOne(w)
	}
	return &ua.WriteResponse{
		ResponseHeader:  respHeader(req.RequestHeader),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func (s *Server) writeOne(w *ua.WriteValue) ua.StatusCode {
	if w == nil || w.NodeID == nil {
		return ua.StatusBadNodeIDInvalid
	}
	if w.NodeID.Namespace() != s.NamespaceIndex() {
		if int(w.NodeID.Namespace()) > int(s.NamespaceIndex()) {
			return ua.StatusBadNodeIDUnknown
		}
		return ua.StatusBadNotWritable
	}
	n := s.nodes[w.NodeID.String()]
	if n == nil {
		return ua.StatusBadNodeIDUnknown
	}
	v := n.v
	if v == nil || w.AttributeID != ua.AttributeIDValue || v.onWrite == nil {
		return ua.StatusBadNotWritable
	}
	if w.IndexRange != "" {
		return ua.StatusBadWriteNotSupported // whole values only
	}
	if w.Value == nil || w.Value.Value == nil || !v.typ.accepts(w.Value.Value) {
		return ua.StatusBadTypeMismatch
	}
	val := w.Value.Value.Value()
	if err := v.onWrite(val); err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			return ua.StatusCode(se.Code)
		}
		return ua.StatusBadTypeMismatch
	}
	if err := v.Set(val); err != nil {
		return ua.StatusBadTypeMismatch
	}
	return ua.StatusOK
}

// handleCall dispatches method calls to the MethodFuncs added with AddMethod.
func (s *Server) handleCall(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.CallRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results := make([]*ua.CallMethodResult, len(req.MethodsToCall))
	for i, m := range req.MethodsToCall {
		results[i] = s.callOne(m)
	}
	return &ua.CallResponse{
		ResponseHeader:  respHeader(req.RequestHeader),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func (s *Server) callOne(m *ua.CallMethodRequest) *ua.CallMethodResult {
	res := &ua.CallMethodResult{
		InputArgumentResults:         []ua.StatusCode{},
		InputArgumentDiagnosticInfos: []*ua.DiagnosticInfo{},
		OutputArguments:              []*ua.Variant{},
	}
	if m == nil || m.MethodID == nil {
		res.StatusCode = ua.StatusBadMethodInvalid
		return res
	}
	s.mu.Lock()
	h, ok := s.methods[m.MethodID.String()]
	s.mu.Unlock()
	if !ok {
		res.StatusCode = ua.StatusBadMethodInvalid
		return res
	}
	args := make([]any, len(m.InputArguments))
	for i, a := range m.InputArguments {
		if a != nil {
			args[i] = a.Value()
		}
	}
	out, err := h(args)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			res.StatusCode = ua.StatusCode(se.Code)
		} else {
			res.StatusCode = ua.StatusBadInvalidArgument
		}
		return res
	}
	for _, o := range out {
		dv, err := dataValue(o)
		if err != nil {
			res.StatusCode = ua.StatusBadInternalError
			res.OutputArguments = []*ua.Variant{}
			return res
		}
		res.OutputArguments = append(res.OutputArguments, dv.Value)
	}
	res.StatusCode = ua.StatusOK
	return res
}

// handleCreateSubscription revises the publishing interval into the
// configured range before the server sees it (below 1 ms its ticker panics,
// in a goroutine nobody can recover).
func (s *Server) handleCreateSubscription(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.CreateSubscriptionRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if s.srv.Session(req.RequestHeader) == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	req.RequestedPublishingInterval = s.revisePublishingInterval(req.RequestedPublishingInterval)
	if req.RequestedMaxKeepAliveCount == 0 {
		req.RequestedMaxKeepAliveCount = 10
	}
	if req.RequestedLifetimeCount < 3*req.RequestedMaxKeepAliveCount {
		req.RequestedLifetimeCount = 3 * req.RequestedMaxKeepAliveCount
	}
	s.avoidSubscriptionIDReuse()
	return s.srv.SubscriptionService.CreateSubscription(sc, req, reqID)
}

// avoidSubscriptionIDReuse works around gopcua v0.8.0 numbering a new
// subscription len(Subs)+1: after a deletion that id can belong to a live
// subscription, which the new one would silently replace (and the old one's
// end would later delete the new one's monitored items). Placeholder entries
// under ids counting down from MaxUint32 push len(Subs)+1 onto a free id.
// Placeholders have no session, so requests naming them are refused.
func (s *Server) avoidSubscriptionIDReuse() {
	svc := s.srv.SubscriptionService
	svc.Mu.Lock()
	defer svc.Mu.Unlock()
	for i := 0; i < 1024; i++ {
		if _, taken := svc.Subs[uint32(len(svc.Subs))+1]; !taken {
			return
		}
		s.placeholders++
		svc.Subs[math.MaxUint32-s.placeholders] = server.NewSubscription()
	}
}

// revisePublishingInterval clamps a requested interval (ms) into
// [MinPublishingInterval, MaxPublishingInterval]; NaN and infinities get the minimum.
func (s *Server) revisePublishingInterval(ms float64) float64 {
	lo := float64(s.cfg.MinPublishingInterval) / float64(time.Millisecond)
	hi := float64(s.cfg.MaxPublishingInterval) / float64(time.Millisecond)
	lo = math.Max(1, math.Ceil(lo))
	hi = math.Max(lo, math.Floor(hi))
	switch {
	case math.IsNaN(ms) || math.IsInf(ms, 0) || ms < lo:
		return lo
	case ms > hi:
		return hi
	default:
		return math.Floor(ms)
	}
}

// handleDeleteMonitoredItems checks ids and ownership first; the default
// handler dereferences nil for an unknown id.
func (s *Server) handleDeleteMonitoredItems(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.DeleteMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	sess := s.srv.Session(req.RequestHeader)
	if sess == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	mis := s.srv.MonitoredItemService
	results := make([]ua.StatusCode, len(req.MonitoredItemIDs))
	var del []uint32
	mis.Mu.Lock()
	for i, mid := range req.MonitoredItemIDs {
		item, ok := mis.Items[mid]
		switch {
		case !ok || item == nil || item.Sub == nil || item.Sub.Session == nil:
			results[i] = ua.StatusBadMonitoredItemIDInvalid
		case item.Sub.ID != req.SubscriptionID:
			results[i] = ua.StatusBadMonitoredItemIDInvalid
		case item.Sub.Session.AuthTokenID.String() != sess.AuthTokenID.String():
			results[i] = ua.StatusBadSessionIDInvalid
		default:
			results[i] = ua.StatusOK
			del = append(del, mid)
		}
	}
	mis.Mu.Unlock()
	for _, mid := range del {
		mis.DeleteMonitoredItem(mid)
	}
	return &ua.DeleteMonitoredItemsResponse{
		ResponseHeader:  respHeader(req.RequestHeader),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// handleCreateMonitoredItems refuses requests the default handler would
// dereference nil on (missing item, node id or parameters, unknown session).
func (s *Server) handleCreateMonitoredItems(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.CreateMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if s.srv.Session(req.RequestHeader) == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	s.srv.SubscriptionService.Mu.Lock()
	sub, subOK := s.srv.SubscriptionService.Subs[req.SubscriptionID]
	subOK = subOK && sub != nil && sub.Session != nil
	s.srv.SubscriptionService.Mu.Unlock()
	if !subOK {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	for _, it := range req.ItemsToCreate {
		if it == nil || it.ItemToMonitor == nil || it.ItemToMonitor.NodeID == nil || it.RequestedParameters == nil {
			return nil, ua.StatusBadMonitoredItemFilterInvalid
		}
	}
	return s.srv.MonitoredItemService.CreateMonitoredItems(sc, req, reqID)
}

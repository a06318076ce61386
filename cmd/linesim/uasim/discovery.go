package uasim

// Discovery behind a proxy. linesim's clients reach a uasim server through a
// netsim proxy on another port (the documented one, e.g. 127.0.0.1:4840), so
// the URL a client asks GetEndpoints about is never the URL the server
// listens on. gopcua v0.8.0 answers GetEndpoints with only the endpoints
// whose URL equals the requested one — none — and CreateSession's
// ServerEndpoints likewise, so a standard client (GetEndpoints → pick an
// endpoint → CreateSession → ActivateSession), UaExpert or node-opcua, finds
// nothing to connect to. uasim answers GetEndpoints and FindServers itself:
// every endpoint the server offers, named by the URL the client used (as
// the spec allows: the server "uses this information to determine what URLs
// to return"), so the client stays on the proxy.

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// maxURLLength is the spec's limit for an EndpointUrl.
const maxURLLength = 4096

// clientURL is the URL to name the server's endpoints by for a client that
// asked with requested: requested itself when it is a usable opc.tcp URL,
// otherwise the URL the server listens on.
func (s *Server) clientURL(requested string) string {
	u := strings.TrimSpace(requested)
	if u == "" || len(u) > maxURLLength || !strings.HasPrefix(strings.ToLower(u), "opc.tcp://") {
		return s.Endpoint()
	}
	pu, err := url.Parse(u)
	if err != nil || pu.User != nil || pu.Hostname() == "" || pu.RawQuery != "" || pu.Fragment != "" {
		return s.Endpoint()
	}
	if p := pu.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return s.Endpoint()
		}
	}
	return u
}

// pointEndpointsAt names the server's endpoints by u and returns copies of
// them. gopcua's own CreateSession returns the endpoints whose URL equals the
// one in the request, so renaming them here — on the server's single service
// goroutine, where CreateSession also runs — makes the session's
// ServerEndpoints match what this client got from GetEndpoints. (Clients
// that skip GetEndpoints get what gopcua finds for their URL, as before.)
func (s *Server) pointEndpointsAt(u string) []*ua.EndpointDescription {
	live := s.srv.Endpoints() // gopcua's own descriptions (the slice is a copy)
	out := make([]*ua.EndpointDescription, 0, len(live))
	for _, ep := range live {
		ep.EndpointURL = u
		if ep.Server != nil {
			ep.Server.ApplicationURI = s.applicationURI()
			ep.Server.DiscoveryURLs = []string{u}
		}
		c := *ep
		if ep.Server != nil {
			app := *ep.Server
			app.DiscoveryURLs = []string{u}
			c.Server = &app
		}
		out = append(out, &c)
	}
	return out
}

// applicationURI names the server application. gopcua takes it from a
// certificate, and a server without security has none; an empty one is
// not allowed, so uasim uses its namespace URI.
func (s *Server) applicationURI() string { return s.cfg.NamespaceURI }

// handleGetEndpoints answers GetEndpoints with every endpoint the server
// offers, named by the URL the client asked about.
func (s *Server) handleGetEndpoints(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.GetEndpointsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	eps := s.pointEndpointsAt(s.clientURL(req.EndpointURL))
	if len(req.ProfileURIs) > 0 {
		eps = slices.DeleteFunc(eps, func(ep *ua.EndpointDescription) bool {
			return !slices.Contains(req.ProfileURIs, ep.TransportProfileURI)
		})
	}
	return &ua.GetEndpointsResponse{ResponseHeader: respHeader(req.RequestHeader), Endpoints: eps}, nil
}

// handleFindServers answers FindServers with this server, its discovery URL
// being the one the client asked (so a client that discovers first, like
// UaExpert, stays on the proxy).
func (s *Server) handleFindServers(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.FindServersRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	servers := []*ua.ApplicationDescription{}
	if eps := s.pointEndpointsAt(s.clientURL(req.EndpointURL)); len(eps) > 0 && eps[0].Server != nil {
		if len(req.ServerURIs) == 0 || slices.Contains(req.ServerURIs, eps[0].Server.ApplicationURI) {
			servers = append(servers, eps[0].Server)
		}
	}
	return &ua.FindServersResponse{ResponseHeader: respHeader(req.RequestHeader), Servers: servers}, nil
}

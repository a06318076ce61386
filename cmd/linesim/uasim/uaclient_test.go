package uasim_test

// Tests with clients that are not gopcua's shortcut: node-opcua (an
// independent, strict client, run from testdata/uaclient) and gopcua's
// standard GetEndpoints → SelectEndpoint flow, both through a netsim proxy
// as linesim runs its servers.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/tracline/tracline/cmd/linesim/netsim"
	"github.com/tracline/tracline/cmd/linesim/uasim"
)

// device is a small server like linesim's devices: scalars of several
// types, a fixed-length array, read-only and writable nodes, a method.
type device struct {
	srv   *uasim.Server
	proxy *netsim.Proxy
	url   string // the proxy's opc.tcp URL: the one clients use
}

func startDevice(t *testing.T) *device {
	t.Helper()
	s, err := uasim.New(uasim.Config{Name: "uasim test device", NamespaceURI: "urn:tracline:test:dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	obj, err := s.AddObject("", "Dev")
	must(err)
	_, err = s.AddVariable(obj, "Dev.Counter", uint32(7), nil)
	must(err)
	_, err = s.AddVariable(obj, "Dev.Running", true, func(v any) error {
		if _, ok := v.(bool); !ok {
			return errors.New("want a Boolean")
		}
		return nil
	})
	must(err)
	_, err = s.AddVariable(obj, "Dev.Verdict", []uint32{0, 0, 0}, func(v any) error {
		if a, ok := v.([]uint32); !ok || len(a) != 3 {
			return &uasim.StatusError{Code: uint32(ua.StatusBadTypeMismatch), Msg: "want UInt32[3]"}
		}
		return nil
	})
	must(err)
	_, err = s.AddVariable(obj, "Dev.State", "running", nil)
	must(err)
	_, err = s.AddVariable(obj, "Dev.Tower", uint16(0), func(any) error { return nil })
	must(err)
	_, err = s.AddVariable(obj, "Dev.Level", 0.5, nil)
	must(err)
	sub, err := s.AddObject(obj, "Dev.Head")
	must(err)
	_, err = s.AddVariable(sub, "Dev.Head.Temp", int32(-3), nil)
	must(err)
	_, err = s.AddMethod(obj, "Dev.Add", func(args []any) ([]any, error) {
		if len(args) != 2 {
			return nil, errors.New("two args")
		}
		a, ok1 := args[0].(int32)
		b, ok2 := args[1].(int32)
		if !ok1 || !ok2 {
			return nil, errors.New("int32 args")
		}
		return []any{a + b}, nil
	})
	must(err)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	must(s.Start(ctx))
	t.Cleanup(func() { s.Close() })
	p, err := netsim.New(s.Addr(), nil)
	must(err)
	must(p.Start(ctx, ""))
	t.Cleanup(func() { p.Close() })
	return &device{srv: s, proxy: p, url: "opc.tcp://" + p.Addr()}
}

// uaclientDir is where the node-opcua client script and its node_modules live.
const uaclientDir = "testdata/uaclient"

// checkResult is what testdata/uaclient/check.js prints.
type checkResult struct {
	Servers []struct {
		ApplicationURI  string   `json:"applicationUri"`
		ApplicationName string   `json:"applicationName"`
		ApplicationType int      `json:"applicationType"`
		DiscoveryURLs   []string `json:"discoveryUrls"`
	} `json:"servers"`
	Endpoints []struct {
		EndpointURL         string `json:"endpointUrl"`
		SecurityMode        string `json:"securityMode"`
		SecurityPolicyURI   string `json:"securityPolicyUri"`
		TransportProfileURI string `json:"transportProfileUri"`
		ApplicationName     string `json:"applicationName"`
		UserTokens          []struct {
			PolicyID  string `json:"policyId"`
			TokenType int    `json:"tokenType"`
		} `json:"userTokens"`
	} `json:"endpoints"`
	Session *struct {
		Created         bool     `json:"created"`
		ServerEndpoints []string `json:"serverEndpoints"`
	} `json:"session"`
	Namespaces []string                         `json:"namespaces"`
	Reads      map[string]map[string]attrResult `json:"reads"`
	Browse     []browseRef                      `json:"browse"`
	Writes     []struct {
		NodeID string `json:"nodeId"`
		Status string `json:"status"`
	} `json:"writes"`
	Calls []struct {
		MethodID string `json:"methodId"`
		Status   string `json:"status"`
		Outputs  []any  `json:"outputs"`
	} `json:"calls"`
	Errors []string `json:"errors"`
}

type attrResult struct {
	Status      string `json:"status"`
	VariantType string `json:"variantType"`
	ArrayType   string `json:"arrayType"`
	Value       any    `json:"value"`
	Name        string `json:"name"`
}

type browseRef struct {
	Parent         string `json:"parent"`
	Path           string `json:"path"`
	NodeID         string `json:"nodeId"`
	ReferenceType  string `json:"referenceType"`
	BrowseName     string `json:"browseName"`
	DisplayName    string `json:"displayName"`
	NodeClass      string `json:"nodeClass"`
	TypeDefinition string `json:"typeDefinition"`
}

// runCheck runs check.js with spec and decodes what it printed.
func runCheck(t *testing.T, spec map[string]any) checkResult {
	t.Helper()
	if _, err := os.Stat(filepath.Join(uaclientDir, "node_modules", "node-opcua-client")); err != nil {
		t.Fatalf("node-opcua is not installed in cmd/linesim/uasim/%s (%v): run ./scripts/test, "+
			"which runs npm ci there, or npm ci in that directory", uaclientDir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) is not on PATH: %v; ./scripts/test needs Node.js and npm", err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	// A guard against a hung child, not a measurement.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.js", string(b))
	cmd.Dir = uaclientDir
	// node-opcua keeps its client certificate under the user's config dir:
	// give it a throwaway one.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("check.js: %v\nstdout: %s\nstderr: %s", err, stdout, stderr.String())
	}
	var res checkResult
	var line []byte
	for _, l := range bytes.Split(stdout, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(l, []byte("UACHECK ")); ok {
			line = rest
		}
	}
	if err := json.Unmarshal(line, &res); err != nil {
		t.Fatalf("check.js printed no JSON result: %v\nstdout: %s\nstderr: %s", err, stdout, stderr.String())
	}
	t.Logf("check.js: %s", line)
	return res
}

func TestNodeOPCUAClientThroughProxy(t *testing.T) {
	d := startDevice(t)
	ids := map[string]string{}
	for _, n := range []string{"Dev.Counter", "Dev.Running", "Dev.Verdict", "Dev.State", "Dev.Tower", "Dev.Level", "Dev.Head.Temp", "Dev", "Dev.Head", "Dev.Add"} {
		ids[n] = d.srv.NodeID(n)
	}
	res := runCheck(t, map[string]any{
		"endpoint": d.url,
		"read": []string{ids["Dev.Counter"], ids["Dev.Running"], ids["Dev.Verdict"], ids["Dev.State"], ids["Dev.Tower"],
			ids["Dev.Level"], ids["Dev.Head.Temp"], ids["Dev"], ids["Dev.Add"], "i=7"},
		"browse": map[string]any{"from": "i=85", "depth": 4},
		"write": []map[string]any{
			{"nodeId": ids["Dev.Running"], "dataType": "Boolean", "value": false},
			{"nodeId": ids["Dev.Tower"], "dataType": "UInt16", "value": 2},
			{"nodeId": ids["Dev.Verdict"], "dataType": "UInt32", "value": []int{5, 1, 0}, "array": true},
			{"nodeId": ids["Dev.Counter"], "dataType": "UInt32", "value": 9},
			{"nodeId": ids["Dev.Tower"], "dataType": "String", "value": "2"},
		},
		"call": []map[string]any{{
			"objectId": ids["Dev"], "methodId": ids["Dev.Add"],
			"args": []map[string]any{{"dataType": "Int32", "value": 2}, {"dataType": "Int32", "value": 3}},
		}},
	})
	if len(res.Errors) != 0 {
		t.Errorf("node-opcua reported errors: %q", res.Errors)
	}

	// GetEndpoints through the proxy: the proxy's URL, security None, anonymous.
	if len(res.Endpoints) == 0 {
		t.Fatalf("GetEndpoints on %s returned no endpoints", d.url)
	}
	var none bool
	for _, e := range res.Endpoints {
		if e.EndpointURL != d.url {
			t.Errorf("endpoint URL %q, want the proxy's %q (the one the client asked for)", e.EndpointURL, d.url)
		}
		if e.SecurityMode == "None" && e.SecurityPolicyURI == ua.SecurityPolicyURINone {
			none = true
			if !slices.ContainsFunc(e.UserTokens, func(u struct {
				PolicyID  string `json:"policyId"`
				TokenType int    `json:"tokenType"`
			}) bool {
				return u.TokenType == int(ua.UserTokenTypeAnonymous) && u.PolicyID != ""
			}) {
				t.Errorf("None endpoint offers no anonymous user token policy: %+v", e.UserTokens)
			}
		}
		if e.TransportProfileURI != "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary" {
			t.Errorf("transport profile %q", e.TransportProfileURI)
		}
		if e.ApplicationName != "uasim test device" {
			t.Errorf("application name %q", e.ApplicationName)
		}
	}
	if !none {
		t.Errorf("no SecurityPolicy None endpoint: %+v", res.Endpoints)
	}
	// FindServers (UaExpert asks it first): this server, discovered on the proxy.
	if len(res.Servers) != 1 || res.Servers[0].ApplicationURI != "urn:tracline:test:dev" ||
		res.Servers[0].ApplicationType != int(ua.ApplicationTypeServer) || !slices.Equal(res.Servers[0].DiscoveryURLs, []string{d.url}) {
		t.Errorf("FindServers = %+v, want this server with discovery URL %s", res.Servers, d.url)
	}
	if res.Session == nil || !res.Session.Created {
		t.Fatalf("no session through the proxy")
	}
	if !slices.Contains(res.Session.ServerEndpoints, d.url) {
		t.Errorf("CreateSession's serverEndpoints %q lack the URL the session was made on (%s)", res.Session.ServerEndpoints, d.url)
	}
	if len(res.Namespaces) != 2 || res.Namespaces[1] != "urn:tracline:test:dev" {
		t.Errorf("NamespaceArray = %q", res.Namespaces)
	}

	// Attributes: DataType is the built-in type of the value, ValueRank and
	// ArrayDimensions say scalar or array, access says who may write.
	type want struct {
		dataType  string
		rank      float64
		dims      []any
		access    float64
		value     any
		valueType string
	}
	wants := map[string]want{
		"Dev.Counter":   {"i=7", -1, []any{}, 1, 7.0, "UInt32"},
		"Dev.Running":   {"i=1", -1, []any{}, 3, true, "Boolean"},
		"Dev.Verdict":   {"i=7", 1, []any{0.0}, 3, []any{0.0, 0.0, 0.0}, "UInt32"},
		"Dev.State":     {"i=12", -1, []any{}, 1, "running", "String"},
		"Dev.Tower":     {"i=5", -1, []any{}, 3, 0.0, "UInt16"},
		"Dev.Level":     {"i=11", -1, []any{}, 1, 0.5, "Double"},
		"Dev.Head.Temp": {"i=6", -1, []any{}, 1, -3.0, "Int32"},
	}
	for name, w := range wants {
		got, ok := res.Reads[ids[name]]
		if !ok {
			t.Errorf("%s: not read", name)
			continue
		}
		check := func(attr string, wantV any) {
			t.Helper()
			a := got[attr]
			if a.Status != "Good" {
				t.Errorf("%s %s: status %s", name, attr, a.Status)
				return
			}
			if !jsonEqual(normID(a.Value), wantV) {
				t.Errorf("%s %s = %v (%s), want %v", name, attr, a.Value, a.VariantType, wantV)
			}
		}
		check("NodeClass", 2.0)
		check("DataType", w.dataType)
		check("ValueRank", w.rank)
		check("ArrayDimensions", w.dims)
		check("AccessLevel", w.access)
		check("UserAccessLevel", w.access)
		check("Historizing", false)
		check("WriteMask", 0.0)
		if got["DataType"].VariantType != "NodeId" {
			t.Errorf("%s DataType attribute is a %s, want a NodeId", name, got["DataType"].VariantType)
		}
		if a := got["Value"]; a.VariantType != w.valueType {
			t.Errorf("%s Value is a %s, want %s", name, a.VariantType, w.valueType)
		}
		if a := got["BrowseName"]; a.Value != "1:"+strings.TrimPrefix(strings.TrimPrefix(name, "Dev.Head."), "Dev.") {
			t.Errorf("%s BrowseName = %v", name, a.Value)
		}
	}
	// The written values: reads happen before writes in check.js, so only the
	// statuses tell here.
	wantWrites := []string{"Good", "Good", "Good", "BadNotWritable", "BadTypeMismatch"}
	if len(res.Writes) != len(wantWrites) {
		t.Fatalf("writes: %+v", res.Writes)
	}
	for i, w := range res.Writes {
		if w.Status != wantWrites[i] {
			t.Errorf("write %d (%s) = %s, want %s", i, w.NodeID, w.Status, wantWrites[i])
		}
	}
	if v, _ := d.srv.Variable("Dev.Verdict"); v == nil || !jsonEqual(v.Get(), []any{5.0, 1.0, 0.0}) {
		t.Errorf("Dev.Verdict after write = %v", v.Get())
	}
	if obj := res.Reads[ids["Dev"]]; obj["NodeClass"].Value != 1.0 || obj["DataType"].Status != "BadAttributeIdInvalid" {
		t.Errorf("object Dev: NodeClass %v, DataType status %s", obj["NodeClass"].Value, obj["DataType"].Status)
	}
	// A client names the DataType by reading the type node's BrowseName.
	if dt := res.Reads["i=7"]; dt["BrowseName"].Value != "0:UInt32" || dt["NodeClass"].Value != 64.0 {
		t.Errorf("DataType node i=7: BrowseName %v, NodeClass %v", dt["BrowseName"].Value, dt["NodeClass"].Value)
	}
	if m := res.Reads[ids["Dev.Add"]]; m["NodeClass"].Value != 4.0 {
		t.Errorf("method Dev.Add: NodeClass %v", m["NodeClass"].Value)
	}
	if len(res.Calls) != 1 || res.Calls[0].Status != "Good" || !jsonEqual(res.Calls[0].Outputs, []any{5.0}) {
		t.Errorf("call Dev.Add(2, 3) = %+v", res.Calls)
	}

	// Browse from Objects finds the device and its nodes by name.
	byPath := map[string]browseRef{}
	for _, r := range res.Browse {
		byPath[r.Path] = r
	}
	wantBrowse := []struct {
		path, nodeID, class, refType, typeDef string
	}{
		{"Dev", ids["Dev"], "Object", "i=35", "i=58"},
		{"Dev/Counter", ids["Dev.Counter"], "Variable", "i=47", "i=63"},
		{"Dev/Running", ids["Dev.Running"], "Variable", "i=47", "i=63"},
		{"Dev/Verdict", ids["Dev.Verdict"], "Variable", "i=47", "i=63"},
		{"Dev/State", ids["Dev.State"], "Variable", "i=47", "i=63"},
		{"Dev/Head", ids["Dev.Head"], "Object", "i=35", "i=58"},
		{"Dev/Head/Temp", ids["Dev.Head.Temp"], "Variable", "i=47", "i=63"},
		{"Dev/Add", ids["Dev.Add"], "Method", "i=47", "i=0"},
		{"Server", "i=2253", "Object", "i=35", "i=2004"}, // the standard nodes are still there
	}
	for _, w := range wantBrowse {
		r, ok := byPath[w.path]
		if !ok {
			t.Errorf("browse from Objects: %s not found", w.path)
			continue
		}
		if normID(r.NodeID) != w.nodeID || r.NodeClass != w.class || normID(r.ReferenceType) != w.refType || normID(r.TypeDefinition) != w.typeDef {
			t.Errorf("browse %s = %+v, want node %s class %s ref %s type %s", w.path, r, w.nodeID, w.class, w.refType, w.typeDef)
		}
		if name := w.path[strings.LastIndex(w.path, "/")+1:]; r.DisplayName != name {
			t.Errorf("browse %s: DisplayName %q", w.path, r.DisplayName)
		}
	}
}

// normID writes namespace 0 node ids as gopcua does ("ns=0;i=7" → "i=7").
func normID(v any) any {
	if s, ok := v.(string); ok {
		return strings.TrimPrefix(s, "ns=0;")
	}
	return v
}

// jsonEqual compares a decoded JSON value with want, through JSON.
func jsonEqual(got, want any) bool {
	a, err1 := json.Marshal(got)
	b, err2 := json.Marshal(want)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// TestGopcuaStandardFlowThroughProxy: GetEndpoints → SelectEndpoint →
// connect with the chosen endpoint, as plc/opcua does for secured links.
func TestGopcuaStandardFlowThroughProxy(t *testing.T) {
	d := startDevice(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, d.url)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := opcua.SelectEndpoint(eps, ua.SecurityPolicyURINone, ua.MessageSecurityModeNone)
	if err != nil {
		t.Fatalf("SelectEndpoint from %d endpoints: %v", len(eps), err)
	}
	if ep.EndpointURL != d.url {
		t.Fatalf("selected endpoint URL %q, want the proxy's %q", ep.EndpointURL, d.url)
	}
	c, err := opcua.NewClient(ep.EndpointURL, opcua.SecurityFromEndpoint(ep, ua.UserTokenTypeAnonymous), opcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect to %s: %v", ep.EndpointURL, err)
	}
	defer c.Close(context.Background())
	// FindServers and GetEndpoints filtered by transport profile, on the same channel.
	servers, err := c.FindServers(ctx)
	if err != nil || len(servers.Servers) != 1 || !slices.Equal(servers.Servers[0].DiscoveryURLs, []string{d.url}) ||
		servers.Servers[0].ApplicationURI != "urn:tracline:test:dev" {
		t.Errorf("FindServers: %v %+v", err, servers)
	}
	for _, tc := range []struct {
		profiles []string
		want     int
	}{
		{nil, 1},
		{[]string{"http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"}, 1},
		{[]string{"http://opcfoundation.org/UA-Profile/Transport/https-uabinary"}, 0},
	} {
		var res *ua.GetEndpointsResponse
		err := c.Send(ctx, &ua.GetEndpointsRequest{EndpointURL: d.url, ProfileURIs: tc.profiles}, func(r ua.Response) error {
			var ok bool
			if res, ok = r.(*ua.GetEndpointsResponse); !ok {
				return fmt.Errorf("got %T", r)
			}
			return nil
		})
		if err != nil {
			t.Errorf("GetEndpoints for profiles %q: %v", tc.profiles, err)
		} else if len(res.Endpoints) != tc.want {
			t.Errorf("GetEndpoints for profiles %q: %d endpoints, want %d", tc.profiles, len(res.Endpoints), tc.want)
		}
	}

	nid := ua.MustParseNodeID(d.srv.NodeID("Dev.Counter"))
	rr, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: nid, AttributeID: ua.AttributeIDValue},
		{NodeID: nid, AttributeID: ua.AttributeIDDataType},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Results[0].Value.Value() != uint32(7) {
		t.Errorf("Dev.Counter = %v", rr.Results[0].Value.Value())
	}
	if dt, ok := rr.Results[1].Value.Value().(*ua.NodeID); !ok || dt.IntID() != 7 || dt.Namespace() != 0 {
		t.Errorf("Dev.Counter DataType = %v (%T), want i=7", rr.Results[1].Value.Value(), rr.Results[1].Value.Value())
	}
}

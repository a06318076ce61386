package uasim

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

func TestVariableTypes(t *testing.T) {
	tests := []struct {
		initial  any
		dataType uint32
		rank     int32
		dims     []uint32
		str      string
	}{
		{true, id.Boolean, -1, []uint32{}, "Boolean"},
		{int8(1), id.SByte, -1, []uint32{}, "SByte"},
		{uint8(1), id.Byte, -1, []uint32{}, "Byte"},
		{int16(1), id.Int16, -1, []uint32{}, "Int16"},
		{uint16(1), id.UInt16, -1, []uint32{}, "Uint16"},
		{int32(1), id.Int32, -1, []uint32{}, "Int32"},
		{1, id.Int32, -1, []uint32{}, "Int32"}, // a plain int is an Int32
		{uint32(1), id.UInt32, -1, []uint32{}, "Uint32"},
		{int64(1), id.Int64, -1, []uint32{}, "Int64"},
		{uint64(1), id.UInt64, -1, []uint32{}, "Uint64"},
		{float32(1), id.Float, -1, []uint32{}, "Float"},
		{1.5, id.Double, -1, []uint32{}, "Double"},
		{"x", id.String, -1, []uint32{}, "String"},
		{time.Unix(0, 0), id.DateTime, -1, []uint32{}, "DateTime"},
		{[]byte{1, 2}, id.ByteString, -1, []uint32{}, "ByteString"}, // a ByteString, not a Byte[]
		{[]uint32{1, 2, 3}, id.UInt32, 1, []uint32{0}, "Uint32[]"},
		{[]string{}, id.String, 1, []uint32{0}, "String[]"},
		{[]string(nil), id.String, 1, []uint32{0}, "String[]"},
		{[][]int32{{1, 2}, {3, 4}}, id.Int32, 2, []uint32{0, 0}, "Int32[,]"},
		{nil, id.BaseDataType, -2, []uint32{}, "BaseDataType"},
	}
	for _, tc := range tests {
		t.Run(tc.str, func(t *testing.T) {
			dv, err := dataValue(tc.initial)
			if err != nil {
				t.Fatal(err)
			}
			typ := typeOf(dv.Value)
			if got := typ.dataType(); got.Namespace() != 0 || got.IntID() != tc.dataType {
				t.Errorf("DataType = %v, want i=%d", got, tc.dataType)
			}
			if got := typ.valueRank(); got != tc.rank {
				t.Errorf("ValueRank = %d, want %d", got, tc.rank)
			}
			if got := typ.arrayDimensions(); !slices.Equal(got, tc.dims) {
				t.Errorf("ArrayDimensions = %v, want %v", got, tc.dims)
			}
			if got := typ.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
		})
	}
}

func TestSetKeepsType(t *testing.T) {
	s, err := New(Config{NamespaceURI: "urn:x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u32, _ := s.AddVariable("", "U32", uint32(1), nil)
	u16, _ := s.AddVariable("", "U16", uint16(1), nil)
	strs, _ := s.AddVariable("", "Strs", []string{}, nil)
	anyV, _ := s.AddVariable("", "Any", nil, nil)
	tests := []struct {
		name string
		v    *Variable
		val  any
		want any // nil: refused
	}{
		{"same type", u32, uint32(5), uint32(5)},
		{"plain int converted", u32, 6, uint32(6)},
		{"negative int", u32, -1, nil},
		{"int too big for UInt16", u16, 70000, nil},
		{"int fits UInt16", u16, 3, uint16(3)},
		{"other integer type", u32, int32(5), nil},
		{"string for UInt32", u32, "5", nil},
		{"array for scalar", u32, []uint32{1}, nil},
		{"array", strs, []string{"a"}, []string{"a"}},
		{"nil array", strs, []string(nil), []string(nil)},
		{"scalar for array", strs, "a", nil},
		{"int for array", strs, 1, nil},
		{"anything for BaseDataType", anyV, "a", "a"},
		{"anything else for BaseDataType", anyV, []int32{1}, []int32{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.v.Get()
			err := tc.v.Set(tc.val)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("Set(%T %v) accepted", tc.val, tc.val)
				}
				if !strings.Contains(err.Error(), tc.v.NodeID()) {
					t.Errorf("error does not name the variable: %v", err)
				}
				if got := tc.v.Get(); !equalValue(got, before) {
					t.Errorf("value changed to %v by a refused Set", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.v.Get(); !equalValue(got, tc.want) {
				t.Errorf("Get() = %T %v, want %T %v", got, got, tc.want, tc.want)
			}
		})
	}
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case []string:
		y, ok := b.([]string)
		return ok && slices.Equal(x, y) && (x == nil) == (y == nil)
	case []int32:
		y, ok := b.([]int32)
		return ok && slices.Equal(x, y)
	}
	return a == b
}

func TestBrowseNameFor(t *testing.T) {
	dev := &node{name: "Dev", browse: "Dev"}
	tests := []struct {
		parent   *node
		siblings []*node
		name     string
		want     string
	}{
		{nil, nil, "PLC", "PLC"},
		{nil, nil, "PLC.Running", "PLC.Running"},
		{dev, nil, "Dev.Counter", "Counter"},
		{dev, nil, "Dev.Head.Temp", "Head.Temp"},
		{dev, nil, "Other.Counter", "Other.Counter"},
		{dev, nil, "Dev.", "Dev."},
		{dev, nil, "Devices.X", "Devices.X"},
		{dev, []*node{{browse: "Counter"}}, "Dev.Counter", "Dev.Counter"}, // a sibling is already "Counter"
	}
	for _, tc := range tests {
		if got := browseNameFor(tc.parent, tc.siblings, tc.name); got != tc.want {
			t.Errorf("browseNameFor(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestClientURL(t *testing.T) {
	s, err := New(Config{NamespaceURI: "urn:x", Port: 4999}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddObject("", "Dev"); err != nil { // builds the server: fixes the port
		t.Fatal(err)
	}
	def := "opc.tcp://127.0.0.1:4999"
	tests := []struct{ in, want string }{
		{"opc.tcp://127.0.0.1:4840", "opc.tcp://127.0.0.1:4840"},
		{"opc.tcp://linebox:4840/plc", "opc.tcp://linebox:4840/plc"},
		{"OPC.TCP://LINEBOX:4840", "OPC.TCP://LINEBOX:4840"}, // case kept: CreateSession compares exactly
		{"opc.tcp://[::1]:4840", "opc.tcp://[::1]:4840"},
		{"opc.tcp://host", "opc.tcp://host"},
		{"  opc.tcp://127.0.0.1:4840  ", "opc.tcp://127.0.0.1:4840"},
		{"", def},
		{"http://127.0.0.1:4840", def},
		{"opc.tcp://", def},
		{"opc.tcp://:4840", def},
		{"opc.tcp://h:99999", def},
		{"opc.tcp://h:port", def},
		{"opc.tcp://user@h:4840", def},
		{"opc.tcp://h:4840?x=1", def},
		{"opc.tcp://h:4840#x", def},
		{"opc.tcp://h:4840/" + strings.Repeat("x", maxURLLength), def},
		{"opc.tcp://h%zz:4840", def},
	}
	for _, tc := range tests {
		if got := s.clientURL(tc.in); got != tc.want {
			t.Errorf("clientURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzClientURL: the URL a client sends never panics uasim, and the answer
// is that URL or the server's own.
func FuzzClientURL(f *testing.F) {
	for _, seed := range []string{"", "opc.tcp://127.0.0.1:4840", "opc.tcp://[::1]:1/x", "opc.tcp://h:0", "opc.tcp://%", "opc.tcp://a@b"} {
		f.Add(seed)
	}
	s, err := New(Config{NamespaceURI: "urn:x", Port: 4999}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := s.clientURL(in)
		if got != strings.TrimSpace(in) && got != s.Endpoint() {
			t.Fatalf("clientURL(%q) = %q", in, got)
		}
		if !strings.HasPrefix(strings.ToLower(got), "opc.tcp://") {
			t.Fatalf("clientURL(%q) = %q: not opc.tcp", in, got)
		}
	})
}

// browse sends one BrowseDescription and returns its result.
func browse(t *testing.T, c *opcua.Client, bd *ua.BrowseDescription) *ua.BrowseResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if bd.ReferenceTypeID == nil {
		bd.ReferenceTypeID = ua.NewTwoByteNodeID(0)
	}
	resp, err := c.Browse(ctx, &ua.BrowseRequest{
		View:          &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
		NodesToBrowse: []*ua.BrowseDescription{bd},
	})
	if err != nil {
		t.Fatalf("browse %v: %v", bd.NodeID, err)
	}
	return resp.Results[0]
}

// refNames lists "referenceType>forward>target" for a result.
func refNames(res *ua.BrowseResult) []string {
	var out []string
	for _, r := range res.References {
		dir := "<"
		if r.IsForward {
			dir = ">"
		}
		out = append(out, r.ReferenceTypeID.String()+dir+r.NodeID.NodeID.String())
	}
	return out
}

func TestBrowse(t *testing.T) {
	s, _, _, _ := startServer(t)
	c := connect(t, s.Endpoint())
	dev := ua.MustParseNodeID(s.NodeID("Dev"))
	all := uint32(ua.BrowseResultMaskAll)
	hier := ua.NewNumericNodeID(0, id.HierarchicalReferences)
	tests := []struct {
		name string
		bd   *ua.BrowseDescription
		want []string
	}{
		{"object, forward, every reference",
			&ua.BrowseDescription{NodeID: dev, BrowseDirection: ua.BrowseDirectionForward, ResultMask: all},
			[]string{"i=40>i=58", "i=47>ns=1;s=Dev.Counter", "i=47>ns=1;s=Dev.Code", "i=47>ns=1;s=Dev.Add"}},
		{"object, inverse: the Objects folder",
			&ua.BrowseDescription{NodeID: dev, BrowseDirection: ua.BrowseDirectionInverse, ResultMask: all},
			[]string{"i=35<i=85"}},
		{"variable, both directions",
			&ua.BrowseDescription{NodeID: ua.MustParseNodeID(s.NodeID("Dev.Counter")), BrowseDirection: ua.BrowseDirectionBoth, ResultMask: all},
			[]string{"i=40>i=63", "i=47<ns=1;s=Dev"}},
		{"hierarchical with subtypes: children only",
			&ua.BrowseDescription{NodeID: dev, ReferenceTypeID: hier, IncludeSubtypes: true, ResultMask: all},
			[]string{"i=47>ns=1;s=Dev.Counter", "i=47>ns=1;s=Dev.Code", "i=47>ns=1;s=Dev.Add"}},
		{"hierarchical without subtypes: none",
			&ua.BrowseDescription{NodeID: dev, ReferenceTypeID: hier, ResultMask: all},
			nil},
		{"node class mask: variables",
			&ua.BrowseDescription{NodeID: dev, NodeClassMask: uint32(ua.NodeClassVariable), ResultMask: all},
			[]string{"i=47>ns=1;s=Dev.Counter", "i=47>ns=1;s=Dev.Code"}},
		{"method: its parent",
			&ua.BrowseDescription{NodeID: ua.MustParseNodeID(s.NodeID("Dev.Add")), BrowseDirection: ua.BrowseDirectionBoth, ResultMask: all},
			[]string{"i=47<ns=1;s=Dev"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := browse(t, c, tc.bd)
			if res.StatusCode != ua.StatusOK {
				t.Fatalf("status %v", res.StatusCode)
			}
			if got := refNames(res); !slices.Equal(got, tc.want) {
				t.Errorf("references %q, want %q", got, tc.want)
			}
		})
	}

	// What a generic client shows for a node.
	res := browse(t, c, &ua.BrowseDescription{NodeID: dev, ResultMask: all, NodeClassMask: uint32(ua.NodeClassVariable)})
	r := res.References[0]
	if r.BrowseName.NamespaceIndex != 1 || r.BrowseName.Name != "Counter" || r.DisplayName.Text != "Counter" ||
		r.NodeClass != ua.NodeClassVariable || r.TypeDefinition.NodeID.String() != "i=63" {
		t.Errorf("Dev.Counter reference = %+v %+v %+v", r.BrowseName, r.DisplayName, r)
	}
	// The result mask leaves out what was not asked for.
	res = browse(t, c, &ua.BrowseDescription{NodeID: dev, ResultMask: uint32(ua.BrowseResultMaskBrowseName), NodeClassMask: uint32(ua.NodeClassVariable)})
	r = res.References[0]
	if r.BrowseName.Name != "Counter" || r.DisplayName.Text != "" || r.NodeClass != 0 || r.ReferenceTypeID.IntID() != 0 || r.TypeDefinition.NodeID.IntID() != 0 {
		t.Errorf("browse name only: %+v %+v", r, r.DisplayName)
	}

	// Objects lists the standard Server object and uasim's top-level object.
	res = browse(t, c, &ua.BrowseDescription{NodeID: objectsFolder, ReferenceTypeID: hier, IncludeSubtypes: true, ResultMask: all})
	got := refNames(res)
	for _, want := range []string{"i=35>i=2253", "i=35>ns=1;s=Dev"} {
		if !slices.Contains(got, want) {
			t.Errorf("Objects: %q lacks %s", got, want)
		}
	}

	bad := []struct {
		name string
		bd   *ua.BrowseDescription
		want ua.StatusCode
	}{
		{"unknown node", &ua.BrowseDescription{NodeID: ua.MustParseNodeID("ns=1;s=Nope")}, ua.StatusBadNodeIDUnknown},
		{"unknown namespace", &ua.BrowseDescription{NodeID: ua.MustParseNodeID("ns=9;s=Dev")}, ua.StatusBadNodeIDUnknown},
		{"bad direction", &ua.BrowseDescription{NodeID: dev, BrowseDirection: 7}, ua.StatusBadBrowseDirectionInvalid},
		{"not a reference type", &ua.BrowseDescription{NodeID: dev, ReferenceTypeID: ua.NewNumericNodeID(0, id.UInt32)}, ua.StatusBadReferenceTypeIDInvalid},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if res := browse(t, c, tc.bd); res.StatusCode != tc.want {
				t.Fatalf("status %v, want %v", res.StatusCode, tc.want)
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Browse(ctx, &ua.BrowseRequest{
		View:          &ua.ViewDescription{ViewID: ua.NewNumericNodeID(1, 5)},
		NodesToBrowse: []*ua.BrowseDescription{{NodeID: dev, ReferenceTypeID: ua.NewTwoByteNodeID(0)}},
	})
	if !errors.Is(err, ua.StatusBadViewIDUnknown) {
		t.Errorf("browse in a view: %v", err)
	}
	next, err := c.BrowseNext(ctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{{1, 2}}})
	if err != nil || len(next.Results) != 1 || next.Results[0].StatusCode != ua.StatusBadContinuationPointInvalid {
		t.Errorf("BrowseNext with a made-up continuation point: %v %+v", err, next)
	}
}

func TestReadAttributes(t *testing.T) {
	s, ro, rw, _ := startServer(t)
	c := connect(t, s.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func(ttr ua.TimestampsToReturn, rvs ...*ua.ReadValueID) []*ua.DataValue {
		t.Helper()
		resp, err := c.Read(ctx, &ua.ReadRequest{TimestampsToReturn: ttr, NodesToRead: rvs})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Results
	}
	ron := ua.MustParseNodeID(ro.NodeID())
	rwn := ua.MustParseNodeID(rw.NodeID())
	obj := ua.MustParseNodeID(s.NodeID("Dev"))
	meth := ua.MustParseNodeID(s.NodeID("Dev.Add"))
	tests := []struct {
		name string
		rv   *ua.ReadValueID
		want any // a ua.StatusCode for a bad result
	}{
		{"DataType", &ua.ReadValueID{NodeID: ron, AttributeID: ua.AttributeIDDataType}, ua.NewNumericNodeID(0, id.UInt32)},
		{"DataType string", &ua.ReadValueID{NodeID: rwn, AttributeID: ua.AttributeIDDataType}, ua.NewNumericNodeID(0, id.String)},
		{"ValueRank", &ua.ReadValueID{NodeID: ron, AttributeID: ua.AttributeIDValueRank}, int32(-1)},
		{"AccessLevel read-only", &ua.ReadValueID{NodeID: ron, AttributeID: ua.AttributeIDAccessLevel}, byte(1)},
		{"UserAccessLevel writable", &ua.ReadValueID{NodeID: rwn, AttributeID: ua.AttributeIDUserAccessLevel}, byte(3)},
		{"NodeClass object", &ua.ReadValueID{NodeID: obj, AttributeID: ua.AttributeIDNodeClass}, int32(ua.NodeClassObject)},
		{"EventNotifier", &ua.ReadValueID{NodeID: obj, AttributeID: ua.AttributeIDEventNotifier}, byte(0)},
		{"Executable", &ua.ReadValueID{NodeID: meth, AttributeID: ua.AttributeIDExecutable}, true},
		{"NodeId", &ua.ReadValueID{NodeID: ron, AttributeID: ua.AttributeIDNodeID}, ron},
		{"object has no value", &ua.ReadValueID{NodeID: obj, AttributeID: ua.AttributeIDValue}, ua.StatusBadAttributeIDInvalid},
		{"variable has no EventNotifier", &ua.ReadValueID{NodeID: ron, AttributeID: ua.AttributeIDEventNotifier}, ua.StatusBadAttributeIDInvalid},
		{"unknown node", &ua.ReadValueID{NodeID: ua.MustParseNodeID("ns=1;s=Nope"), AttributeID: ua.AttributeIDValue}, ua.StatusBadNodeIDUnknown},
		{"unknown namespace", &ua.ReadValueID{NodeID: ua.MustParseNodeID("ns=4;s=Dev"), AttributeID: ua.AttributeIDValue}, ua.StatusBadNodeIDUnknown},
		{"index range", &ua.ReadValueID{NodeID: ron, AttributeID: ua.AttributeIDValue, IndexRange: "0:1"}, ua.StatusBadIndexRangeInvalid},
		{"data encoding", &ua.ReadValueID{NodeID: ron, AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{Name: "Default Binary"}}, ua.StatusBadDataEncodingInvalid},
		{"bad attribute id", &ua.ReadValueID{NodeID: ron, AttributeID: 99}, ua.StatusBadAttributeIDInvalid},
		{"namespace 0 object has no DataType", &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, id.RootFolder), AttributeID: ua.AttributeIDDataType}, ua.StatusBadAttributeIDInvalid},
		{"namespace 0 DataType node", &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, id.UInt32), AttributeID: ua.AttributeIDBrowseName}, &ua.QualifiedName{Name: "UInt32"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dv := read(ua.TimestampsToReturnBoth, tc.rv)[0]
			if code, bad := tc.want.(ua.StatusCode); bad {
				if dv.Status != code {
					t.Fatalf("status %v, want %v", dv.Status, code)
				}
				return
			}
			if dv.Status != ua.StatusOK {
				t.Fatalf("status %v", dv.Status)
			}
			got := dv.Value.Value()
			if q, ok := tc.want.(*ua.QualifiedName); ok {
				if g, ok := got.(*ua.QualifiedName); !ok || *g != *q {
					t.Fatalf("got %T %v, want %v", got, got, q)
				}
				return
			}
			if n, ok := tc.want.(*ua.NodeID); ok {
				if g, ok := got.(*ua.NodeID); !ok || g.String() != n.String() {
					t.Fatalf("got %T %v, want %v", got, got, n)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %T %v, want %T %v", got, got, tc.want, tc.want)
			}
		})
	}

	// Timestamps as asked (for the Value).
	val := &ua.ReadValueID{NodeID: ron, AttributeID: ua.AttributeIDValue}
	for _, tc := range []struct {
		ttr            ua.TimestampsToReturn
		source, server bool
	}{
		{ua.TimestampsToReturnNeither, false, false},
		{ua.TimestampsToReturnSource, true, false},
		{ua.TimestampsToReturnServer, false, true},
		{ua.TimestampsToReturnBoth, true, true},
	} {
		dv := read(tc.ttr, val)[0]
		if dv.Has(ua.DataValueSourceTimestamp) != tc.source || dv.Has(ua.DataValueServerTimestamp) != tc.server {
			t.Errorf("%v: mask %08b", tc.ttr, dv.EncodingMask)
		}
	}
	if _, err := c.Read(ctx, &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnInvalid, NodesToRead: []*ua.ReadValueID{val}}); !errors.Is(err, ua.StatusBadTimestampsToReturnInvalid) {
		t.Errorf("invalid TimestampsToReturn: %v", err)
	}
	if _, err := c.Read(ctx, &ua.ReadRequest{MaxAge: -1, NodesToRead: []*ua.ReadValueID{val}}); !errors.Is(err, ua.StatusBadMaxAgeInvalid) {
		t.Errorf("negative MaxAge: %v", err)
	}
}

func TestWriteChecksType(t *testing.T) {
	s, err := New(Config{Name: "test", NamespaceURI: "urn:tracline:test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	obj, _ := s.AddObject("", "Dev")
	v, err := s.AddVariable(obj, "Dev.Verdict", []uint32{0, 0, 0}, func(any) error { calls++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := connect(t, s.Endpoint())
	tests := []struct {
		name string
		w    *ua.WriteValue
		want ua.StatusCode
	}{
		{"accepted", &ua.WriteValue{NodeID: ua.MustParseNodeID(v.NodeID()), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant([]uint32{1, 2, 0})}}, ua.StatusOK},
		{"Int32[] for UInt32[]", &ua.WriteValue{NodeID: ua.MustParseNodeID(v.NodeID()), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant([]int32{1, 2, 0})}}, ua.StatusBadTypeMismatch},
		{"scalar for array", &ua.WriteValue{NodeID: ua.MustParseNodeID(v.NodeID()), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(uint32(1))}}, ua.StatusBadTypeMismatch},
		{"index range", &ua.WriteValue{NodeID: ua.MustParseNodeID(v.NodeID()), AttributeID: ua.AttributeIDValue, IndexRange: "1",
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant([]uint32{1})}}, ua.StatusBadWriteNotSupported},
		{"DisplayName", &ua.WriteValue{NodeID: ua.MustParseNodeID(v.NodeID()), AttributeID: ua.AttributeIDDisplayName,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(localizedText("x"))}}, ua.StatusBadNotWritable},
		{"an object", &ua.WriteValue{NodeID: ua.MustParseNodeID(obj), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(uint32(1))}}, ua.StatusBadNotWritable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{tc.w}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Results[0] != tc.want {
				t.Fatalf("status %v, want %v", resp.Results[0], tc.want)
			}
		})
	}
	if calls != 1 {
		t.Errorf("the WriteFunc saw %d writes, want only the accepted one", calls)
	}
	if got, ok := v.Get().([]uint32); !ok || !slices.Equal(got, []uint32{1, 2, 0}) {
		t.Errorf("value = %v", v.Get())
	}
}

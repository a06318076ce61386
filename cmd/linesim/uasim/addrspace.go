package uasim

// uasim's namespace as clients see it. gopcua v0.8.0's own nodes describe
// themselves badly to a generic client (UaExpert, node-opcua): every
// variable's DataType reads i=267 (the "VariableNode" id, and as an
// ExpandedNodeId where a NodeId is due) because gopcua stores the node's type
// definition in the DataType attribute; ValueRank and ArrayDimensions are
// missing; BrowseNames sit in namespace 0; and Browse reports that same i=267
// as every variable's type definition. So uasim keeps its own small model of
// its namespace (objects, variables, methods and who contains whom) and
// answers Read and Browse for it; namespace 0 (the standard nodes) is still
// gopcua's. The gopcua nodes stay, mirroring the model, because the
// subscription code reads values and attributes through them.

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/uasc"

	"github.com/gopcua/opcua/ua"
)

// node is one node of uasim's namespace. The model is built before Start and
// never changes after it, so handlers read it without a lock.
type node struct {
	id       *ua.NodeID
	name     string       // the name given to Add*: the node id's string part
	browse   string       // BrowseName (namespace 1) and DisplayName
	class    ua.NodeClass // Object, Variable or Method
	parent   *node        // nil: the server's Objects folder (i=85)
	ref      uint32       // reference type from the parent: Organizes or HasComponent
	children []*node
	v        *Variable // variables only
}

// varType is a variable's declared type: its built-in data type and rank,
// taken from the initial value.
type varType struct {
	builtin ua.TypeID // 1..25; Null for a variable that starts without a value
	rank    int32     // -1 scalar, 1 one-dimensional array, n: n dimensions
}

func typeOf(vr *ua.Variant) varType {
	t := varType{builtin: vr.Type(), rank: -1}
	if vr.Has(ua.VariantArrayValues) {
		t.rank = 1
		if vr.Has(ua.VariantArrayDimensions) && len(vr.ArrayDimensions()) > 1 {
			t.rank = int32(len(vr.ArrayDimensions()))
		}
	}
	return t
}

// any reports whether the variable takes values of every type (it was
// created without a value, or with values inside Variants).
func (t varType) any() bool { return t.builtin == ua.TypeIDNull || t.builtin == ua.TypeIDVariant }

// dataType is the NodeId of the DataType attribute: the built-in types are
// i=1..25 in namespace 0; an ExtensionObject is a Structure (i=22), a value
// of any type BaseDataType (i=24).
func (t varType) dataType() *ua.NodeID {
	switch {
	case t.any():
		return ua.NewNumericNodeID(0, id.BaseDataType)
	case t.builtin == ua.TypeIDExtensionObject:
		return ua.NewNumericNodeID(0, id.Structure)
	default:
		return ua.NewNumericNodeID(0, uint32(t.builtin))
	}
}

func (t varType) valueRank() int32 {
	if t.builtin == ua.TypeIDNull {
		return -2 // Any: scalar or array
	}
	return t.rank
}

// arrayDimensions: one 0 ("length not fixed") per dimension; empty for a scalar.
func (t varType) arrayDimensions() []uint32 {
	if t.rank < 1 {
		return []uint32{}
	}
	return make([]uint32, t.rank)
}

func (t varType) String() string {
	s := strings.TrimPrefix(t.builtin.String(), "TypeID")
	if t.any() {
		s = "BaseDataType"
	}
	switch {
	case t.rank == 1:
		s += "[]"
	case t.rank > 1:
		s += "[" + strings.Repeat(",", int(t.rank)-1) + "]"
	}
	return s
}

// accepts reports whether a value fits the declared type.
func (t varType) accepts(vr *ua.Variant) bool {
	if t.any() {
		return true
	}
	if vr == nil {
		return false
	}
	return typeOf(vr) == t
}

// coerceInt converts a plain int to the declared integer type when it fits
// (so Set(5) works on a UInt32 variable); other values pass unchanged.
func (t varType) coerceInt(val any) (any, error) {
	i, ok := val.(int)
	if !ok || t.rank != -1 {
		return val, nil
	}
	fits := func(lo, hi int64) bool { return int64(i) >= lo && int64(i) <= hi }
	var out any
	switch t.builtin {
	case ua.TypeIDSByte:
		out, ok = int8(i), fits(math.MinInt8, math.MaxInt8)
	case ua.TypeIDByte:
		out, ok = uint8(i), fits(0, math.MaxUint8)
	case ua.TypeIDInt16:
		out, ok = int16(i), fits(math.MinInt16, math.MaxInt16)
	case ua.TypeIDUint16:
		out, ok = uint16(i), fits(0, math.MaxUint16)
	case ua.TypeIDInt32:
		out, ok = int32(i), fits(math.MinInt32, math.MaxInt32)
	case ua.TypeIDUint32:
		out, ok = uint32(i), fits(0, math.MaxUint32)
	case ua.TypeIDInt64:
		out, ok = int64(i), true
	case ua.TypeIDUint64:
		out, ok = uint64(i), i >= 0
	default:
		return val, nil // not an integer variable: the type check says no
	}
	if !ok {
		return nil, fmt.Errorf("value %d does not fit %s", i, t)
	}
	return out, nil
}

// Standard nodes that uasim's references point at.
var (
	objectsFolder        = ua.NewNumericNodeID(0, id.ObjectsFolder)
	baseObjectType       = ua.NewNumericNodeID(0, id.BaseObjectType)
	baseDataVariableType = ua.NewNumericNodeID(0, id.BaseDataVariableType)
	folderType           = ua.NewNumericNodeID(0, id.FolderType)
)

// refAncestors lists, for the reference types uasim uses, the types they are
// subtypes of (fixed by OPC UA Part 5), for Browse with IncludeSubtypes.
var refAncestors = map[uint32][]uint32{
	id.HasComponent:      {id.Aggregates, id.HasChild, id.HierarchicalReferences, id.References},
	id.Organizes:         {id.HierarchicalReferences, id.References},
	id.HasTypeDefinition: {id.NonHierarchicalReferences, id.References},
}

// typeDefinition is what a node of uasim's is an instance of.
func (n *node) typeDefinition() *ua.NodeID {
	switch n.class {
	case ua.NodeClassObject:
		return baseObjectType
	case ua.NodeClassVariable:
		return baseDataVariableType
	default:
		return nil // methods have none
	}
}

func qualifiedName(ns uint16, name string) *ua.QualifiedName {
	return &ua.QualifiedName{NamespaceIndex: ns, Name: name}
}

func localizedText(text string) *ua.LocalizedText {
	lt := &ua.LocalizedText{Text: text}
	lt.UpdateMask()
	return lt
}

// attribute answers Read of any attribute but Value for a node of uasim's.
func (s *Server) attribute(n *node, attr ua.AttributeID) (*ua.Variant, ua.StatusCode) {
	v := func(x any) (*ua.Variant, ua.StatusCode) { return ua.MustVariant(x), ua.StatusOK }
	switch attr {
	case ua.AttributeIDNodeID:
		return v(n.id)
	case ua.AttributeIDNodeClass:
		return v(int32(n.class))
	case ua.AttributeIDBrowseName:
		return v(qualifiedName(s.NamespaceIndex(), n.browse))
	case ua.AttributeIDDisplayName:
		return v(localizedText(n.browse))
	case ua.AttributeIDDescription:
		return v(localizedText(""))
	case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
		return v(uint32(0)) // no attribute but a variable's Value is writable
	}
	switch n.class {
	case ua.NodeClassObject:
		if attr == ua.AttributeIDEventNotifier {
			return v(byte(0))
		}
	case ua.NodeClassMethod:
		if attr == ua.AttributeIDExecutable || attr == ua.AttributeIDUserExecutable {
			return v(true)
		}
	case ua.NodeClassVariable:
		t := n.v.typ
		switch attr {
		case ua.AttributeIDDataType:
			return v(t.dataType())
		case ua.AttributeIDValueRank:
			return v(t.valueRank())
		case ua.AttributeIDArrayDimensions:
			return v(t.arrayDimensions())
		case ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel:
			return v(n.v.accessLevel())
		case ua.AttributeIDMinimumSamplingInterval:
			return v(float64(0)) // changes are reported as they happen
		case ua.AttributeIDHistorizing:
			return v(false)
		}
	}
	return nil, ua.StatusBadAttributeIDInvalid
}

// mirrorAttributes are the attributes copied onto the gopcua node, so that a
// subscription to one of them sees what Read sees. DataType is left out: gopcua
// reads that attribute as an ExpandedNodeId (its type definition) and would
// panic on a NodeId.
var mirrorAttributes = []ua.AttributeID{
	ua.AttributeIDNodeClass, ua.AttributeIDBrowseName, ua.AttributeIDDisplayName, ua.AttributeIDDescription,
	ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask, ua.AttributeIDEventNotifier,
	ua.AttributeIDValueRank, ua.AttributeIDArrayDimensions, ua.AttributeIDAccessLevel,
	ua.AttributeIDUserAccessLevel, ua.AttributeIDMinimumSamplingInterval, ua.AttributeIDHistorizing,
	ua.AttributeIDExecutable, ua.AttributeIDUserExecutable,
}

// gopcuaNode builds the gopcua node that mirrors n (values come from val).
func (s *Server) gopcuaNode(n *node, val server.ValueFunc) *server.Node {
	attrs := server.Attributes{}
	for _, a := range mirrorAttributes {
		if vr, sc := s.attribute(n, a); sc == ua.StatusOK {
			attrs[a] = &ua.DataValue{EncodingMask: ua.DataValueValue, Value: vr}
		}
	}
	return server.NewNode(n.id, attrs, nil, val)
}

// browseNameFor picks a node's BrowseName: the name without its parent's
// name in front ("PLC.Running" under "PLC" is "Running"), unless that would
// repeat a sibling's; then the whole name.
func browseNameFor(parent *node, siblings []*node, name string) string {
	short := name
	if parent != nil {
		if rest, ok := strings.CutPrefix(name, parent.name+"."); ok && rest != "" {
			short = rest
		}
	}
	for _, sib := range siblings {
		if sib.browse == short {
			return name
		}
	}
	return short
}

// handleRead answers Read: uasim's namespace from its model, namespace 0 from
// gopcua's standard nodes.
func (s *Server) handleRead(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.ReadRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	switch {
	case len(req.NodesToRead) == 0:
		return nil, ua.StatusBadNothingToDo
	case req.MaxAge < 0:
		return nil, ua.StatusBadMaxAgeInvalid
	case req.TimestampsToReturn >= ua.TimestampsToReturnInvalid:
		return nil, ua.StatusBadTimestampsToReturnInvalid
	}
	results := make([]*ua.DataValue, len(req.NodesToRead))
	for i, rv := range req.NodesToRead {
		results[i] = s.readOne(rv, req.TimestampsToReturn)
	}
	return &ua.ReadResponse{
		ResponseHeader:  respHeader(req.RequestHeader),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func badValue(code ua.StatusCode) *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: code}
}

func (s *Server) readOne(rv *ua.ReadValueID, ttr ua.TimestampsToReturn) *ua.DataValue {
	if rv == nil || rv.NodeID == nil {
		return badValue(ua.StatusBadNodeIDInvalid)
	}
	if rv.DataEncoding != nil && rv.DataEncoding.Name != "" {
		return badValue(ua.StatusBadDataEncodingInvalid) // no structures here
	}
	switch rv.NodeID.Namespace() {
	case s.NamespaceIndex():
		n := s.nodes[rv.NodeID.String()]
		if n == nil {
			return badValue(ua.StatusBadNodeIDUnknown)
		}
		if rv.IndexRange != "" {
			// Index ranges are not supported; a whole value is never
			// passed off as the part asked for.
			return badValue(ua.StatusBadIndexRangeInvalid)
		}
		if rv.AttributeID == ua.AttributeIDValue {
			if n.v == nil {
				return badValue(ua.StatusBadAttributeIDInvalid)
			}
			return withTimestamps(n.v.dataValue(), ttr)
		}
		vr, code := s.attribute(n, rv.AttributeID)
		if code != ua.StatusOK {
			return badValue(code)
		}
		return &ua.DataValue{EncodingMask: ua.DataValueValue, Value: vr}
	case 0:
		ns, err := s.srv.Namespace(0)
		if err != nil {
			return badValue(ua.StatusBadNodeIDUnknown)
		}
		dv := ns.Attribute(rv.NodeID, rv.AttributeID)
		if dv == nil {
			return badValue(ua.StatusBadNodeIDUnknown)
		}
		// gopcua gives a few standard objects (Root, for one) a "DataType"
		// that is really a type definition, as an ExpandedNodeId: objects
		// have no DataType attribute.
		if rv.AttributeID == ua.AttributeIDDataType && dv.Value != nil {
			if _, ok := dv.Value.Value().(*ua.ExpandedNodeID); ok {
				return badValue(ua.StatusBadAttributeIDInvalid)
			}
		}
		return dv
	default:
		return badValue(ua.StatusBadNodeIDUnknown)
	}
}

// withTimestamps returns a copy of a variable's value with the timestamps
// the client asked for (the server timestamp is now).
func withTimestamps(dv *ua.DataValue, ttr ua.TimestampsToReturn) *ua.DataValue {
	if dv == nil {
		return badValue(ua.StatusBadWaitingForInitialData)
	}
	out := *dv
	out.EncodingMask &^= ua.DataValueSourceTimestamp | ua.DataValueSourcePicoseconds |
		ua.DataValueServerTimestamp | ua.DataValueServerPicoseconds
	out.SourceTimestamp, out.ServerTimestamp = time.Time{}, time.Time{}
	if ttr == ua.TimestampsToReturnSource || ttr == ua.TimestampsToReturnBoth {
		out.EncodingMask |= ua.DataValueSourceTimestamp
		out.SourceTimestamp = dv.SourceTimestamp
	}
	if ttr == ua.TimestampsToReturnServer || ttr == ua.TimestampsToReturnBoth {
		out.EncodingMask |= ua.DataValueServerTimestamp
		out.ServerTimestamp = time.Now()
	}
	return &out
}

// handleBrowse answers Browse: uasim's nodes from its model; namespace 0
// from gopcua's standard nodes, with uasim's top-level nodes added under the
// Objects folder.
func (s *Server) handleBrowse(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.BrowseRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if req.View != nil && !isNull(req.View.ViewID) {
		return nil, ua.StatusBadViewIDUnknown // this server has no views
	}
	if len(req.NodesToBrowse) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	results := make([]*ua.BrowseResult, len(req.NodesToBrowse))
	for i, bd := range req.NodesToBrowse {
		results[i] = s.browseOne(bd)
		if results[i].References == nil {
			results[i].References = []*ua.ReferenceDescription{}
		}
	}
	return &ua.BrowseResponse{
		ResponseHeader:  respHeader(req.RequestHeader),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func isNull(n *ua.NodeID) bool { return n == nil || n.String() == "i=0" }

// ref is one reference of a node of uasim's, before the browse filter.
type ref struct {
	typ     uint32
	forward bool
	target  *ua.NodeID
	name    *ua.QualifiedName
	display *ua.LocalizedText
	class   ua.NodeClass
	typeDef *ua.NodeID // nil: none
}

// refTo describes a reference to a node of uasim's.
func (s *Server) refTo(typ uint32, forward bool, n *node) ref {
	return ref{typ: typ, forward: forward, target: n.id, name: qualifiedName(s.NamespaceIndex(), n.browse),
		display: localizedText(n.browse), class: n.class, typeDef: n.typeDefinition()}
}

// refs lists every reference of n: its type definition, its children, and
// (inverse) its parent.
func (s *Server) refs(n *node) []ref {
	var out []ref
	switch td := n.typeDefinition(); {
	case td == nil:
	case n.class == ua.NodeClassObject:
		out = append(out, ref{typ: id.HasTypeDefinition, forward: true, target: td,
			name: qualifiedName(0, "BaseObjectType"), display: localizedText("BaseObjectType"), class: ua.NodeClassObjectType})
	default:
		out = append(out, ref{typ: id.HasTypeDefinition, forward: true, target: td,
			name: qualifiedName(0, "BaseDataVariableType"), display: localizedText("BaseDataVariableType"), class: ua.NodeClassVariableType})
	}
	for _, c := range n.children {
		out = append(out, s.refTo(c.ref, true, c))
	}
	if n.parent != nil {
		out = append(out, s.refTo(n.ref, false, n.parent))
	} else {
		out = append(out, ref{typ: n.ref, forward: false, target: objectsFolder, name: qualifiedName(0, "Objects"),
			display: localizedText("Objects"), class: ua.NodeClassObject, typeDef: folderType})
	}
	return out
}

func (s *Server) browseOne(bd *ua.BrowseDescription) *ua.BrowseResult {
	if bd == nil || bd.NodeID == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDInvalid}
	}
	if bd.BrowseDirection > ua.BrowseDirectionBoth {
		return &ua.BrowseResult{StatusCode: ua.StatusBadBrowseDirectionInvalid}
	}
	if !isNull(bd.ReferenceTypeID) {
		rt := s.srv.Node(bd.ReferenceTypeID)
		if rt == nil || rt.NodeClass() != ua.NodeClassReferenceType {
			return &ua.BrowseResult{StatusCode: ua.StatusBadReferenceTypeIDInvalid}
		}
	}
	var own []ref
	switch bd.NodeID.Namespace() {
	case s.NamespaceIndex():
		n := s.nodes[bd.NodeID.String()]
		if n == nil {
			return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
		}
		own = s.refs(n)
	case 0:
		ns, err := s.srv.Namespace(0)
		if err != nil {
			return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
		}
		res := ns.Browse(bd)
		if res == nil {
			return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
		}
		if res.StatusCode != ua.StatusOK || !bd.NodeID.Equal(objectsFolder) {
			return res
		}
		for _, n := range s.top {
			own = append(own, s.refTo(n.ref, true, n))
		}
		for _, rf := range own {
			if s.wanted(bd, rf) {
				res.References = append(res.References, describe(rf, bd.ResultMask))
			}
		}
		return res
	default:
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	res := &ua.BrowseResult{StatusCode: ua.StatusOK, References: []*ua.ReferenceDescription{}}
	for _, rf := range own {
		if s.wanted(bd, rf) {
			res.References = append(res.References, describe(rf, bd.ResultMask))
		}
	}
	return res
}

// wanted applies a browse description's filters to one reference.
func (s *Server) wanted(bd *ua.BrowseDescription, rf ref) bool {
	switch bd.BrowseDirection {
	case ua.BrowseDirectionForward:
		if !rf.forward {
			return false
		}
	case ua.BrowseDirectionInverse:
		if rf.forward {
			return false
		}
	}
	if !isNull(bd.ReferenceTypeID) {
		want := bd.ReferenceTypeID
		match := want.Namespace() == 0 && want.IntID() == rf.typ
		if !match && bd.IncludeSubtypes && want.Namespace() == 0 {
			for _, a := range refAncestors[rf.typ] {
				if want.IntID() == a {
					match = true
					break
				}
			}
		}
		if !match {
			return false
		}
	}
	return bd.NodeClassMask == 0 || bd.NodeClassMask&uint32(rf.class) != 0
}

// describe turns a reference into what Browse returns, with only the fields
// the result mask asks for (the others null, as the spec wants).
func describe(rf ref, mask uint32) *ua.ReferenceDescription {
	d := &ua.ReferenceDescription{
		ReferenceTypeID: ua.NewTwoByteNodeID(0),
		NodeID:          ua.NewExpandedNodeID(rf.target, "", 0),
		BrowseName:      &ua.QualifiedName{},
		DisplayName:     &ua.LocalizedText{},
		TypeDefinition:  ua.NewTwoByteExpandedNodeID(0),
	}
	m := ua.BrowseResultMask(mask)
	if m&ua.BrowseResultMaskReferenceTypeID != 0 {
		d.ReferenceTypeID = ua.NewNumericNodeID(0, rf.typ)
	}
	if m&ua.BrowseResultMaskIsForward != 0 {
		d.IsForward = rf.forward
	}
	if m&ua.BrowseResultMaskNodeClass != 0 {
		d.NodeClass = rf.class
	}
	if m&ua.BrowseResultMaskBrowseName != 0 {
		d.BrowseName = rf.name
	}
	if m&ua.BrowseResultMaskDisplayName != 0 {
		d.DisplayName = rf.display
	}
	if m&ua.BrowseResultMaskTypeDefinition != 0 && rf.typeDef != nil {
		d.TypeDefinition = ua.NewExpandedNodeID(rf.typeDef, "", 0)
	}
	return d
}

// handleBrowseNext: uasim never hands out continuation points (its nodes have
// few references), so every one a client sends is invalid.
func (s *Server) handleBrowseNext(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.BrowseNextRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if len(req.ContinuationPoints) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	results := make([]*ua.BrowseResult, len(req.ContinuationPoints))
	for i := range results {
		results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadContinuationPointInvalid, References: []*ua.ReferenceDescription{}}
	}
	return &ua.BrowseNextResponse{
		ResponseHeader:  respHeader(req.RequestHeader),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// check.js: look at an OPC UA server the way a standard client does
// (node-opcua, strict: endpointMustExist), and print what it saw as one JSON
// object on stdout. uasim's Go tests run it against a uasim server behind a
// netsim proxy and judge the output; this script judges nothing itself.
//
// Usage: node check.js '<json spec>'
//   {"endpoint": "opc.tcp://127.0.0.1:4840",
//    "read":   ["ns=1;s=Dev.Counter", ...],               attributes of each node
//    "browse": {"from": "i=85", "depth": 3},               hierarchical, forward
//    "write":  [{"nodeId": "...", "dataType": "UInt32", "value": 5, "array": false}],
//    "call":   [{"objectId": "...", "methodId": "...", "args": [{"dataType": "Int32", "value": 2}]}]}
//
// Output: one line "UACHECK " + {"servers": [...], "endpoints": [...], "session": {...}, "reads": {...}, "browse": [...],
//          "writes": [...], "calls": [...], "errors": [...]}
// (node-opcua logs its own warnings on stdout too; the Go test takes the line
// that starts with "UACHECK ".)
// Exit status: 0 when the script ran to the end (whatever the server said),
// 2 on a bad spec, 3 when the watchdog fired.
"use strict";

const {
    OPCUAClient, MessageSecurityMode, SecurityPolicy, AttributeIds, DataType,
    VariantArrayType, BrowseDirection, NodeClass, resolveNodeId, StatusCodes,
} = require("node-opcua-client");

const out = { servers: [], endpoints: [], session: null, reads: {}, browse: [], writes: [], calls: [], namespaces: null, errors: [] };

function fail(step, err) {
    out.errors.push(`${step}: ${err && err.message ? err.message : String(err)}`);
}

function status(sc) {
    return sc ? sc.name : "";
}

// Turn what node-opcua decoded into plain JSON.
function plain(v) {
    if (v === null || v === undefined) return null;
    if (typeof v === "bigint") return v.toString();
    if (ArrayBuffer.isView(v)) return Array.from(v, plain);
    if (Array.isArray(v)) return v.map(plain);
    if (v instanceof Date) return v.toISOString();
    if (typeof v === "object") {
        if (typeof v.toString === "function" && v.constructor && v.constructor.name === "NodeId") return v.toString();
        if (v.text !== undefined && v.locale !== undefined) return v.text; // LocalizedText
        if (v.name !== undefined && v.namespaceIndex !== undefined) return `${v.namespaceIndex}:${v.name}`; // QualifiedName
        if (typeof v.toString === "function" && v.constructor && v.constructor.name === "ExpandedNodeId") return v.toString();
    }
    return v;
}

const attrs = [
    "NodeClass", "BrowseName", "DisplayName", "DataType", "ValueRank", "ArrayDimensions",
    "AccessLevel", "UserAccessLevel", "Value", "Historizing", "WriteMask", "MinimumSamplingInterval",
];

async function readNode(session, nodeId) {
    const res = {};
    const dvs = await session.read(attrs.map((a) => ({ nodeId, attributeId: AttributeIds[a] })));
    dvs.forEach((dv, i) => {
        const a = attrs[i];
        const r = { status: status(dv.statusCode) };
        if (dv.value && dv.value.dataType !== DataType.Null) {
            r.variantType = DataType[dv.value.dataType];
            r.arrayType = VariantArrayType[dv.value.arrayType];
            r.value = plain(dv.value.value);
        }
        if (a === "NodeClass" && typeof r.value === "number") r.name = NodeClass[r.value];
        res[a] = r;
    });
    return res;
}

async function browseTree(session, from, depth, path) {
    if (depth <= 0) return;
    const br = await session.browse({
        nodeId: from,
        browseDirection: BrowseDirection.Forward,
        referenceTypeId: "HierarchicalReferences",
        includeSubtypes: true,
        nodeClassMask: 0,
        resultMask: 0x3f,
    });
    if (br.statusCode !== StatusCodes.Good) {
        fail(`browse ${from}`, br.statusCode.name);
        return;
    }
    for (const ref of br.references || []) {
        const item = {
            parent: from.toString(),
            path: path.concat(ref.browseName.name).join("/"),
            nodeId: ref.nodeId.toString(),
            referenceType: ref.referenceTypeId.toString(),
            browseName: `${ref.browseName.namespaceIndex}:${ref.browseName.name}`,
            displayName: ref.displayName.text,
            nodeClass: NodeClass[ref.nodeClass],
            typeDefinition: ref.typeDefinition ? ref.typeDefinition.toString() : "",
        };
        out.browse.push(item);
        // Do not wander into the standard Server object: its tree is big.
        if (ref.nodeId.namespace !== 0 && (ref.nodeClass === NodeClass.Object)) {
            await browseTree(session, ref.nodeId, depth - 1, path.concat(ref.browseName.name));
        }
    }
}

async function main() {
    let spec;
    try {
        spec = JSON.parse(process.argv[2] || "");
    } catch (err) {
        console.error(`check.js: spec: ${err.message}`);
        process.exit(2);
    }
    if (typeof spec.endpoint !== "string" || !spec.endpoint.startsWith("opc.tcp://")) {
        console.error("check.js: spec.endpoint: want an opc.tcp:// URL");
        process.exit(2);
    }

    const client = OPCUAClient.create({
        applicationName: "tracline uasim check",
        endpointMustExist: true, // strict: the server must offer the URL we connect to
        securityMode: MessageSecurityMode.None,
        securityPolicy: SecurityPolicy.None,
        connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
        requestedSessionTimeout: 60000,
        keepSessionAlive: false,
    });
    try {
        // connect opens a secure channel and asks GetEndpoints for spec.endpoint.
        await client.connect(spec.endpoint);
    } catch (err) {
        fail("connect", err);
        return;
    }
    try {
        const eps = await client.getEndpoints({ endpointUrl: spec.endpoint });
        out.endpoints = eps.map((e) => ({
            endpointUrl: e.endpointUrl,
            securityMode: MessageSecurityMode[e.securityMode],
            securityPolicyUri: e.securityPolicyUri,
            transportProfileUri: e.transportProfileUri,
            applicationName: e.server && e.server.applicationName ? e.server.applicationName.text : "",
            userTokens: (e.userIdentityTokens || []).map((t) => ({ policyId: t.policyId, tokenType: t.tokenType })),
        }));
    } catch (err) {
        fail("getEndpoints", err);
    }

    try {
        const servers = await client.findServers({ endpointUrl: spec.endpoint });
        out.servers = servers.map((a) => ({
            applicationUri: a.applicationUri,
            applicationName: a.applicationName ? a.applicationName.text : "",
            applicationType: a.applicationType,
            discoveryUrls: a.discoveryUrls || [],
        }));
    } catch (err) {
        fail("findServers", err);
    }

    let session;
    try {
        session = await client.createSession(); // CreateSession + ActivateSession, anonymous
        out.session = {
            created: true,
            serverEndpoints: (session.serverEndpoints || []).map((e) => e.endpointUrl),
        };
    } catch (err) {
        fail("createSession", err);
        await client.disconnect().catch(() => {});
        return;
    }

    try {
        const dv = await session.read({ nodeId: resolveNodeId("i=2255"), attributeId: AttributeIds.Value });
        out.namespaces = plain(dv.value.value);
    } catch (err) {
        fail("read NamespaceArray", err);
    }
    for (const id of spec.read || []) {
        try {
            out.reads[id] = await readNode(session, resolveNodeId(id));
        } catch (err) {
            fail(`read ${id}`, err);
        }
    }
    if (spec.browse) {
        try {
            await browseTree(session, resolveNodeId(spec.browse.from || "i=85"), spec.browse.depth || 3, []);
        } catch (err) {
            fail("browse", err);
        }
    }
    for (const w of spec.write || []) {
        try {
            const value = { dataType: DataType[w.dataType], value: w.value };
            if (w.array) value.arrayType = VariantArrayType.Array;
            const sc = await session.write({ nodeId: resolveNodeId(w.nodeId), attributeId: AttributeIds.Value, value: { value } });
            out.writes.push({ nodeId: w.nodeId, status: status(sc) });
        } catch (err) {
            fail(`write ${w.nodeId}`, err);
        }
    }
    for (const c of spec.call || []) {
        try {
            const res = await session.call({
                objectId: resolveNodeId(c.objectId),
                methodId: resolveNodeId(c.methodId),
                inputArguments: (c.args || []).map((a) => ({ dataType: DataType[a.dataType], value: a.value })),
            });
            out.calls.push({ methodId: c.methodId, status: status(res.statusCode), outputs: (res.outputArguments || []).map((v) => plain(v.value)) });
        } catch (err) {
            fail(`call ${c.methodId}`, err);
        }
    }
    try {
        await session.close();
    } catch (err) {
        fail("closeSession", err);
    }
    await client.disconnect().catch((err) => fail("disconnect", err));
}

// A guard, not a measurement: never hang the Go test that runs this.
const watchdog = setTimeout(() => {
    fail("watchdog", "no answer within 60 s");
    process.stdout.write("UACHECK " + JSON.stringify(out) + "\n");
    process.exit(3);
}, 60000);

main()
    .catch((err) => fail("main", err))
    .finally(() => {
        clearTimeout(watchdog);
        process.stdout.write("UACHECK " + JSON.stringify(out) + "\n");
        process.exit(0);
    });

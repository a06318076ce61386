// A node-opcua server for Tracline's OPC UA security tests (started by the
// Go package in this folder, never by hand in production).
//
// It offers SecurityPolicy None and Basic256Sha256 Sign / SignAndEncrypt on
// 127.0.0.1, uses the certificate and key it is given, accepts any client
// certificate, and holds a small coding printer, vision camera and PLC with
// the node names of the linesim simulators (docs/devices-printer-camera.md,
// docs/devices.md B.2), all in namespace 1:
//
//   Printer.Enqueue (String[], W)  codes to print; each is "printed" at once:
//   Printer.PrintCount, Printer.LastRecord, Printer.Records (ring), Printer.State,
//   Printer.InkLow, Printer.HeadFault, Printer.BufferLevel, Printer.Underruns,
//   Printer.AddCodes(String[]) -> UInt32, Printer.Flush() -> (String[], UInt32),
//   Printer.GetRecord(UInt32) -> String
//   Camera.ResultCount, Camera.LastResult, Camera.Results (ring), Camera.State,
//   Camera.StartSingleJob(UInt32 item) -> UInt32 (publishes a passing result
//   with the code "CODE-<item>"), Camera.GetResult(UInt32) -> String
//   PLC.ItemCounter (UInt32, RW), PLC.Heartbeat (UInt32, +1 every 100 ms),
//   PLC.Running (Boolean, RW), PLC.Verdict (UInt32[3], RW),
//   PLC.StopRequest (Boolean, RW), PLC.Alarm (Boolean, RW), PLC.TowerLight (UInt16, RW)
//
// Usage: node server.js '<json options>' with options
//   {"port": 0, "cert": "server.crt", "key": "server.key", "uri": "urn:…", "pki": "dir"}
// Once listening it prints one JSON line on stdout:
//   {"ready":true,"endpoint":"opc.tcp://127.0.0.1:PORT","certificate":"<base64 DER>"}
// It stops when its standard input closes (so it never outlives its test).
"use strict";

const path = require("path");
const {
    OPCUAServer,
    OPCUACertificateManager,
    Variant,
    DataType,
    VariantArrayType,
    StatusCodes,
    SecurityPolicy,
    MessageSecurityMode,
} = require("node-opcua");

const opts = JSON.parse(process.argv[2] || "{}");
const RING = 256;

function fail(msg) {
    process.stderr.write("nodeopcua server: " + msg + "\n");
    process.exit(2);
}

async function main() {
    const pki = opts.pki || fail("option pki missing");
    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "server"),
        automaticallyAcceptUnknownCertificate: true,
    });
    const userCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(pki, "user"),
        automaticallyAcceptUnknownCertificate: true,
    });
    const server = new OPCUAServer({
        port: opts.port || 0,
        host: "127.0.0.1",
        hostname: "127.0.0.1",
        certificateFile: opts.cert,
        privateKeyFile: opts.key,
        serverCertificateManager,
        userCertificateManager,
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: true,
        isAuditing: false,
        serverInfo: { applicationUri: opts.uri, productUri: "urn:tracline:test:nodeopcua", applicationName: { text: "Tracline test server" } },
        buildInfo: { productName: "Tracline node-opcua test server" },
    });
    await server.initialize();
    build(server.engine.addressSpace);
    await server.start();
    process.stdout.write(
        JSON.stringify({
            ready: true,
            endpoint: server.getEndpointUrl(),
            certificate: Buffer.from(server.getCertificate()).toString("base64"),
        }) + "\n"
    );
    let stopping = false;
    const stop = async () => {
        if (stopping) return;
        stopping = true;
        try {
            await server.shutdown(0);
        } finally {
            process.exit(0);
        }
    };
    process.stdin.on("end", stop);
    process.stdin.on("close", stop);
    process.stdin.resume();
    process.on("SIGTERM", stop);
}

// build adds the printer, camera and PLC to namespace 1.
function build(addressSpace) {
    const ns = addressSpace.getOwnNamespace();
    if (ns.index !== 1) fail("own namespace is " + ns.index + ", not 1");
    const objects = addressSpace.rootFolder.objects;

    const variable = (owner, name, dataType, value, opts = {}) => {
        const array = Array.isArray(value);
        const v = ns.addVariable({
            componentOf: owner,
            browseName: name,
            nodeId: "s=" + name,
            dataType,
            valueRank: array ? 1 : -1,
            arrayDimensions: array ? [0] : null,
            accessLevel: opts.write ? "CurrentRead | CurrentWrite" : "CurrentRead",
            userAccessLevel: opts.write ? "CurrentRead | CurrentWrite" : "CurrentRead",
            minimumSamplingInterval: 0,
        });
        if (opts.onWrite) {
            v.bindVariable({
                get: () => new Variant({ dataType, arrayType: array ? VariantArrayType.Array : undefined, value: opts.current() }),
                set: (variant) => opts.onWrite(variant),
            }, true);
        } else {
            v.setValueFromSource(new Variant({ dataType, arrayType: array ? VariantArrayType.Array : undefined, value }));
        }
        return v;
    };
    const set = (v, dataType, value) =>
        v.setValueFromSource(new Variant({ dataType, arrayType: Array.isArray(value) ? VariantArrayType.Array : undefined, value }));
    const method = (owner, name, inputs, outputs, fn) => {
        const m = ns.addMethod(owner, {
            browseName: name,
            nodeId: "s=" + name,
            inputArguments: inputs.map(([n, t, rank]) => ({ name: n, dataType: t, valueRank: rank || -1 })),
            outputArguments: outputs.map(([n, t, rank]) => ({ name: n, dataType: t, valueRank: rank || -1 })),
        });
        m.bindMethod((args, context, callback) => {
            try {
                const r = fn(args.map((a) => a.value));
                if (typeof r === "number") return callback(null, { statusCode: r });
                callback(null, { statusCode: StatusCodes.Good, outputArguments: r });
            } catch (e) {
                callback(null, { statusCode: StatusCodes.BadInternalError });
            }
        });
    };

    // Coding printer: every code handed over is printed at once.
    const printer = ns.addObject({ organizedBy: objects, browseName: "Printer", nodeId: "s=Printer" });
    let printed = 0;
    const precords = [];
    const pCount = variable(printer, "Printer.PrintCount", DataType.UInt32, 0);
    const pLast = variable(printer, "Printer.LastRecord", DataType.String, "");
    const pRing = variable(printer, "Printer.Records", DataType.String, []);
    variable(printer, "Printer.State", DataType.String, "running");
    variable(printer, "Printer.InkLow", DataType.Boolean, false);
    variable(printer, "Printer.HeadFault", DataType.Boolean, false);
    variable(printer, "Printer.BufferLevel", DataType.UInt32, 0);
    variable(printer, "Printer.Underruns", DataType.UInt32, 0);
    const print = (codes) => {
        for (const code of codes) {
            printed++;
            const rec = JSON.stringify({ seq: printed, code, at: new Date().toISOString() });
            precords.push(rec);
            if (precords.length > RING) precords.shift();
            set(pRing, DataType.String, precords.slice());
            set(pCount, DataType.UInt32, printed);
            set(pLast, DataType.String, rec);
        }
    };
    const codesOf = (value) => {
        const codes = Array.from(value || []);
        if (codes.some((c) => typeof c !== "string" || c === "")) return null;
        return codes;
    };
    variable(printer, "Printer.Enqueue", DataType.String, [], {
        write: true,
        current: () => [],
        onWrite: (variant) => {
            const codes = codesOf(variant.value);
            if (codes === null) return StatusCodes.BadInvalidArgument;
            setImmediate(() => print(codes));
            return StatusCodes.Good;
        },
    });
    method(printer, "Printer.AddCodes", [["codes", DataType.String, 1]], [["level", DataType.UInt32]], ([codes]) => {
        const c = codesOf(codes);
        if (c === null) return StatusCodes.BadInvalidArgument;
        setImmediate(() => print(c));
        return [{ dataType: DataType.UInt32, value: 0 }];
    });
    method(printer, "Printer.Flush", [], [["removed", DataType.String, 1], ["printCount", DataType.UInt32]], () => [
        { dataType: DataType.String, arrayType: VariantArrayType.Array, value: [] },
        { dataType: DataType.UInt32, value: printed },
    ]);
    method(printer, "Printer.GetRecord", [["seq", DataType.UInt32]], [["record", DataType.String]], ([seq]) => {
        const rec = precords.find((r) => JSON.parse(r).seq === seq);
        if (!rec) return StatusCodes.BadNotFound;
        return [{ dataType: DataType.String, value: rec }];
    });

    // Vision camera: a result per StartSingleJob.
    const camera = ns.addObject({ organizedBy: objects, browseName: "Camera", nodeId: "s=Camera" });
    let results = 0;
    const crecords = [];
    const cCount = variable(camera, "Camera.ResultCount", DataType.UInt32, 0);
    const cLast = variable(camera, "Camera.LastResult", DataType.String, "");
    const cRing = variable(camera, "Camera.Results", DataType.String, []);
    variable(camera, "Camera.State", DataType.String, "running");
    method(camera, "Camera.StartSingleJob", [["item", DataType.UInt32]], [["jobId", DataType.UInt32]], ([item]) => {
        results++;
        const rec = JSON.stringify({ seq: results, item, level: 0, codes: ["CODE-" + item], grade: "A", pass: true, at: new Date().toISOString() });
        crecords.push(rec);
        if (crecords.length > RING) crecords.shift();
        set(cRing, DataType.String, crecords.slice());
        set(cCount, DataType.UInt32, results);
        set(cLast, DataType.String, rec);
        return [{ dataType: DataType.UInt32, value: results }];
    });
    method(camera, "Camera.GetResult", [["seq", DataType.UInt32]], [["result", DataType.String]], ([seq]) => {
        const rec = crecords.find((r) => JSON.parse(r).seq === seq);
        if (!rec) return StatusCodes.BadNotFound;
        return [{ dataType: DataType.String, value: rec }];
    });

    // PLC: inputs the test may write, a running heartbeat, the verdict output.
    const plc = ns.addObject({ organizedBy: objects, browseName: "PLC", nodeId: "s=PLC" });
    const rw = { write: true };
    variable(plc, "PLC.ItemCounter", DataType.UInt32, 0, rw);
    const hb = variable(plc, "PLC.Heartbeat", DataType.UInt32, 0);
    variable(plc, "PLC.Running", DataType.Boolean, true, rw);
    variable(plc, "PLC.Verdict", DataType.UInt32, [0, 0, 0], rw);
    variable(plc, "PLC.StopRequest", DataType.Boolean, false, rw);
    variable(plc, "PLC.Alarm", DataType.Boolean, false, rw);
    variable(plc, "PLC.TowerLight", DataType.UInt16, 0, rw);
    let beat = 0;
    setInterval(() => set(hb, DataType.UInt32, ++beat), 100).unref();
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));

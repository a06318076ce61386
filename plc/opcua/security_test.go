package opcua_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/tracline/tracline/internal/uasec"
	"github.com/tracline/tracline/internal/uasec/nodeopcua"
	"github.com/tracline/tracline/internal/uasec/uasectest"
	"github.com/tracline/tracline/plc"
	"github.com/tracline/tracline/plc/opcua"
)

// nodeOPCUAProfile is the PLC profile of node-opcua's PLC (see
// internal/uasec/nodeopcua/server.js) over Basic256Sha256.
func nodeOPCUAProfile(endpoint, mode string, client uasectest.KeyPair, trust uasec.TrustConfig) plc.Config {
	return plc.Config{
		Protocol: plc.ProtoOPCUA,
		OPCUA: plc.OPCUAConfig{
			Endpoint:       endpoint,
			SecurityPolicy: plc.SecPolicyBasic256Sha256,
			SecurityMode:   mode,
			Certificate:    client.CertFile,
			PrivateKey:     client.KeyFile,
			Trust:          trust,
		},
		HeartbeatTimeout: 2 * time.Second,
		Signals: map[string]plc.Signal{
			plc.SigItemTrigger: {Type: plc.TypeU32, Node: "ns=1;s=PLC.ItemCounter"},
			plc.SigRunning:     {Type: plc.TypeBool, Node: "ns=1;s=PLC.Running"},
			plc.SigHeartbeat:   {Type: plc.TypeU32, Node: "ns=1;s=PLC.Heartbeat"},
			plc.SigVerdict:     {Type: plc.TypeVerdict, Node: "ns=1;s=PLC.Verdict"},
		},
	}
}

// plainClient is a SecurityPolicy None client playing the PLC program's
// side of node-opcua's PLC.
func plainClient(t *testing.T, endpoint string) *gopcua.Client {
	t.Helper()
	c, err := gopcua.NewClient(endpoint, gopcua.SecurityMode(ua.MessageSecurityModeNone), gopcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestSecureEndToEnd: the PLC driver over Basic256Sha256 Sign and
// SignAndEncrypt against node-opcua, with an openssl-style PKCS#8 client
// key: items arrive, verdicts are written; a server not in the trust list
// is refused naming its certificate.
func TestSecureEndToEnd(t *testing.T) {
	srv := nodeopcua.Start(t)
	client := uasectest.New(t, "plc-client")
	plain := plainClient(t, srv.Endpoint)
	item := uint32(0)
	for _, mode := range []string{plc.SecModeSign, plc.SecModeSignAndEncrypt} {
		t.Run(mode, func(t *testing.T) {
			d := connect(t, nodeOPCUAProfile(srv.Endpoint, mode, client, uasec.TrustConfig{Trusted: []string{srv.Cert.CertFile}}), false)
			next(t, d, kind(plc.EventLinkUp))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			item++
			if _, err := plain.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
				NodeID: ua.MustParseNodeID("ns=1;s=PLC.ItemCounter"), AttributeID: ua.AttributeIDValue,
				Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(item)},
			}}}); err != nil {
				t.Fatal(err)
			}
			if e := next(t, d, kind(plc.EventItem)); e.Item != item {
				t.Fatalf("item %v, want %d", e, item)
			}
			if err := d.WriteVerdict(ctx, plc.Verdict{Item: item, Result: plc.ResultPass}); err != nil {
				t.Fatal(err)
			}
			res, err := plain.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.MustParseNodeID("ns=1;s=PLC.Verdict"), AttributeID: ua.AttributeIDValue}}})
			if err != nil || len(res.Results) != 1 || res.Results[0].Value == nil {
				t.Fatalf("read verdict: %v %+v", err, res)
			}
			if got, _ := res.Results[0].Value.Value().([]uint32); !slices.Equal(got, []uint32{item, uint32(plc.ResultPass), 0}) {
				t.Fatalf("verdict on the PLC = %v", res.Results[0].Value.Value())
			}
		})
	}
	t.Run("unknown server refused", func(t *testing.T) {
		other := uasectest.New(t, "other")
		d, err := opcua.New(nodeOPCUAProfile(srv.Endpoint, plc.SecModeSignAndEncrypt, client, uasec.TrustConfig{Trusted: []string{other.CertFile}}), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = d.Connect(ctx)
		if !errors.Is(err, uasec.ErrUntrusted) || !strings.Contains(err.Error(), uasec.Thumbprint(srv.CertDER)) {
			t.Fatalf("connect to an unknown server = %v, want a refusal naming its certificate", err)
		}
	})
}

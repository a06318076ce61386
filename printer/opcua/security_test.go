package opcua

import (
	"context"
	"testing"
	"time"

	"github.com/tracline/tracline/internal/uasec"
	"github.com/tracline/tracline/internal/uasec/nodeopcua"
	"github.com/tracline/tracline/internal/uasec/uasectest"
	"github.com/tracline/tracline/printer"
	"github.com/tracline/tracline/printer/uarecord"
)

// TestSecureEndToEnd drives node-opcua's printer (linesim's node names)
// over Basic256Sha256 Sign and SignAndEncrypt: the client key as openssl
// writes it (PKCS#8 PEM, client.key), the server's certificate trusted.
func TestSecureEndToEnd(t *testing.T) {
	srv := nodeopcua.Start(t)
	client := uasectest.New(t, "client")
	for _, mode := range []string{"Sign", "SignAndEncrypt"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cfg := SimProfile(srv.Endpoint)
			cfg.Stream.Security = uarecord.Security{Policy: "Basic256Sha256", Mode: mode, CertFile: client.CertFile, KeyFile: client.KeyFile}
			cfg.Stream.Trust = uasec.TrustConfig{Trusted: []string{srv.Cert.CertFile}}
			cfg.Stream.PublishingInterval = 20 * time.Millisecond
			drv, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer drv.Close()
			if err := drv.Connect(ctx); err != nil {
				t.Fatalf("connect: %v\nserver output:\n%s", err, srv.Output())
			}
			var ability interface{ PublishingInterval() time.Duration } = drv
			if got := ability.PublishingInterval(); got != 50*time.Millisecond {
				t.Errorf("PublishingInterval = %s, want the 50ms node-opcua grants for 20ms asked", got)
			}
			cs := codes(mode+"-", 5)
			if err := drv.Send(ctx, cs); err != nil {
				t.Fatal(err)
			}
			for i := range cs {
				ev := next(t, ctx, drv.Events())
				if ev.Kind != printer.EventPrinted || ev.Code != cs[i] {
					t.Fatalf("event %d = %+v, want printed %s", i, ev, cs[i])
				}
			}
			st, err := drv.Status(ctx)
			if err != nil || st.State != "running" || st.HeadFault {
				t.Fatalf("status = %+v, %v", st, err)
			}
			res, err := drv.Flush(ctx)
			if err != nil || len(res.Unconfirmed) != 0 {
				t.Fatalf("flush = %+v, %v", res, err)
			}
		})
	}
}

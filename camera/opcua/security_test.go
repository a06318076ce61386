package opcua

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tracline/tracline/camera"
	"github.com/tracline/tracline/internal/uasec"
	"github.com/tracline/tracline/internal/uasec/nodeopcua"
	"github.com/tracline/tracline/internal/uasec/uasectest"
	"github.com/tracline/tracline/printer/uarecord"
)

// TestSecureEndToEnd drives node-opcua's camera (linesim's node names) over
// Basic256Sha256 Sign and SignAndEncrypt, with the server pinned on first
// use: triggered inspections arrive as results.
func TestSecureEndToEnd(t *testing.T) {
	srv := nodeopcua.Start(t)
	client := uasectest.New(t, "client")
	for _, mode := range []string{"Sign", "SignAndEncrypt"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cfg := SimProfile(srv.Endpoint, "Camera")
			cfg.TriggerObject, cfg.TriggerMethod = "ns=1;s=Camera", "ns=1;s=Camera.StartSingleJob"
			cfg.Stream.Security = uarecord.Security{Policy: "Basic256Sha256", Mode: mode, CertFile: client.CertFile, KeyFile: client.KeyFile}
			cfg.Stream.Trust = uasec.TrustConfig{Pinning: uasec.PinningFirstUse, PinFile: filepath.Join(t.TempDir(), "pins")}
			cam, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cam.Close()
			if err := cam.Connect(ctx); err != nil {
				t.Fatalf("connect: %v\nserver output:\n%s", err, srv.Output())
			}
			var ability interface{ PublishingInterval() time.Duration } = cam
			if got := ability.PublishingInterval(); got != 50*time.Millisecond {
				t.Errorf("PublishingInterval = %s, want the 50ms node-opcua grants", got)
			}
			for item := uint32(100); item < 104; item++ {
				if err := cam.StartSingleJob(ctx, item); err != nil {
					t.Fatal(err)
				}
			}
			for item := uint32(100); item < 104; item++ {
				var ev camera.Event
				select {
				case ev = <-cam.Events():
				case <-ctx.Done():
					t.Fatal("no result before the deadline")
				}
				want := []string{fmt.Sprintf("CODE-%d", item)}
				if ev.Kind != camera.EventResult || ev.Result.Item != item || !ev.Result.Pass || !slices.Equal(ev.Result.Codes, want) {
					t.Fatalf("event = %+v, want the result of item %d", ev, item)
				}
			}
		})
	}
}

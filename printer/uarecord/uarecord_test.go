package uarecord

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/uasim"
	"github.com/tracline/tracline/internal/uasec"
	"github.com/tracline/tracline/internal/uasec/uasectest"
)

func decodeSeq(raw string) (uint64, error) { return strconv.ParseUint(raw, 10, 64) }

// TestSecureNeverFallsBackToNone: asked for Basic256Sha256, the client
// refuses a server that offers only SecurityPolicy None instead of silently
// connecting without security. (The working Basic256Sha256 handshakes are
// tested against node-opcua in security_test.go.)
func TestSecureNeverFallsBackToNone(t *testing.T) {
	srv, err := uasim.New(uasim.Config{NamespaceURI: "urn:test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddVariable("", "Rec", "", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	kp := uasectest.New(t, "client")
	for _, mode := range []string{"Sign", "SignAndEncrypt"} {
		cfg := Config{
			Endpoint:   srv.Endpoint(),
			Security:   Security{Policy: "Basic256Sha256", Mode: mode, CertFile: kp.CertFile, KeyFile: kp.KeyFile},
			Trust:      uasec.TrustConfig{Pinning: uasec.PinningFirstUse, PinFile: filepath.Join(t.TempDir(), "pins")},
			RecordNode: "ns=1;s=Rec",
		}
		st, err := New(cfg, "test", decodeSeq, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = st.Connect(ctx)
		st.Close()
		if err == nil || !strings.Contains(err.Error(), "no endpoint with Basic256Sha256/"+mode) {
			t.Fatalf("%s: connect = %v, want a refusal naming the missing endpoint", mode, err)
		}
	}
}

func TestSecurityValidate(t *testing.T) {
	tests := []struct {
		sec  Security
		want string
	}{
		{Security{}, ""},
		{Security{Policy: "None", Mode: "None"}, ""},
		{Security{Policy: "Basic256Sha256", Mode: "Sign", CertFile: "c", KeyFile: "k"}, ""},
		{Security{Policy: "Basic256Sha256", Mode: "None", CertFile: "c", KeyFile: "k"}, `"None" is not Sign or SignAndEncrypt`},
		{Security{Policy: "Basic256Sha256", Mode: "Sign"}, "needs cert_file and key_file"},
		{Security{Policy: "Aes128", Mode: "Sign"}, `"Aes128" is not None or Basic256Sha256`},
		{Security{Mode: "SignAndEncrypt"}, "needs policy Basic256Sha256"},
	}
	for _, tc := range tests {
		err := tc.sec.Validate("x.security")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.sec, err, tc.want)
		}
	}
}

func TestSubscriptionCounts(t *testing.T) {
	for _, tc := range []struct {
		interval   time.Duration
		keep, life uint32
	}{
		{10 * time.Millisecond, 10, 1000}, // the default: a lifetime of 10 s
		{2 * time.Millisecond, 50, 5000},  // was 10 / 100: a lifetime of 200 ms
		{time.Millisecond, 100, 10000},
		{50 * time.Millisecond, 2, 200},
		{500 * time.Millisecond, 1, 20},
		{0, 10, 1000},
	} {
		keep, life := subscriptionCounts(tc.interval)
		if keep != tc.keep || life != tc.life {
			t.Errorf("%s: keep-alive %d, lifetime %d; want %d, %d", tc.interval, keep, life, tc.keep, tc.life)
		}
		if life < 3*keep {
			t.Errorf("%s: lifetime %d under three keep-alives %d", tc.interval, life, keep)
		}
	}
}

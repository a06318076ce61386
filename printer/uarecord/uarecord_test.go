package uarecord

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracline/tracline/cmd/linesim/uasim"
)

func decodeSeq(raw string) (uint64, error) { return strconv.ParseUint(raw, 10, 64) }

// TestSecureNeverFallsBackToNone: asked for Basic256Sha256, the client
// refuses a server that offers only SecurityPolicy None instead of silently
// connecting without security. (A working Basic256Sha256 handshake could not
// be tested here: see docs/devices-printer-camera.md §8.)
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
	cert, key := selfSigned(t)
	for _, mode := range []string{"Sign", "SignAndEncrypt"} {
		cfg := Config{
			Endpoint:   srv.Endpoint(),
			Security:   Security{Policy: "Basic256Sha256", Mode: mode, CertFile: cert, KeyFile: key},
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

// selfSigned writes a client certificate (DER) and key (PEM) with an
// application URI, made with the standard library.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	uri, _ := url.Parse("urn:tracline:test:client")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tracline test client"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{uri},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.der"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, der, 0o600); err != nil {
		t.Fatal(err)
	}
	kp := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

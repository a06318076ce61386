package uasec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/internal/uasec/uasectest"
)

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func pemOf(typ string, der []byte, headers map[string]string) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der})
}

func TestLoadPrivateKey(t *testing.T) {
	kp := uasectest.New(t, "client")
	dir := t.TempDir()
	p1 := x509.MarshalPKCS1PrivateKey(kp.Key)
	p8, _ := x509.MarshalPKCS8PrivateKey(kp.Key)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecSEC1, _ := x509.MarshalECPrivateKey(ec)
	ecP8, _ := x509.MarshalPKCS8PrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edP8, _ := x509.MarshalPKCS8PrivateKey(ed)
	tests := []struct {
		name string
		file string
		want string // "" = loads the client key
	}{
		{"openssl default: PKCS#8 PEM in client.key", kp.KeyFile, ""},
		{"PKCS#1 PEM in .pem", write(t, dir, "k1.pem", pemOf("RSA PRIVATE KEY", p1, nil)), ""},
		{"PKCS#1 PEM in .key", write(t, dir, "k1.key", pemOf("RSA PRIVATE KEY", p1, nil)), ""},
		{"PKCS#8 PEM in .pem", write(t, dir, "k8.pem", pemOf("PRIVATE KEY", p8, nil)), ""},
		{"PKCS#1 DER", write(t, dir, "k1.der", p1), ""},
		{"PKCS#8 DER in .key", write(t, dir, "k8der.key", p8), ""},
		{"key after a certificate in one PEM", write(t, dir, "both.pem", append(pemOf("CERTIFICATE", kp.CertDER, nil), pemOf("PRIVATE KEY", p8, nil)...)), ""},
		{"encrypted PKCS#8", write(t, dir, "enc8.key", pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}, nil)), "encrypted with a passphrase"},
		{"encrypted legacy PEM", write(t, dir, "enc1.key", pemOf("RSA PRIVATE KEY", []byte{1, 2, 3}, map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"})), "encrypted with a passphrase"},
		{"EC SEC1 PEM", write(t, dir, "ec.key", pemOf("EC PRIVATE KEY", ecSEC1, nil)), "EC key; OPC UA Basic256Sha256 needs an RSA key"},
		{"EC PKCS#8 PEM", write(t, dir, "ec8.key", pemOf("PRIVATE KEY", ecP8, nil)), "EC key"},
		{"EC SEC1 DER", write(t, dir, "ec.der", ecSEC1), "EC key"},
		{"Ed25519 PKCS#8", write(t, dir, "ed.key", pemOf("PRIVATE KEY", edP8, nil)), "Ed25519 key"},
		{"certificate given as key (PEM)", kp.CertFile, "holds a certificate, not a private key"},
		{"certificate given as key (DER)", write(t, dir, "cert.der", kp.CertDER), "holds a certificate, not a private key"},
		{"garbage", write(t, dir, "junk.key", []byte("hello")), "not an RSA private key"},
		{"PEM without a key", write(t, dir, "csr.pem", pemOf("CERTIFICATE REQUEST", []byte{1}, nil)), "no PRIVATE KEY block (it holds CERTIFICATE REQUEST)"},
		{"corrupt PKCS#8 PEM", write(t, dir, "bad8.key", pemOf("PRIVATE KEY", []byte{1, 2, 3}, nil)), "not an RSA private key"},
		{"missing file", filepath.Join(dir, "nope.key"), "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadPrivateKey(tc.file)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !k.Equal(kp.Key) {
					t.Fatal("loaded a different key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), filepath.Base(tc.file)) {
				t.Errorf("err = %v does not name the file", err)
			}
		})
	}
}

func TestLoadCertificate(t *testing.T) {
	kp := uasectest.New(t, "client")
	dir := t.TempDir()
	p8, _ := x509.MarshalPKCS8PrivateKey(kp.Key)
	tests := []struct {
		name, file, want string
	}{
		{"PEM in .crt", kp.CertFile, ""},
		{"PEM in .der (wrong extension)", write(t, dir, "c.der", pemOf("CERTIFICATE", kp.CertDER, nil)), ""},
		{"DER in .pem (wrong extension)", write(t, dir, "c.pem", kp.CertDER), ""},
		{"DER in .cer", write(t, dir, "c.cer", kp.CertDER), ""},
		{"key first, then certificate", write(t, dir, "kc.pem", append(pemOf("PRIVATE KEY", p8, nil), pemOf("CERTIFICATE", kp.CertDER, nil)...)), ""},
		{"only a key", kp.KeyFile, "no CERTIFICATE block (it holds PRIVATE KEY)"},
		{"corrupt PEM certificate", write(t, dir, "bad.crt", pemOf("CERTIFICATE", []byte{1, 2}, nil)), "not a valid X.509 certificate"},
		{"garbage", write(t, dir, "junk.crt", []byte("junk")), "neither a PEM nor a DER X.509 certificate"},
		{"missing", filepath.Join(dir, "none.crt"), "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := LoadCertificate(tc.file)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if string(der) != string(kp.CertDER) {
					t.Fatal("loaded a different certificate")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadKeyPair(t *testing.T) {
	a, b := uasectest.New(t, "a"), uasectest.New(t, "b")
	if _, _, err := LoadKeyPair(a.CertFile, a.KeyFile); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadKeyPair(a.CertFile, b.KeyFile)
	if err == nil || !strings.Contains(err.Error(), "does not belong to certificate") || !strings.Contains(err.Error(), Thumbprint(a.CertDER)) {
		t.Fatalf("mismatched pair: %v", err)
	}
}

func TestThumbprint(t *testing.T) {
	der := []byte("any bytes")
	sum := sha256.Sum256(der)
	got := Thumbprint(der)
	if len(got) != 95 || strings.ToUpper(got) != got || strings.ReplaceAll(got, ":", "") != strings.ToUpper(fmt.Sprintf("%x", sum)) {
		t.Fatalf("Thumbprint = %s", got)
	}
	for _, in := range []string{got, strings.ToLower(got), strings.ReplaceAll(got, ":", ""), strings.ReplaceAll(got, ":", " ")} {
		if n, ok := normThumbprint(in); !ok || n != got {
			t.Errorf("normThumbprint(%q) = %q, %v", in, n, ok)
		}
	}
	for _, in := range []string{"", "AB", got + ":00", "G" + got[1:]} {
		if _, ok := normThumbprint(in); ok {
			t.Errorf("normThumbprint(%q) accepted", in)
		}
	}
}

func TestTrustValidate(t *testing.T) {
	tests := []struct {
		name   string
		tc     TrustConfig
		policy string
		want   string
	}{
		{"none needs nothing", TrustConfig{}, "None", ""},
		{"empty policy needs nothing", TrustConfig{}, "", ""},
		{"secure with a trust list", TrustConfig{Trusted: []string{"srv.crt"}}, "Basic256Sha256", ""},
		{"secure with first-use", TrustConfig{Pinning: "first-use", PinFile: "pins.txt"}, "Basic256Sha256", ""},
		{"secure with both", TrustConfig{Trusted: []string{"ca.crt"}, Pinning: "first-use", PinFile: "p"}, "Basic256Sha256", ""},
		{"secure with nothing", TrustConfig{}, "Basic256Sha256", "plc.opcua: security_policy Basic256Sha256 needs trust.trusted certificates or trust.pinning: first-use"},
		{"secure with pinning off", TrustConfig{Pinning: "off"}, "Basic256Sha256", "needs trust.trusted certificates or trust.pinning: first-use"},
		{"first-use without file", TrustConfig{Pinning: "first-use"}, "Basic256Sha256", "plc.opcua.trust.pin_file: must be set with pinning: first-use"},
		{"pin file with pinning off", TrustConfig{Trusted: []string{"a"}, PinFile: "p"}, "Basic256Sha256", "plc.opcua.trust.pin_file: \"p\" is only used with pinning: first-use"},
		{"unknown pinning", TrustConfig{Pinning: "always"}, "None", `plc.opcua.trust.pinning: "always" is not off or first-use`},
		{"empty trusted entry", TrustConfig{Trusted: []string{"a", " "}}, "Basic256Sha256", "plc.opcua.trust.trusted[1]: empty path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.tc.Validate("plc.opcua", tc.policy)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckTrustList(t *testing.T) {
	srv := uasectest.NewWith(t, "server", uasectest.Options{CommonName: "printer line 1"})
	other := uasectest.New(t, "other")
	ca := uasectest.NewWith(t, "ca", uasectest.Options{CA: true})
	signed := uasectest.NewWith(t, "signed", uasectest.Options{Parent: &ca})
	dir := t.TempDir()
	write(t, dir, "server.der", srv.CertDER)
	write(t, dir, "other.crt", pemOf("CERTIFICATE", other.CertDER, nil))
	const ep = "opc.tcp://127.0.0.1:4840"
	tests := []struct {
		name    string
		trusted []string
		cert    []byte
		want    string
	}{
		{"the same certificate (PEM file)", []string{srv.CertFile}, srv.CertDER, ""},
		{"a folder holding it (DER)", []string{dir}, srv.CertDER, ""},
		{"signed by a trusted CA", []string{other.CertFile, ca.CertFile}, signed.CertDER, ""},
		{"a self-signed server is not a CA", []string{srv.CertFile}, other.CertDER, "not in trust.trusted"},
		{"unknown server", []string{other.CertFile}, srv.CertDER, "not in trust.trusted"},
		{"missing trusted file", []string{filepath.Join(dir, "gone.crt")}, srv.CertDER, "trust.trusted: stat"},
		{"unreadable server certificate", []string{srv.CertFile}, []byte("junk"), "its certificate cannot be read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := TrustConfig{Trusted: tc.trusted}.Check(ep, tc.cert)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want %q", err, tc.want)
			}
		})
	}
	// The refusal names the server, the certificate and what to do.
	err := TrustConfig{Trusted: []string{other.CertFile}}.Check(ep, srv.CertDER)
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("not ErrUntrusted: %v", err)
	}
	for _, want := range []string{ep, "CN=printer line 1", Thumbprint(srv.CertDER), "add the file to trust.trusted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
}

func TestCheckExpiredCAChain(t *testing.T) {
	ca := uasectest.NewWith(t, "ca", uasectest.Options{CA: true})
	old := uasectest.NewWith(t, "old", uasectest.Options{Parent: &ca, NotAfter: time.Now().Add(-time.Minute)})
	err := TrustConfig{Trusted: []string{ca.CertFile}}.Check("opc.tcp://h:1", old.CertDER)
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("an expired certificate under a trusted CA: %v", err)
	}
}

func TestCheckFirstUse(t *testing.T) {
	a, b := uasectest.New(t, "a"), uasectest.New(t, "b")
	pins := filepath.Join(t.TempDir(), "pins.txt")
	tc := TrustConfig{Pinning: PinningFirstUse, PinFile: pins}
	const ep1, ep2 = "opc.tcp://10.0.0.21:4840", "opc.tcp://10.0.0.22:4840"
	if err := tc.Check(ep1, a.CertDER); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := tc.Check(ep1, a.CertDER); err != nil {
		t.Fatalf("same certificate again: %v", err)
	}
	if err := tc.Check(ep2, b.CertDER); err != nil {
		t.Fatalf("another server, first use: %v", err)
	}
	err := tc.Check(ep1, b.CertDER)
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("changed certificate accepted: %v", err)
	}
	for _, want := range []string{ep1, "changed since it was pinned", Thumbprint(a.CertDER), Thumbprint(b.CertDER), `subject "CN=b`, "delete the server's line"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	// The trust list wins over a pin.
	tc.Trusted = []string{b.CertFile}
	if err := tc.Check(ep1, b.CertDER); err != nil {
		t.Fatalf("trusted certificate refused because of a pin: %v", err)
	}
	// Deleting the line accepts the next certificate on first use.
	raw, _ := os.ReadFile(pins)
	var keep []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, ep1+" ") {
			keep = append(keep, l)
		}
	}
	write(t, filepath.Dir(pins), "pins.txt", []byte(strings.Join(keep, "\n")))
	tc.Trusted = nil
	if err := tc.Check(ep1, b.CertDER); err != nil {
		t.Fatalf("after deleting the pin: %v", err)
	}
	got, err := parsePins(mustRead(t, pins))
	if err != nil || len(got) != 2 {
		t.Fatalf("pins = %+v, %v", got, err)
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckFirstUseConcurrent(t *testing.T) {
	kp := uasectest.New(t, "a")
	pins := filepath.Join(t.TempDir(), "pins.txt")
	tc := TrustConfig{Pinning: PinningFirstUse, PinFile: pins}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() { errs <- tc.Check(fmt.Sprintf("opc.tcp://h:%d", 4840+i), kp.CertDER) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := parsePins(mustRead(t, pins))
	if err != nil || len(got) != 8 {
		t.Fatalf("%d pins, %v; want 8", len(got), err)
	}
}

func TestParsePinsErrors(t *testing.T) {
	tp := Thumbprint([]byte("x"))
	tests := []struct{ in, want string }{
		{"opc.tcp://a:1\n", "line 1: \"opc.tcp://a:1\" is not <endpoint URL> <SHA-256 thumbprint>"},
		{"# c\nopc.tcp://a:1 ABCD\n", "line 2: \"ABCD\" is not a SHA-256 thumbprint"},
		{"opc.tcp://a:1 " + tp + "\nopc.tcp://a:1 " + tp + "\n", "endpoint opc.tcp://a:1 is pinned twice"},
	}
	for _, tc := range tests {
		if _, err := parsePins([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parsePins(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	// A broken pin file refuses the connection and names the file.
	pins := write(t, t.TempDir(), "pins.txt", []byte("garbage\n"))
	err := TrustConfig{Pinning: PinningFirstUse, PinFile: pins}.Check("opc.tcp://a:1", uasectest.New(t, "a").CertDER)
	if err == nil || !strings.Contains(err.Error(), "pins.txt: line 1") {
		t.Fatalf("broken pin file: %v", err)
	}
}

// FuzzParsePins: the pin file is edited by people; parsing never panics and
// whatever parses writes back to the same pins.
func FuzzParsePins(f *testing.F) {
	tp := Thumbprint([]byte("x"))
	f.Add([]byte(pinHeader + "opc.tcp://10.0.0.21:4840 " + tp + " CN=printer,O=Acme\n"))
	f.Add([]byte("opc.tcp://a:1 " + strings.ReplaceAll(tp, ":", "") + "\n\n# x\n"))
	f.Add([]byte("opc.tcp://a:1\n"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pins, err := parsePins(b)
		if err != nil {
			return
		}
		file := filepath.Join(t.TempDir(), "pins")
		if err := writePins(file, pins); err != nil {
			t.Fatal(err)
		}
		again, err := parsePins(mustRead(t, file))
		if err != nil || len(again) != len(pins) {
			t.Fatalf("round trip: %d pins → %d, %v", len(pins), len(again), err)
		}
		for i := range pins {
			if again[i].endpoint != pins[i].endpoint || again[i].thumbprint != pins[i].thumbprint {
				t.Fatalf("round trip changed pin %d: %+v → %+v", i, pins[i], again[i])
			}
		}
	})
}

// FuzzParseKey: key and certificate files come from outside; the loaders
// never panic.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		parsePrivateKey(b)
		parseCertificate(b)
	})
}

// Package uasectest makes OPC UA application instance certificates for
// tests: self-signed RSA key pairs written the way openssl writes them
// (PKCS#8 PEM in a .key file, PEM certificate in a .crt file). Only tests
// import it.
package uasectest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// KeyPair is a certificate and its private key, in memory and on disk.
type KeyPair struct {
	CertFile string // PEM certificate (<name>.crt)
	KeyFile  string // PKCS#8 PEM private key (<name>.key)
	CertDER  []byte
	Key      *rsa.PrivateKey
	URI      string // the application URI in the certificate
}

// Options shape a generated certificate; zero values take defaults.
type Options struct {
	CommonName string // default: name
	URI        string // application URI SAN; default "urn:tracline:test:<name>"
	CA         bool   // mark the certificate as a CA (it then signs nothing here)
	// Parent signs the certificate instead of its own key (a CA pair).
	Parent *KeyPair
	// NotAfter defaults to one day from now.
	NotAfter time.Time
}

// New generates a 2048-bit RSA key pair with a self-signed certificate
// (for localhost, 127.0.0.1 and the application URI) and writes it into a
// temporary folder of t as <name>.crt and <name>.key.
func New(t testing.TB, name string) KeyPair {
	t.Helper()
	return NewWith(t, name, Options{})
}

// NewWith is New with options.
func NewWith(t testing.TB, name string, o Options) KeyPair {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if o.CommonName == "" {
		o.CommonName = name
	}
	if o.URI == "" {
		o.URI = "urn:tracline:test:" + name
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	uri, err := url.Parse(o.URI)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.CommonName, Organization: []string{"Tracline tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     o.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{uri},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
		IsCA:                  o.CA,
	}
	parent, signer := tmpl, key
	if o.Parent != nil {
		pc, err := x509.ParseCertificate(o.Parent.CertDER)
		if err != nil {
			t.Fatal(err)
		}
		parent, signer = pc, o.Parent.Key
		tmpl.KeyUsage &^= x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kp := KeyPair{
		CertFile: filepath.Join(dir, name+".crt"),
		KeyFile:  filepath.Join(dir, name+".key"),
		CertDER:  der,
		Key:      key,
		URI:      o.URI,
	}
	if err := os.WriteFile(kp.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return kp
}

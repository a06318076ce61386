// Package uasec is the OPC UA security of every Tracline client (the PLC
// driver plc/opcua and the record streams of printer/uarecord): one loader
// for the client's certificate and private key, whatever format an engineer
// or openssl produced, and the check of the server's certificate against a
// trust list or a first-use pin before any secure session is opened.
//
// It knows certificates, keys and thumbprints, not the OPC UA library: the
// drivers hand it the DER certificate a server offers in GetEndpoints and
// connect only if Check accepts it. Any Tracline package may import it.
package uasec

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadCertificate reads an X.509 certificate from file, PEM or DER, whatever
// the file's extension, and returns it as DER. A PEM file may hold other
// blocks (a key, a chain): the first CERTIFICATE block is taken.
func LoadCertificate(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	der, err := parseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", file, err)
	}
	return der, nil
}

func parseCertificate(b []byte) ([]byte, error) {
	if blocks := pemBlocks(b); len(blocks) > 0 {
		var types []string
		for _, blk := range blocks {
			if blk.Type == "CERTIFICATE" || blk.Type == "X509 CERTIFICATE" {
				if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
					return nil, fmt.Errorf("PEM CERTIFICATE block is not a valid X.509 certificate: %v", err)
				}
				return blk.Bytes, nil
			}
			types = append(types, blk.Type)
		}
		return nil, fmt.Errorf("PEM file has no CERTIFICATE block (it holds %s)", strings.Join(types, ", "))
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("neither a PEM nor a DER X.509 certificate: %v", err)
	}
	return b, nil
}

// LoadPrivateKey reads the client's RSA private key from file: PKCS#1
// ("BEGIN RSA PRIVATE KEY", what older tools write) or PKCS#8 ("BEGIN
// PRIVATE KEY", openssl's default), in PEM (any file extension) or DER.
// Encrypted keys and non-RSA keys are refused with an error that says so.
func LoadPrivateKey(file string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	k, err := parsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", file, err)
	}
	return k, nil
}

// errEncrypted says how to get a key Tracline can read.
var errEncrypted = errors.New("the key is encrypted with a passphrase, which Tracline does not support: " +
	"store it unencrypted with file permissions 0600 (openssl pkey -in encrypted.key -out client.key)")

func parsePrivateKey(b []byte) (*rsa.PrivateKey, error) {
	if blocks := pemBlocks(b); len(blocks) > 0 {
		var types []string
		for _, blk := range blocks {
			switch {
			case blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] == "4,ENCRYPTED":
				return nil, errEncrypted
			case blk.Type == "EC PRIVATE KEY":
				return nil, errors.New("the key is an EC key; OPC UA Basic256Sha256 needs an RSA key (2048 bits or more)")
			case strings.HasSuffix(blk.Type, "PRIVATE KEY"):
				return parseKeyDER(blk.Bytes)
			}
			types = append(types, blk.Type)
		}
		if len(types) == 1 && types[0] == "CERTIFICATE" {
			return nil, errors.New("the file holds a certificate, not a private key (are certificate and key swapped?)")
		}
		return nil, fmt.Errorf("PEM file has no PRIVATE KEY block (it holds %s)", strings.Join(types, ", "))
	}
	return parseKeyDER(b)
}

func parseKeyDER(der []byte) (*rsa.PrivateKey, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if _, ecErr := x509.ParseECPrivateKey(der); ecErr == nil {
			return nil, errors.New("the key is an EC key; OPC UA Basic256Sha256 needs an RSA key (2048 bits or more)")
		}
		if _, certErr := x509.ParseCertificate(der); certErr == nil {
			return nil, errors.New("the file holds a certificate, not a private key (are certificate and key swapped?)")
		}
		return nil, errors.New("not an RSA private key in PKCS#1 or PKCS#8 form, PEM or DER (an encrypted DER key is not supported either)")
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return nil, errors.New("the key is an EC key; OPC UA Basic256Sha256 needs an RSA key (2048 bits or more)")
	case ed25519.PrivateKey:
		return nil, errors.New("the key is an Ed25519 key; OPC UA Basic256Sha256 needs an RSA key (2048 bits or more)")
	default:
		return nil, fmt.Errorf("the key is a %T; OPC UA Basic256Sha256 needs an RSA key", k)
	}
}

// LoadKeyPair loads the client's certificate and private key (see
// LoadCertificate and LoadPrivateKey) and checks that they belong together.
func LoadKeyPair(certFile, keyFile string) (certDER []byte, key *rsa.PrivateKey, err error) {
	if certDER, err = LoadCertificate(certFile); err != nil {
		return nil, nil, err
	}
	if key, err = LoadPrivateKey(keyFile); err != nil {
		return nil, nil, err
	}
	cert, _ := x509.ParseCertificate(certDER) // LoadCertificate parsed it
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, nil, fmt.Errorf("certificate %s: its public key is %T; OPC UA Basic256Sha256 needs RSA", certFile, cert.PublicKey)
	}
	if !pub.Equal(&key.PublicKey) {
		return nil, nil, fmt.Errorf("private key %s does not belong to certificate %s (%s)", keyFile, certFile, Describe(certDER))
	}
	return certDER, key, nil
}

// ServerCertificate returns the server's own certificate (DER) from the
// certificate an endpoint description offers, which OPC UA allows to be
// the server's certificate followed by its issuers' (a chain).
func ServerCertificate(endpointCert []byte) ([]byte, error) {
	if len(endpointCert) == 0 {
		return nil, errors.New("the server offers no certificate")
	}
	certs, err := x509.ParseCertificates(endpointCert)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("the server's certificate cannot be read: %v", err)
	}
	return certs[0].Raw, nil
}

// pemBlocks returns the PEM blocks of b (none if b is not PEM).
func pemBlocks(b []byte) []*pem.Block {
	var out []*pem.Block
	for {
		blk, rest := pem.Decode(b)
		if blk == nil {
			return out
		}
		out = append(out, blk)
		b = rest
	}
}

// Thumbprint is the SHA-256 fingerprint of a DER certificate as openssl
// prints it (openssl x509 -noout -fingerprint -sha256): upper-case hex
// pairs separated by colons.
func Thumbprint(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return formatThumbprint(sum[:])
}

func formatThumbprint(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// normThumbprint accepts a SHA-256 thumbprint with or without colons or
// spaces, any case, and returns it as Thumbprint formats it.
func normThumbprint(s string) (string, bool) {
	s = strings.NewReplacer(":", "", " ", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return formatThumbprint(b), true
}

// Describe names a DER certificate for people: subject, SHA-256 thumbprint
// and validity.
func Describe(certDER []byte) string {
	c, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Sprintf("unparsable certificate, SHA-256 %s", Thumbprint(certDER))
	}
	return fmt.Sprintf("subject %q, SHA-256 %s, valid %s to %s", c.Subject.String(), Thumbprint(certDER),
		c.NotBefore.UTC().Format("2006-01-02"), c.NotAfter.UTC().Format("2006-01-02"))
}

func sameDER(a, b []byte) bool { return len(a) > 0 && bytes.Equal(a, b) }

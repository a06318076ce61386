package uasec

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Pinning modes (TrustConfig.Pinning).
const (
	PinningOff      = "off"       // only the trust list decides (default)
	PinningFirstUse = "first-use" // an unknown server's certificate is pinned on first connection
)

// PolicyBasic256Sha256 is the one secure policy Tracline offers; with it the
// server's certificate must be trusted.
const PolicyBasic256Sha256 = "Basic256Sha256"

// ErrUntrusted marks a server refused because its certificate is not
// trusted. The error names the certificate and what to do.
var ErrUntrusted = errors.New("server certificate not trusted")

// TrustConfig says which OPC UA servers a client accepts under a secure
// policy (yaml key "trust" beside the connection's security settings).
type TrustConfig struct {
	// Trusted lists certificate files (PEM or DER, any extension) or
	// folders of them. A server is trusted if its certificate is one of
	// them, or is signed by one of them that is a CA certificate.
	Trusted []string `yaml:"trusted" json:"trusted,omitempty"`
	// Pinning: "off" (default) or "first-use": a server the trust list does
	// not know is accepted on its first connection and its certificate's
	// SHA-256 thumbprint recorded in PinFile; from then on only that
	// certificate is accepted for that endpoint.
	Pinning string `yaml:"pinning" json:"pinning,omitempty"`
	// PinFile records the pinned thumbprints (required with first-use).
	// One line per endpoint; delete a line to accept that server's next
	// certificate on first use again.
	PinFile string `yaml:"pin_file" json:"pin_file,omitempty"`
}

// Validate checks the settings. prefix is the config path of the block the
// trust settings sit in (e.g. "plc.opcua"); policy is that connection's
// security policy: with Basic256Sha256, an empty trust list and pinning off
// is an error, since then no server could be checked.
func (t TrustConfig) Validate(prefix, policy string) error {
	var errs []error
	p := prefix + ".trust"
	for i, f := range t.Trusted {
		if strings.TrimSpace(f) == "" {
			errs = append(errs, fmt.Errorf("%s.trusted[%d]: empty path (a certificate file or a folder of them)", p, i))
		}
	}
	switch t.Pinning {
	case "", PinningOff:
		if t.PinFile != "" {
			errs = append(errs, fmt.Errorf("%s.pin_file: %q is only used with pinning: first-use (pinning is off)", p, t.PinFile))
		}
	case PinningFirstUse:
		if t.PinFile == "" {
			errs = append(errs, fmt.Errorf("%s.pin_file: must be set with pinning: first-use (the file where each server's certificate thumbprint is recorded)", p))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.pinning: %q is not off or first-use", p, t.Pinning))
	}
	if policy == PolicyBasic256Sha256 && len(t.Trusted) == 0 && t.Pinning != PinningFirstUse {
		errs = append(errs, fmt.Errorf("%s: security_policy Basic256Sha256 needs trust.trusted certificates or trust.pinning: first-use "+
			"(otherwise any server, or an impostor, would be accepted)", prefix))
	}
	return errors.Join(errs...)
}

// Check decides whether the server at endpointURL, offering the DER
// certificate serverCertDER, may be connected to. A certificate equal to a
// trusted one, or signed by a trusted CA certificate (and valid now), is
// accepted. Otherwise, with pinning first-use, a certificate is accepted
// and pinned if the pin file knows nothing of endpointURL, and accepted
// again only if it is the pinned one. Anything else is refused with an error
// wrapping ErrUntrusted that names the certificate and what to do.
//
// serverCertDER may be a chain (the server's certificate followed by its
// issuers', as OPC UA allows): the first is the server's, the others may
// link it to a trusted CA.
func (t TrustConfig) Check(endpointURL string, serverCertDER []byte) error {
	chain, err := x509.ParseCertificates(serverCertDER)
	if err == nil && len(chain) == 0 {
		err = errors.New("no certificate")
	}
	if err != nil {
		return fmt.Errorf("opc ua server %s: its certificate cannot be read (%v): %w", endpointURL, err, ErrUntrusted)
	}
	cert := chain[0]
	serverCertDER = cert.Raw
	ok, err := t.inTrustList(cert, chain[1:])
	if err != nil {
		return fmt.Errorf("opc ua server %s: trust.trusted: %w", endpointURL, err)
	}
	if ok {
		return nil
	}
	if t.Pinning == PinningFirstUse {
		return t.checkPin(endpointURL, serverCertDER)
	}
	return fmt.Errorf("opc ua server %s: its certificate is not in trust.trusted (%s): %w; "+
		"if this is the right server, get its certificate (from the server, or as offered: check the thumbprint with the server's administrator) "+
		"and add the file to trust.trusted",
		endpointURL, Describe(serverCertDER), ErrUntrusted)
}

// inTrustList reports whether cert is a trusted certificate or is signed
// by a trusted CA certificate. An unreadable trusted entry is an error.
func (t TrustConfig) inTrustList(cert *x509.Certificate, issuers []*x509.Certificate) (bool, error) {
	roots := x509.NewCertPool()
	haveCA := false
	for _, entry := range t.Trusted {
		files, err := certFiles(entry)
		if err != nil {
			return false, err
		}
		for _, f := range files {
			der, err := LoadCertificate(f)
			if err != nil {
				return false, err
			}
			if bytes.Equal(der, cert.Raw) {
				return true, nil
			}
			tc, _ := x509.ParseCertificate(der)
			if tc.BasicConstraintsValid && tc.IsCA {
				roots.AddCert(tc)
				haveCA = true
			}
		}
	}
	if !haveCA {
		return false, nil
	}
	inter := x509.NewCertPool()
	for _, c := range issuers {
		inter.AddCert(c)
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil, nil
}

// certFiles lists entry itself, or the regular files in it if it is a
// folder (not recursive; hidden files skipped).
func certFiles(entry string) ([]string, error) {
	st, err := os.Stat(entry)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{entry}, nil
	}
	des, err := os.ReadDir(entry)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		if de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		out = append(out, filepath.Join(entry, de.Name()))
	}
	return out, nil
}

// pinMu serialises read-modify-write of pin files within this process:
// the printer, the cameras and the PLC may share one pin file and connect
// at the same moment. It is package state because the file it guards is
// process-wide state too. Writes are atomic (temporary file + rename).
var pinMu sync.Mutex

func (t TrustConfig) checkPin(endpointURL string, der []byte) error {
	pinMu.Lock()
	defer pinMu.Unlock()
	b, err := os.ReadFile(t.PinFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("opc ua server %s: trust.pin_file: %w", endpointURL, err)
	}
	pins, err := parsePins(b)
	if err != nil {
		return fmt.Errorf("opc ua server %s: trust.pin_file %s: %w", endpointURL, t.PinFile, err)
	}
	got := Thumbprint(der)
	if i := slices.IndexFunc(pins, func(p pin) bool { return p.endpoint == endpointURL }); i >= 0 {
		if pins[i].thumbprint == got {
			return nil
		}
		return fmt.Errorf("opc ua server %s: its certificate changed since it was pinned in %s (pinned SHA-256 %s; now %s): %w; "+
			"if the server was given a new certificate on purpose, check the thumbprint with its administrator, "+
			"then add the certificate to trust.trusted or delete the server's line from the pin file",
			endpointURL, t.PinFile, pins[i].thumbprint, Describe(der), ErrUntrusted)
	}
	subject := ""
	if c, err := x509.ParseCertificate(der); err == nil {
		subject = c.Subject.String()
	}
	pins = append(pins, pin{endpoint: endpointURL, thumbprint: got, subject: subject})
	if err := writePins(t.PinFile, pins); err != nil {
		return fmt.Errorf("opc ua server %s: pinning its certificate (%s): %w", endpointURL, Describe(der), err)
	}
	return nil
}

type pin struct {
	endpoint, thumbprint, subject string
}

const pinHeader = `# Tracline OPC UA server certificate pins (trust.pinning: first-use).
# One line per server: endpoint URL, SHA-256 thumbprint of the certificate
# accepted on first use, its subject. Delete a server's line to accept its
# next certificate on first use again.
`

// parsePins reads a pin file: "# comment" and blank lines, then lines of
// endpoint URL, SHA-256 thumbprint and an optional subject.
func parsePins(b []byte) ([]pin, error) {
	var pins []pin
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: %q is not <endpoint URL> <SHA-256 thumbprint> [subject]", n, line)
		}
		tp, ok := normThumbprint(f[1])
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not a SHA-256 thumbprint (64 hex digits, colons allowed)", n, f[1])
		}
		if slices.ContainsFunc(pins, func(p pin) bool { return p.endpoint == f[0] }) {
			return nil, fmt.Errorf("line %d: endpoint %s is pinned twice", n, f[0])
		}
		pins = append(pins, pin{endpoint: f[0], thumbprint: tp, subject: strings.Join(f[2:], " ")})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return pins, nil
}

func writePins(file string, pins []pin) error {
	var b strings.Builder
	b.WriteString(pinHeader)
	for _, p := range pins {
		fmt.Fprintf(&b, "%s %s %s\n", p.endpoint, p.thumbprint, strings.Join(strings.Fields(p.subject), " "))
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

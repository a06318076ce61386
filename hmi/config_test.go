package hmi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tracline/tracline/hmi"
)

// TestConfigValidate: the TLS and proxy settings' mistakes are named by
// their config key.
func TestConfigValidate(t *testing.T) {
	rg := newRig(t, rigOpts{})
	cert, key, _ := selfSigned(t)
	other, _, _ := selfSigned(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := hmi.Config{Store: rg.store, Line: rg.runner, Accounts: rg.acc}
	for _, tc := range []struct {
		name    string
		change  func(*hmi.Config)
		want    string // "" = valid
		wantToo string
	}{
		{"no TLS", func(c *hmi.Config) {}, "", ""},
		{"TLS", func(c *hmi.Config) { c.CertFile, c.KeyFile = cert, key }, "", ""},
		{"cert without key", func(c *hmi.Config) { c.CertFile = cert }, "hmi.tls.key_file", "required"},
		{"key without cert", func(c *hmi.Config) { c.KeyFile = key }, "hmi.tls.cert_file", "required"},
		{"missing cert file", func(c *hmi.Config) { c.CertFile, c.KeyFile = cert+".gone", key }, "hmi.tls.cert_file", "no such file"},
		{"missing key file", func(c *hmi.Config) { c.CertFile, c.KeyFile = cert, key+".gone" }, "hmi.tls.key_file", "no such file"},
		{"not a certificate", func(c *hmi.Config) { c.CertFile, c.KeyFile = garbage, key }, "hmi.tls: cert_file", "garbage.pem"},
		{"key of another certificate", func(c *hmi.Config) { c.CertFile, c.KeyFile = other, key }, "hmi.tls: cert_file", "does not match"},
		{"proxy range", func(c *hmi.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.10/32", "fd00::/8"} }, "", ""},
		{"proxy not a range", func(c *hmi.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.1.2.3"} }, "hmi.trusted_proxies[1]", "not a CIDR range"},
		{"proxy everyone", func(c *hmi.Config) { c.TrustedProxies = []string{"0.0.0.0/0"} }, "hmi.trusted_proxies[0]", "trusts every address"},
		{"proxy everyone v6", func(c *hmi.Config) { c.TrustedProxies = []string{"::/0"} }, "hmi.trusted_proxies[0]", "trusts every address"},
		{"negative idle", func(c *hmi.Config) { c.IdleTimeout = -1 }, "hmi.idle_timeout", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.change(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.wantToo) {
				t.Fatalf("got %v, want %q … %q", err, tc.want, tc.wantToo)
			}
		})
	}
}

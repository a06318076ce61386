package receiver

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func zipped(t *testing.T, name, content string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func uploadBody(t *testing.T, mod func(*Upload)) string {
	u := Upload{DocID: "d1", Batch: "B1", Format: "msfx-xml", FileName: "d1.xml", SHA256: sha(goodRelation), File: zipped(t, "d1.xml", goodRelation)}
	if mod != nil {
		mod(&u)
	}
	b, _ := json.Marshal(u)
	return string(b)
}

// TestSubmissions posts to both receivers directly and reads their answers.
func TestSubmissions(t *testing.T) {
	capture, err := NewCapture(Config{Token: "tok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	platform, err := NewPlatform(Config{Token: "tok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := platform.Start(); err != nil {
		t.Fatal(err)
	}
	defer platform.Close()
	platform.Expect("B1", []string{"80000010000000000001", "80000010000000000002", "80000020000000000001"})

	tests := []struct {
		name   string
		url    string
		ct     string
		token  string
		key    string
		body   string
		status int
		want   string // in the answer
	}{
		{"capture no token", capture.URL() + "/capture", "application/ld+json", "", "k0", goodJSON, 401, "bearer token"},
		{"capture json", capture.URL() + "/capture", "application/ld+json", "tok", "k1", goodJSON, 202, "captureID"},
		{"capture xml", capture.URL() + "/capture", "application/xml", "tok", "k2", goodXML, 202, "captureID"},
		{"capture same key", capture.URL() + "/capture", "application/ld+json", "tok", "k1", goodJSON, 202, "job-1"},
		{"capture same key, other content", capture.URL() + "/capture", "application/ld+json", "tok", "k1", goodJSON + "\n", 202, "job-1"},
		{"capture not json", capture.URL() + "/capture", "application/ld+json", "tok", "k3", "{", 400, "not a JSON document"},
		{"capture csv", capture.URL() + "/capture", "text/csv", "tok", "k4", "a,b", 415, "content type"},
		{"upload", platform.URL() + "/relation/upload", "application/json", "tok", "", uploadBody(t, nil), 202, `"status":"pending"`},
		{"upload again", platform.URL() + "/relation/upload", "application/json", "tok", "", uploadBody(t, nil), 202, `"process_id":"job-1"`},
		{"upload not json", platform.URL() + "/relation/upload", "application/json", "tok", "", "{", 400, "not an upload"},
		{"upload bad base64", platform.URL() + "/relation/upload", "application/json", "tok", "", uploadBody(t, func(u *Upload) { u.DocID, u.File = "d2", "***" }), 400, "not base64"},
		{"upload not zip", platform.URL() + "/relation/upload", "application/json", "tok", "", uploadBody(t, func(u *Upload) { u.DocID, u.File = "d3", "aGVsbG8=" }), 400, "not a zip"},
		{"upload wrong sha", platform.URL() + "/relation/upload", "application/json", "tok", "", uploadBody(t, func(u *Upload) { u.DocID, u.SHA256 = "d4", sha("x") }), 400, "SHA-256"},
		{"upload wrong format", platform.URL() + "/relation/upload", "application/json", "tok", "", uploadBody(t, func(u *Upload) { u.DocID, u.Format = "d5", "epcis-json" }), 400, "want msfx-xml"},
		{"upload broken xml", platform.URL() + "/relation/upload", "application/json", "tok", "", uploadBody(t, func(u *Upload) {
			u.DocID, u.SHA256, u.File = "d6", sha("<Document>"), zipped(t, "d1.xml", "<Document>")
		}), 400, "not well-formed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tc.url, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.key != "" {
				req.Header.Set("Idempotency-Key", tc.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("HTTP %d %s, want %d with %q", resp.StatusCode, b, tc.status, tc.want)
			}
			if tc.status == 202 && strings.HasPrefix(tc.url, capture.URL()) && resp.Header.Get("Location") == "" {
				t.Error("202 without Location")
			}
		})
	}
	get := func(url string, v any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var cj CaptureJob
	get(capture.URL()+"/capture/job-1", &cj)
	if cj.Running || !cj.Success || cj.CaptureErrorBehaviour != "rollback" || !strings.Contains(cj.Report, "accepted") {
		t.Errorf("capture job %+v", cj)
	}
	var st Status
	get(platform.URL()+"/relation/status/job-1", &st)
	if st.Status != "success" || !strings.Contains(st.Report, "all 3 expected codes present") {
		t.Errorf("upload status %+v", st)
	}
	var sum Summary
	get(capture.URL()+"/summary", &sum)
	if sum.Received != 6 || sum.Accepted != 2 || sum.Duplicates != 2 || sum.Refused != 3 || sum.Conflicts != 1 {
		t.Errorf("capture summary %+v", sum)
	}
	// Every submission whose content was read, with the content's hash:
	// the same key twice with the same content, then with another (a
	// conflict); the unreadable ones refused.
	want := []Submission{{"k1", sha(goodJSON), "new"}, {"k2", sha(goodXML), "new"}, {"k1", sha(goodJSON), "duplicate"},
		{"k1", sha(goodJSON + "\n"), "duplicate"}, {"k3", sha("{"), "refused"}, {"k4", sha("a,b"), "refused"}}
	if fmt.Sprint(sum.Submissions) != fmt.Sprint(want) {
		t.Errorf("capture submissions\n%v, want\n%v", sum.Submissions, want)
	}
	ps := platform.Summary()
	if ps.Accepted != 1 || ps.Duplicates != 1 || ps.Refused != 6 || ps.Conflicts != 0 || !strings.Contains(ps.Text, "1 documents accepted") {
		t.Errorf("platform summary %+v", ps)
	}
	// The upload's document is the XML inside the zip: its hash, not the body's.
	if len(ps.Submissions) < 2 || ps.Submissions[0] != (Submission{"d1", sha(goodRelation), "new"}) || ps.Submissions[1] != (Submission{"d1", sha(goodRelation), "duplicate"}) {
		t.Errorf("platform submissions %v", ps.Submissions)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Behaviour: "sulk"}, "receiver.behaviour"},
		{Config{ProcessFor: -1}, "receiver.process_for"},
		{Config{MaxBody: -1}, "receiver.max_body"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Error(err)
	}
}

package outbox

import (
	"strings"
	"testing"
)

func TestParseAnswers(t *testing.T) {
	tests := []struct {
		name    string
		parse   func([]byte) (Answer, error)
		body    string
		outcome Outcome
		err     string
	}{
		{"job running", capture, `{"captureID":"1","running":true,"success":false}`, StillPending, ""},
		{"job done", capture, `{"captureID":"1","running":false,"success":true}`, Success, ""},
		{"job failed", capture, `{"captureID":"1","running":false,"success":false,"captureErrorBehaviour":"rollback","errors":[{"title":"ValidationException","detail":"x"}]}`, Rejected, ""},
		{"job garbage", capture, `{"captureID": "garbage`, "", "not JSON"},
		{"job without running", capture, `{"captureID":"1"}`, "", "lacks running/success"},
		{"upload pending", upload, `{"process_id":"p","status":"pending"}`, Accepted, ""},
		{"upload failed", upload, `{"process_id":"p","status":"failed","errors":[{"code":"c","message":"m"}]}`, Rejected, ""},
		{"upload odd status", upload, `{"process_id":"p","status":"maybe"}`, "", `status "maybe"`},
		{"upload no id", upload, `{"status":"success"}`, "", "no process_id"},
		{"upload html", upload, `<html>502</html>`, "", "not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.parse([]byte(tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "bad answer") {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if permanent(err) {
					t.Error("a bad answer is retried, not permanent")
				}
				return
			}
			if err != nil || a.Outcome != tc.outcome {
				t.Fatalf("%+v %v, want %s", a, err, tc.outcome)
			}
			if a.Outcome == Rejected && len(a.Errors) != 1 {
				t.Errorf("errors %v", a.Errors)
			}
		})
	}
}

func capture(b []byte) (Answer, error) { return parseCaptureJob(reply{Status: 200, Body: b}) }
func upload(b []byte) (Answer, error)  { return platformStatus(reply{Status: 202, Body: b}, true) }

func fuzzAnswer(f *testing.F, parse func([]byte) (Answer, error), seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parse(b)
		if err == nil && a.Outcome == "" {
			t.Fatalf("no outcome and no error for %q", b)
		}
	})
}

func FuzzCaptureJob(f *testing.F) {
	fuzzAnswer(f, capture, `{"captureID":"1","running":false,"success":false,"errors":[{"title":"t"}]}`, `{"running":true}`)
}

func FuzzPlatformStatus(f *testing.F) {
	fuzzAnswer(f, upload, `{"process_id":"p","status":"failed","errors":[{"code":"c","message":"m"}]}`)
}

package outbox

import (
	"archive/zip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PlatformAdapter speaks our stand-in for the platform's relation upload
// (码上放心 uploadrelation style; the real API is not public here):
//
//	POST {url}/relation/upload, Content-Type: application/json,
//	Idempotency-Key: <doc id>, body
//	  {"doc_id", "batch", "format": "msfx-xml", "file_name": "<doc id>.xml",
//	   "sha256": "<hex of the XML>", "file": "<base64 of a zip holding the XML>"}
//	→ 202 {"process_id", "status": "pending"}
//	GET {url}/relation/status/{process_id}
//	→ 200 {"process_id", "status": "pending"|"success"|"failed",
//	       "errors": [{"code", "message"}]}
//
// Errors are {"code", "message"} with a 4xx (refused) or 5xx status. A real
// platform's adapter implements Adapter the same way.
type PlatformAdapter struct{ Client *http.Client }

// Send implements Adapter. The body is streamed: zip, base64, JSON.
func (a PlatformAdapter) Send(ctx context.Context, ep Endpoint, doc Document, body io.Reader) (Answer, error) {
	u := strings.TrimRight(ep.URL, "/") + "/relation/upload"
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeUpload(pw, doc, body)) }()
	defer pr.Close()
	req, err := http.NewRequest(http.MethodPost, u, pr)
	if err != nil {
		return Answer{}, &Error{Permanent: true, Msg: fmt.Sprintf("upload URL %q: %v", u, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", doc.ID)
	r, err := exchange(ctx, a.Client, ep, req)
	if err != nil {
		return Answer{Status: r.Status}, err
	}
	return platformStatus(r, true)
}

// writeUpload writes the upload's JSON body with the document zipped and
// base64-encoded into it.
func writeUpload(w io.Writer, doc Document, body io.Reader) error {
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	name := doc.ID + ".xml"
	batch := doc.Batch
	if doc.BatchNumber != "" {
		batch = doc.BatchNumber
	}
	head := fmt.Sprintf(`{"doc_id":%s,"batch":%s,"format":%s,"file_name":%s,"sha256":%s,"file":"`,
		str(doc.ID), str(batch), str(doc.Format), str(name), str(doc.SHA256))
	if _, err := io.WriteString(w, head); err != nil {
		return err
	}
	enc := base64.NewEncoder(base64.StdEncoding, w)
	zw := zip.NewWriter(enc)
	f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: doc.Created.UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err = io.WriteString(w, `"}`)
	return err
}

type platformAnswer struct {
	ProcessID string `json:"process_id"`
	Status    string `json:"status"`
	Errors    []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Report string `json:"report"`
}

func platformStatus(r reply, send bool) (Answer, error) {
	var pa platformAnswer
	if err := json.Unmarshal(r.Body, &pa); err != nil {
		return Answer{Status: r.Status}, badAnswer(r.Status, "the platform's answer is not JSON", r.Body, err)
	}
	if pa.ProcessID == "" {
		return Answer{Status: r.Status}, badAnswer(r.Status, "the platform's answer has no process_id", r.Body, nil)
	}
	ans := Answer{Status: r.Status, Job: pa.ProcessID, Text: pa.Report}
	switch pa.Status {
	case "pending":
		ans.Outcome = StillPending
		if send {
			ans.Outcome = Accepted
		}
		ans.Text = "upload " + pa.ProcessID + " pending"
	case "success":
		ans.Outcome = Success
		if ans.Text == "" {
			ans.Text = "upload " + pa.ProcessID + " succeeded"
		}
	case "failed":
		ans.Outcome = Rejected
		for _, e := range pa.Errors {
			ans.Errors = append(ans.Errors, e.Code+": "+e.Message)
		}
		ans.Text = fmt.Sprintf("upload %s failed with %d errors; %s", pa.ProcessID, len(pa.Errors), pa.Report)
	default:
		return Answer{Status: r.Status}, badAnswer(r.Status, fmt.Sprintf("status %q is not pending, success or failed", pa.Status), r.Body, nil)
	}
	return ans, nil
}

// Poll implements Adapter.
func (a PlatformAdapter) Poll(ctx context.Context, ep Endpoint, job string) (Answer, error) {
	u := strings.TrimRight(ep.URL, "/") + "/relation/status/" + url.PathEscape(job)
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return Answer{}, &Error{Permanent: true, Msg: fmt.Sprintf("status URL %q: %v", u, err)}
	}
	r, err := exchange(ctx, a.Client, ep, req)
	if r.Status == http.StatusNotFound {
		return Answer{Outcome: Lost, Status: r.Status, Text: "the upload " + job + " is unknown to the platform (404)"}, nil
	}
	if err != nil {
		return Answer{Status: r.Status}, err
	}
	return platformStatus(r, false)
}

package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// EPCISAdapter speaks the EPCIS 2.0 capture interface: POST {url}/capture
// with the document (GS1-Capture-Error-Behaviour: rollback, so that a
// document is captured whole or not at all; Idempotency-Key: the document
// id), 202 + Location: the capture job, then GET {Location} until running
// is false; success, or the job's errors (RFC 7807 problems), is the answer.
// A 404 on the job means the repository lost it: the document is sent again.
type EPCISAdapter struct{ Client *http.Client }

// Send implements Adapter.
func (a EPCISAdapter) Send(ctx context.Context, ep Endpoint, doc Document, body io.Reader) (Answer, error) {
	u := strings.TrimRight(ep.URL, "/") + "/capture"
	req, err := http.NewRequest(http.MethodPost, u, body)
	if err != nil {
		return Answer{}, &Error{Permanent: true, Msg: fmt.Sprintf("capture URL %q: %v", u, err)}
	}
	req.ContentLength = doc.Size
	ct := "application/ld+json"
	if doc.Format == FormatEPCISXML {
		ct = "application/xml"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("GS1-EPCIS-Version", "2.0.0")
	req.Header.Set("GS1-CBV-Version", "2.0.0")
	req.Header.Set("GS1-Capture-Error-Behaviour", "rollback")
	req.Header.Set("Idempotency-Key", doc.ID)
	r, err := exchange(ctx, a.Client, ep, req)
	if err != nil {
		return Answer{Status: r.Status}, err
	}
	if r.Status != http.StatusAccepted {
		return Answer{Status: r.Status}, badAnswer(r.Status, "the capture interface answered other than 202 Accepted", r.Body, nil)
	}
	loc := r.Header.Get("Location")
	if loc == "" {
		return Answer{Status: r.Status}, badAnswer(r.Status, "202 Accepted without a Location (the capture job)", r.Body, nil)
	}
	job, err := url.Parse(loc)
	if err != nil {
		return Answer{Status: r.Status}, badAnswer(r.Status, fmt.Sprintf("Location %q is not a URL", loc), nil, err)
	}
	job = req.URL.ResolveReference(job)
	return Answer{Outcome: Accepted, Job: job.String(), Status: r.Status,
		Text: "202 Accepted, capture job " + job.String()}, nil
}

// captureJob is the EPCIS 2.0 capture job resource (JSON).
type captureJob struct {
	CaptureID             string `json:"captureID"`
	Running               *bool  `json:"running"`
	Success               *bool  `json:"success"`
	CaptureErrorBehaviour string `json:"captureErrorBehaviour"`
	Errors                []struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	} `json:"errors"`
	Report string `json:"report"` // our stand-in's plain report (not in the standard)
}

// Poll implements Adapter.
func (a EPCISAdapter) Poll(ctx context.Context, ep Endpoint, job string) (Answer, error) {
	req, err := http.NewRequest(http.MethodGet, job, nil)
	if err != nil {
		return Answer{}, &Error{Permanent: true, Msg: fmt.Sprintf("capture job %q: %v", job, err)}
	}
	req.Header.Set("Accept", "application/json")
	r, err := exchange(ctx, a.Client, ep, req)
	if r.Status == http.StatusNotFound {
		return Answer{Outcome: Lost, Status: r.Status, Text: "the capture job is unknown to the repository (404)"}, nil
	}
	if err != nil {
		return Answer{Status: r.Status}, err
	}
	return parseCaptureJob(r)
}

// parseCaptureJob reads a capture job answer (outside input).
func parseCaptureJob(r reply) (Answer, error) {
	var cj captureJob
	if err := json.Unmarshal(r.Body, &cj); err != nil {
		return Answer{Status: r.Status}, badAnswer(r.Status, "the capture job is not JSON", r.Body, err)
	}
	if cj.Running == nil || (!*cj.Running && cj.Success == nil) {
		return Answer{Status: r.Status}, badAnswer(r.Status, "the capture job lacks running/success", r.Body, nil)
	}
	if *cj.Running {
		return Answer{Outcome: StillPending, Status: r.Status, Text: "capture job " + cj.CaptureID + " running"}, nil
	}
	text := cj.Report
	if *cj.Success {
		if text == "" {
			text = "capture job " + cj.CaptureID + " succeeded"
		}
		return Answer{Outcome: Success, Status: r.Status, Text: text}, nil
	}
	ans := Answer{Outcome: Rejected, Status: r.Status}
	for _, e := range cj.Errors {
		s := e.Title
		if e.Detail != "" {
			s += ": " + e.Detail
		}
		ans.Errors = append(ans.Errors, s)
	}
	head := fmt.Sprintf("capture job %s failed with %d errors", cj.CaptureID, len(cj.Errors))
	if strings.EqualFold(cj.CaptureErrorBehaviour, "proceed") {
		head += " (captureErrorBehaviour proceed: the events not named were captured)"
	} else {
		head += " (rollback: nothing was captured)"
	}
	if text != "" {
		head += "; " + text
	}
	ans.Text = head
	return ans, nil
}

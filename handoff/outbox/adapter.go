package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Adapter speaks one kind of receiver's protocol. The outbox journals,
// schedules and retries; an adapter only exchanges one message and says
// what the answer means. A real platform's adapter replaces the stand-in's
// through Options.Adapters.
type Adapter interface {
	// Send submits a document (body: its content, doc.Size bytes) with
	// doc.ID as its idempotency key.
	Send(ctx context.Context, ep Endpoint, doc Document, body io.Reader) (Answer, error)
	// Poll asks for the state of an accepted document's job (Answer.Job).
	Poll(ctx context.Context, ep Endpoint, job string) (Answer, error)
}

// Outcome is what an answer means for the delivery.
type Outcome string

const (
	// Accepted: the receiver took the document; ask about Job later.
	Accepted Outcome = "accepted"
	// StillPending: the receiver is still processing it.
	StillPending Outcome = "pending"
	// Success: the receiver processed it and says so.
	Success Outcome = "success"
	// Rejected: the receiver processed it and found it wrong (Errors).
	Rejected Outcome = "failed"
	// Lost: the receiver does not know the job (it lost it): send again.
	Lost Outcome = "lost"
)

// Answer is a receiver's answer to one exchange.
type Answer struct {
	Outcome Outcome
	Job     string   // where to ask (Accepted)
	Status  int      // HTTP status
	Errors  []string // the receiver's own error list (Rejected)
	Text    string   // a plain account of the answer
}

// Error is an exchange that went wrong. Permanent errors (a 4xx refusal)
// fail the delivery; the others are retried.
type Error struct {
	Status    int    // HTTP status, 0 if there was no answer
	Permanent bool   // refused: sending the same again will not help
	Msg       string // what went wrong, plainly
	// RetryAfter is the receiver's Retry-After (429, 503), 0 if none.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Msg }

func permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

func retryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// reply is an HTTP answer: status, header, at most 1 MiB of body.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// exchange does one HTTP request with the endpoint's timeout and token. A
// non-2xx status is an *Error (4xx permanent except 408, 425 and 429).
func exchange(ctx context.Context, client *http.Client, ep Endpoint, req *http.Request) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, ep.Timeout)
	defer cancel()
	req = req.WithContext(ctx)
	if ep.Token != "" {
		if ep.TokenHeader != "" {
			req.Header.Set(ep.TokenHeader, ep.Token)
		} else {
			req.Header.Set("Authorization", "Bearer "+ep.Token)
		}
	}
	req.Header.Set("User-Agent", "tracline-outbox")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return reply{}, &Error{Msg: fmt.Sprintf("%s %s: no answer within %v", req.Method, req.URL, ep.Timeout)}
		}
		return reply{}, &Error{Msg: fmt.Sprintf("%s %s: %v", req.Method, req.URL, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if err != nil {
		return r, &Error{Status: resp.StatusCode, Msg: fmt.Sprintf("%s %s: HTTP %d, reading the answer: %v", req.Method, req.URL, resp.StatusCode, err)}
	}
	if resp.StatusCode/100 == 2 {
		return r, nil
	}
	perm := resp.StatusCode/100 == 4 && resp.StatusCode != 408 && resp.StatusCode != 425 && resp.StatusCode != 429
	what := "refused"
	if !perm {
		what = "failed"
	}
	return r, &Error{Status: resp.StatusCode, Permanent: perm, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Msg: fmt.Sprintf("%s %s %s: HTTP %d: %s", req.Method, req.URL, what, resp.StatusCode, oneLine(body, 300))}
}

// oneLine is a body as one short line of text.
func oneLine(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "(empty answer)"
	}
	return cut(s, n)
}

// badAnswer is a 2xx answer the adapter cannot read (retried).
func badAnswer(status int, what string, body []byte, err error) error {
	msg := fmt.Sprintf("bad answer: %s (HTTP %d): %q", what, status, cut(string(body), 200))
	if err != nil {
		msg += ": " + err.Error()
	}
	return &Error{Status: status, Msg: msg}
}

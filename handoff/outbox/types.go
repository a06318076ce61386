package outbox

import (
	"errors"
	"time"
)

var (
	// ErrNotFound: no document of that id.
	ErrNotFound = errors.New("not found")
	// ErrRefused: the operation does not apply to the document as it is
	// (a resend of a document without a failed delivery, a replacement of
	// a delivered one, a document for a batch that is not active…).
	ErrRefused = errors.New("refused")
)

// State is where one delivery (a document to one endpoint) stands.
type State string

const (
	// Pending: to be sent (again) at NextAt.
	Pending State = "pending"
	// Sending: a send was journaled as begun and its answer was not: after
	// a crash it is sent again with the same idempotency key.
	Sending State = "sending"
	// Processing: the receiver accepted the document (a capture job, an
	// upload process); its status is asked at NextAt.
	Processing State = "processing"
	// Delivered: the receiver answered success.
	Delivered State = "delivered"
	// Failed: refused, failed by the receiver's checks, or out of retries;
	// Error says why. Resend or Replace.
	Failed State = "failed"
	// Superseded: a new version of the document replaced it.
	Superseded State = "superseded"
)

// Document is a hand-off document and its deliveries, as journaled.
type Document struct {
	ID    string `json:"id"`
	Batch string `json:"batch"`
	// BatchNumber is the work order's batch number, if it differs from
	// the ledger's batch id: the platform upload names the batch by it.
	BatchNumber string    `json:"batch_number,omitempty"`
	Format      string    `json:"format"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // hex, of the file's content
	File        string    `json:"file"`   // the file's name in the outbox directory
	Created     time.Time `json:"created"`
	// Replaces is the document this one is a new version of; ReplacedBy the
	// one that replaced it.
	Replaces   string `json:"replaces,omitempty"`
	ReplacedBy string `json:"replaced_by,omitempty"`
	// State sums up the deliveries: delivered when every one is, failed
	// when one failed, superseded, else pending.
	State      State      `json:"state"`
	Deliveries []Delivery `json:"deliveries"`
	// HandedOff: the ledger was told (Store.HandedOff).
	HandedOff bool `json:"handed_off,omitempty"`
	// Last is the attempt or answer the journal record carrying this state
	// is about (nil on other records).
	Last *Attempt `json:"last,omitempty"`
}

// Delivery is a document's delivery to one endpoint.
type Delivery struct {
	Endpoint string `json:"endpoint"`
	Kind     Kind   `json:"kind"`
	URL      string `json:"url"`
	State    State  `json:"state"`
	Sends    int    `json:"sends"` // send attempts in this round (a resend starts a new round)
	// Since is when the round's first send began (Endpoint.RetryFor counts
	// from it).
	Since time.Time `json:"round_started_at,omitzero"`
	Polls int       `json:"polls"`
	// PollErrors counts status questions in a row that went wrong.
	PollErrors int       `json:"poll_errors,omitempty"`
	NextAt     time.Time `json:"next_at,omitzero"`
	Job        string    `json:"job,omitempty"`             // the capture job / upload process to poll
	Accepted   time.Time `json:"accepted_at,omitzero"`      // when the receiver accepted it
	Done       time.Time `json:"done_at,omitzero"`          // delivered or failed
	Error      string    `json:"error,omitempty"`           // why it failed, or why the last attempt did
	Errors     []string  `json:"receiver_errors,omitempty"` // the receiver's own error list (≤ 50)
	Answer     string    `json:"answer,omitempty"`          // the receiver's last answer, cut to 1 KiB
}

// Attempt is one exchange with a receiver: a send or a status question.
type Attempt struct {
	Endpoint string    `json:"endpoint"`
	Op       string    `json:"op"` // "send", "poll", "resend" (by a user), "replace"
	N        int       `json:"n"`  // the send's or poll's number in its round
	At       time.Time `json:"at"`
	// Outcome: begun (journaled before the send), accepted, pending,
	// success, failed (by the receiver), refused (4xx), error (transport,
	// 5xx, bad answer: retried), gave-up.
	Outcome string `json:"outcome"`
	Status  int    `json:"status,omitempty"` // HTTP status
	Job     string `json:"job,omitempty"`
	Error   string `json:"error,omitempty"`
	Answer  string `json:"answer,omitempty"` // cut to 512 bytes
	Seq     uint64 `json:"seq,omitempty"`    // the journal record (filled in by Attempts)
	By      string `json:"by,omitempty"`     // who, for a user's resend or replace
}

func (d *Document) summarize() {
	if d.ReplacedBy != "" {
		d.State = Superseded
		return
	}
	all := len(d.Deliveries) > 0
	for _, dl := range d.Deliveries {
		if dl.State == Failed {
			d.State = Failed
			return
		}
		all = all && dl.State == Delivered
	}
	if all {
		d.State = Delivered
	} else {
		d.State = Pending
	}
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// do not split a UTF-8 sequence
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

package aggregation

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/tracline/tracline/tracecode"
)

// Record is a journaled entry that changes no code: a login, a command, an
// alarm and its acknowledgement, an account change, a signature, a hand-off
// attempt and its answer. It is hash-chained like every event, so the audit
// trail is as tamper-evident as the codes' history.
type Record struct {
	// Type says what happened: 1..64 of [a-z0-9._-], e.g. "login",
	// "login.failed", "command", "alarm", "alarm.ack", "account", "signature".
	Type string `json:"type"`
	// Batch, if set, is the batch whose audit trail the record belongs to
	// (it must exist).
	Batch string `json:"batch,omitempty"`
	// Key, if set, is a meta key ("account/alice", "outbox/<doc id>") whose
	// current value becomes Value (Store.Meta); an empty Value deletes it.
	Key string `json:"key,omitempty"`
	// Value is at most MaxRecordValue bytes; JSON by convention.
	Value string `json:"value,omitempty"`
}

// MaxRecordValue bounds Record.Value.
const MaxRecordValue = 64 << 10

func (r Record) validate() error {
	if r.Type == "" || len(r.Type) > 64 {
		return fmt.Errorf("record type %q: want 1..64 characters of a-z 0-9 . _ -", r.Type)
	}
	for i := 0; i < len(r.Type); i++ {
		c := r.Type[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("record type %q: want 1..64 characters of a-z 0-9 . _ -", r.Type)
		}
	}
	if r.Key != "" {
		if err := checkName("record key", r.Key); err != nil {
			return err
		}
	}
	if len(r.Value) > MaxRecordValue {
		return fmt.Errorf("record %s: value of %d bytes (max %d)", r.Type, len(r.Value), MaxRecordValue)
	}
	return nil
}

// Record journals rec durably as one event of kind "record" (Reason = Type,
// Document = Key, Answer = Value) and returns its sequence number.
func (s *Store) Record(ctx context.Context, rec Record, by Actor) (uint64, error) {
	if err := rec.validate(); err != nil {
		return 0, err
	}
	r := &request{ev: Event{Kind: EvRecord, Actor: by, Batch: rec.Batch, Reason: rec.Type, Document: rec.Key, Answer: rec.Value}}
	if err := s.submit(ctx, r); err != nil {
		return 0, err
	}
	return r.ev.Seq, nil
}

// Meta returns a meta key's current value and the sequence number of the
// record that set it; ErrNotFound if no record set it (or one deleted it).
func (s *Store) Meta(ctx context.Context, key string) (value string, seq uint64, err error) {
	if err := checkName("record key", key); err != nil {
		return "", 0, err
	}
	err = s.view(func(t *wtx) error {
		v, ok, err := t.get(metaKey(key))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("meta key %q: %w", key, ErrNotFound)
		}
		seq, value, err = decodeMeta(v)
		return err
	})
	return value, seq, err
}

// MetaPrefix calls fn for every meta key starting with prefix, in key order.
func (s *Store) MetaPrefix(ctx context.Context, prefix string, fn func(key, value string, seq uint64) error) error {
	return s.view(func(t *wtx) error {
		return scanPrefix(t.txn, pfxMeta+prefix, func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			seq, value, err := decodeMeta(v)
			if err != nil {
				return err
			}
			return fn(string(k[len(pfxMeta):]), value, seq)
		})
	})
}

// Trail calls fn, in journal order, for the batch's audit trail: its
// creation, its batch-level events (challenge, complete, release,
// activation, hand-off), its records, and every event of the batch whose
// actor is a user (manual rework, packs…).
func (s *Store) Trail(ctx context.Context, batch string, fn func(Event) error) error {
	return s.view(func(t *wtx) error {
		if _, ok := t.batch(batch); !ok {
			return fmt.Errorf("batch %q: %w", batch, ErrNotFound)
		}
		var seqs []uint64
		pfx := append(append([]byte(pfxTrail), batch...), 0)
		err := scanPrefix(t.txn, string(pfx), func(k, _ []byte) error {
			if len(k) != len(pfx)+8 {
				return storageErr(fmt.Errorf("trail key %q: corrupt", k))
			}
			seqs = append(seqs, binary.BigEndian.Uint64(k[len(pfx):]))
			return nil
		})
		if err != nil {
			return err
		}
		jr := newJournalReader(t.txn)
		defer jr.close()
		for _, seq := range seqs {
			if err := ctx.Err(); err != nil {
				return err
			}
			ev, err := jr.event(seq)
			if err != nil {
				return err
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// Head is the last journal sequence number (0 for an empty ledger).
func (s *Store) Head() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

func metaKey(key string) []byte { return append([]byte(pfxMeta), key...) }

func trailKey(batch string, seq uint64) []byte {
	k := append(append([]byte(pfxTrail), batch...), 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func decodeMeta(v []byte) (uint64, string, error) {
	if len(v) < 8 {
		return 0, "", storageErr(errors.New("meta value: corrupt"))
	}
	return binary.BigEndian.Uint64(v), string(v[8:]), nil
}

func (t *wtx) applyRecord(ev *Event) error {
	rec := Record{Type: ev.Reason, Batch: ev.Batch, Key: ev.Document, Value: ev.Answer}
	if err := rec.validate(); err != nil {
		return err
	}
	if len(ev.Codes) > 0 || ev.Parent != "" || ev.New != "" || ev.Unit != nil || ev.Pack != nil || ev.Sig != nil || ev.Spec != nil || ev.Challenge != nil {
		return errors.New("a record carries no codes, unit, pack, signature, spec or challenge")
	}
	if rec.Batch != "" {
		if _, ok := t.batch(rec.Batch); !ok {
			return fmt.Errorf("record %s: batch %q: %w", rec.Type, rec.Batch, ErrNotFound)
		}
	}
	if rec.Key == "" {
		return nil
	}
	if rec.Value == "" {
		return t.del(metaKey(rec.Key))
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(rec.Value)), ev.Seq)
	return t.set(metaKey(rec.Key), append(v, rec.Value...))
}

// inTrail says whether ev belongs to its batch's audit trail.
func inTrail(ev *Event) bool {
	switch ev.Kind {
	case EvRecord:
		return ev.Batch != ""
	case EvBatchCreate, EvChallenge, EvComplete, EvRelease, EvActivate, EvHandedOff:
		return true
	}
	return ev.Actor.Kind == ActorUser
}

// indexTrail adds ev to its batch's audit trail; a code event without a
// batch is filed under the batch of its first code.
func (t *wtx) indexTrail(ev *Event) error {
	batch := ev.Batch
	if batch == "" {
		var c tracecode.Code
		switch {
		case ev.Parent != "":
			c = ev.Parent
		case len(ev.Codes) > 0:
			c = ev.Codes[0]
		case ev.New != "":
			c = ev.New
		}
		if c == "" {
			return nil
		}
		cv, err := t.lookup(c)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}
		batch = cv.loc.Batch
	}
	if batch == "" {
		return nil
	}
	return t.set(trailKey(batch, ev.Seq), nil)
}

// describeAuditKey names a meta or trail key for Verify's messages.
func describeAuditKey(k []byte) string {
	switch string(k[:2]) {
	case pfxMeta:
		return fmt.Sprintf("meta key %q", k[2:])
	case pfxTrail:
		if i := bytes.IndexByte(k[2:], 0); i >= 0 && len(k[2+i+1:]) == 8 {
			return fmt.Sprintf("batch %s audit trail entry %d", k[2:2+i], binary.BigEndian.Uint64(k[2+i+1:]))
		}
	}
	return fmt.Sprintf("key %q", k)
}

// migrateTrail builds the audit trail index of a ledger written before
// schema 8, from its journal: the events a replay would index. A code's
// batch is looked up as it is now; it is the batch of the event's time,
// because the codes user events touch (sent or later) never change batch
// (only never-sent codes are returned to a pool and allocated again).
func (s *Store) migrateTrail(txn *badger.Txn) error {
	var evs []Event
	o := badger.DefaultIteratorOptions
	o.Prefix = []byte(pfxJournal)
	it := txn.NewIterator(o)
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			it.Close()
			return err
		}
		ents, err := parseBlock(v)
		if err != nil {
			it.Close()
			return fmt.Errorf("upgrading to schema %s: journal block %q: %w", schemaVersion, it.Item().Key(), err)
		}
		for _, e := range ents {
			ev, err := decodeEvent(e.body)
			if err != nil {
				it.Close()
				return fmt.Errorf("upgrading to schema %s: %w", schemaVersion, err)
			}
			if inTrail(&ev) {
				evs = append(evs, ev)
			}
		}
	}
	it.Close()
	t := newWtx(s, txn)
	for i := range evs {
		if err := t.indexTrail(&evs[i]); err != nil {
			return fmt.Errorf("upgrading to schema %s: event %d: %w", schemaVersion, evs[i].Seq, err)
		}
	}
	return nil
}

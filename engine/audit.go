package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// ChainHash returns the hash of ev chained to the hash of the event before
// it: SHA-256 over the previous hash and every field of ev except Hash, each
// length-prefixed so that no two different events encode alike. Editing,
// removing or reordering any event breaks the chain from there on.
func ChainHash(prevHash string, ev AuditEvent) string {
	h, _ := ChainHashBuf(nil, prevHash, &ev)
	return h
}

// ChainHashBuf is ChainHash reusing buf for the hashed bytes (an append of
// many events hashes them all through one buffer); it returns the buffer.
func ChainHashBuf(buf []byte, prevHash string, ev *AuditEvent) (string, []byte) {
	put := func(s string) {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = buf[:0]
	put(prevHash)
	buf = binary.BigEndian.AppendUint64(buf, uint64(ev.Seq))
	put(ev.ID)
	buf = binary.BigEndian.AppendUint64(buf, uint64(ev.At.UnixMicro()))
	for _, f := range [...]string{ev.OrgID, ev.Channel, ev.SourceID, ev.Actor, ev.Action, ev.SubjectType, ev.SubjectID, ev.IdentityID} {
		put(f)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(ev.Changes)))
	buf = append(buf, ev.Changes...)
	put(ev.CorrelationID)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), buf
}

// VerifyReport is the outcome of VerifyAudit.
type VerifyReport struct {
	Events   int64  `json:"events"`
	LastSeq  int64  `json:"lastSeq"`
	LastHash string `json:"lastHash"`
	OK       bool   `json:"ok"`
	// FirstBad is the sequence number where the chain first breaks.
	FirstBad int64  `json:"firstBad,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

var errStop = errors.New("stop")

// VerifyAudit reads the whole log in sequence order and checks that every
// event's hash is its content chained to the event before it, that sequence
// numbers have no gaps, and that the last event is the head the store
// recorded (so a removed tail is caught too).
func VerifyAudit(ctx context.Context, s Store) (VerifyReport, error) {
	var r VerifyReport
	prevHash, prevSeq := "", int64(0)
	fail := func(seq int64, format string, args ...any) error {
		r.FirstBad, r.Problem = seq, fmt.Sprintf(format, args...)
		return errStop
	}
	err := s.StreamAudit(ctx, AuditFilter{}, func(ev AuditEvent) error {
		r.Events++
		switch {
		case ev.Seq != prevSeq+1:
			return fail(ev.Seq, "event %d follows event %d: events are missing or reordered", ev.Seq, prevSeq)
		case ev.PrevHash != prevHash:
			return fail(ev.Seq, "event %d does not chain to event %d", ev.Seq, prevSeq)
		case ChainHash(prevHash, ev) != ev.Hash:
			return fail(ev.Seq, "event %d was edited: its hash does not match its content", ev.Seq)
		}
		prevHash, prevSeq = ev.Hash, ev.Seq
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return r, fmt.Errorf("verify audit: %w", err)
	}
	r.LastSeq, r.LastHash = prevSeq, prevHash
	if r.Problem != "" {
		return r, nil
	}
	headSeq, headHash, err := s.AuditHead(ctx)
	if err != nil {
		return r, fmt.Errorf("verify audit: read head: %w", err)
	}
	if headSeq != prevSeq || headHash != prevHash {
		r.FirstBad = prevSeq + 1
		r.Problem = fmt.Sprintf("the log ends at event %d but %d events were appended: the tail was removed", prevSeq, headSeq)
		return r, nil
	}
	r.OK = true
	return r, nil
}

package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"
)

// chainHashReference is ChainHash as first written (logs written by it must
// keep verifying).
func chainHashReference(prevHash string, ev AuditEvent) string {
	fields := [...]string{prevHash, ev.ID, ev.OrgID, ev.Channel, ev.SourceID, ev.Actor, ev.Action,
		ev.SubjectType, ev.SubjectID, ev.IdentityID, string(ev.Changes), ev.CorrelationID}
	var buf []byte
	put := func(s string) {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	put(fields[0])
	buf = binary.BigEndian.AppendUint64(buf, uint64(ev.Seq))
	put(fields[1])
	buf = binary.BigEndian.AppendUint64(buf, uint64(ev.At.UnixMicro()))
	for _, f := range fields[2:] {
		put(f)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

func TestChainHashIsStable(t *testing.T) {
	var buf []byte
	prev := ""
	for i := range 200 {
		ev := AuditEvent{Seq: int64(i + 1), ID: fmt.Sprintf("ev-%d", i), At: time.UnixMicro(int64(1_700_000_000_000_000 + i)),
			OrgID: "org", Channel: "scim", SourceID: fmt.Sprint("src", i%3), Actor: "a", Action: "identity.updated",
			SubjectType: "identity", SubjectID: fmt.Sprint("id", i), IdentityID: fmt.Sprint("id", i%7),
			CorrelationID: fmt.Sprint("c", i%2)}
		if i%4 != 0 {
			ev.Changes = []byte(fmt.Sprintf(`{"changes":[{"field":"f%d"}]}`, i))
		}
		want := chainHashReference(prev, ev)
		var got string
		got, buf = ChainHashBuf(buf, prev, &ev)
		if got != want || ChainHash(prev, ev) != want {
			t.Fatalf("event %d: hash %s, want %s", i, got, want)
		}
		prev = got
	}
}

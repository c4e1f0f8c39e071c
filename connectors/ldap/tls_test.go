package ldap_test

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/idsync/idsync/connectors/ldap"
	"github.com/idsync/idsync/connectors/ldap/ldaptest"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestTLSAndTimeouts: StartTLS and ldaps:// against slapd with a custom
// CA and a password file; an untrusted certificate and a directory that
// never answers fail the sync (within the timeout) and remove no one.
func TestTLSAndTimeouts(t *testing.T) {
	backends(t, func(t *testing.T, f *storagetest.Fixture) {
		d := ldaptest.TestdataDir()
		s := ldaptest.Start(t, ldaptest.Options{TLS: true, LDIF: []string{filepath.Join(d, "users.ldif"), filepath.Join(d, "groups.ldif")}})
		pwFile := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(pwFile, []byte(ldaptest.AdminPassword+"\n"), 0o600)
		base := func(more map[string]any) map[string]any {
			c := people(s, map[string]any{"passwordEnv": "", "passwordFile": pwFile})
			delete(c, "passwordEnv")
			for k, v := range more {
				c[k] = v
			}
			return c
		}
		src := newSource(t, f, "corp-tls", base(map[string]any{"startTLS": true, "caFile": s.CAFile}))
		if p, _, err := sync(t, f, src, true, "", engine.SnapshotOptions{}); err != nil || p.Counts.Created != 240 {
			t.Fatalf("StartTLS with the CA: %v %+v", err, p.Counts)
		}

		// A directory that accepts connections and never answers.
		mute, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer mute.Close()
		go func() {
			for {
				c, err := mute.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()

		for _, tc := range []struct {
			name string
			cfg  map[string]any
			want error
		}{
			{"ldaps with the CA", base(map[string]any{"url": s.LDAPSURL, "caFile": s.CAFile}), nil},
			{"ldaps, untrusted certificate", base(map[string]any{"url": s.LDAPSURL}), engine.ErrUnavailable},
			{"StartTLS, untrusted certificate", base(map[string]any{"startTLS": true}), engine.ErrUnavailable},
			{"never answers", base(map[string]any{"url": "ldap://" + mute.Addr().String(), "timeout": "1s"}), engine.ErrUnavailable},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b, _ := json.Marshal(tc.cfg)
				x := src
				x.Config = b
				start := time.Now()
				p, _, err := ldap.Sync(bg, f.Engine, x, true, "", engine.SnapshotOptions{})
				if tc.want == nil && (err != nil || p.Counts.Unchanged != 240) || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("err = %v (counts %+v), want %v", err, p.Counts, tc.want)
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("took %s", time.Since(start))
				}
				if live(t, f, src) != 240 {
					t.Fatalf("live = %d", live(t, f, src))
				}
			})
		}
	})
}

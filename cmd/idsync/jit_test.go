package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestConnectionCLI: connection create validates the config before storing
// it, list shows only sign-in connections, show prints the endpoints.
func TestConnectionCLI(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			db := b.DSN(t)
			idsync := func(args ...string) (string, error) {
				root := newRoot()
				var out bytes.Buffer
				root.SetArgs(append([]string{"--database", db}, args...))
				root.SetOut(&out)
				err := root.ExecuteContext(context.Background())
				return out.String(), err
			}
			must := func(args ...string) string {
				t.Helper()
				out, err := idsync(args...)
				if err != nil {
					t.Fatalf("idsync %s: %v", strings.Join(args, " "), err)
				}
				return out
			}
			must("org", "create", "acme")
			must("source", "create", "acme", "entra", "--kind", "scim")
			must("connection", "create", "acme", "okta", "--kind", "oidc", "--issuer", "https://acme.okta.test",
				"--client-id", "0oa1", "--client-secret-env", "ACME_OKTA_SECRET", "--group-mode", "sync")
			file := filepath.Join(t.TempDir(), "adfs.yaml")
			os.WriteFile(file, []byte("saml:\n  idpMetadataURL: https://adfs.acme.test/md\n  allowIDPInitiated: true\npolicy:\n  link: none\n"), 0o600)
			must("connection", "create", "acme", "adfs", "--kind", "saml", "-f", file)

			for _, tc := range []struct {
				name string
				args []string
			}{
				{"transient-without-key-attribute", []string{"--kind", "saml", "--idp-metadata-url", "https://x.test/md", "--name-id-format", "transient"}},
				{"oidc-without-client", []string{"--kind", "oidc", "--issuer", "https://x.test"}},
				{"not-a-connection-kind", []string{"--kind", "scim"}},
			} {
				t.Run("case="+tc.name, func(t *testing.T) {
					if _, err := idsync(append([]string{"connection", "create", "acme", "bad"}, tc.args...)...); !errors.Is(err, engine.ErrInvalid) {
						t.Errorf("got %v, want an invalid config error", err)
					}
				})
			}

			var list []engine.Source
			if err := json.Unmarshal([]byte(must("-o", "json", "connection", "list", "acme")), &list); err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 {
				t.Fatalf("connection list = %+v, want okta and adfs only", list)
			}
			var show struct {
				Config    jit.Config        `json:"config"`
				Endpoints map[string]string `json:"endpoints"`
			}
			if err := json.Unmarshal([]byte(must("-o", "json", "connection", "show", "acme", "adfs")), &show); err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(show.Endpoints["acs"], "/login/acme/adfs/acs") || show.Config.SAML == nil ||
				!show.Config.SAML.AllowIDPInitiated || show.Config.Policy.Link != jit.LinkNone {
				t.Errorf("show = %+v", show)
			}
		})
	}
}

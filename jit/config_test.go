package jit_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
)

// TestConfigValidate: every problem is reported at once, as ErrInvalid.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind engine.SourceKind
		cfg  string
		want []string // substrings of the error; none: valid
	}{
		{"oidc-ok", engine.KindOIDC, `{"oidc":{"issuer":"https://idp.test","clientID":"c","clientSecretEnv":"X_SECRET"}}`, nil},
		{"saml-ok", engine.KindSAML, `{"saml":{"idpMetadataURL":"https://idp.test/md"}}`, nil},
		{"email-domain-needs-oidc", engine.KindEmailDomain, `{}`, []string{"needs an oidc block"}},
		{"oidc-everything-wrong", engine.KindOIDC,
			`{"oidc":{"issuer":"ftp://x","clientSecretEnv":"not a name","scopes":["email"],"algorithms":["none","HS256"]},"clockSkew":"1h",
			  "returnURLs":["javascript:alert(1)"],"mapping":{"groupMode":"mirror","attributes":{"shoeSize":"x"}},"policy":{"link":"always","updateAttributes":"never"}}`,
			[]string{"oidc.issuer", "clientID is required", "clientSecretEnv", "must include openid", `"none" is not`, `"HS256" is not`,
				"clockSkew", "returnURLs", "groupMode", "shoeSize", "policy.link", "updateAttributes"}},
		{"saml-transient-needs-key-attribute", engine.KindSAML, `{"saml":{"idpMetadataURL":"https://idp.test/md","nameIDFormat":"transient"}}`,
			[]string{"needs keyAttribute"}},
		{"saml-one-metadata-source", engine.KindSAML, `{"saml":{"idpMetadataURL":"https://idp.test/md","idpMetadataXML":"<x/>"}}`,
			[]string{"exactly one of"}},
		{"saml-sign-needs-keys", engine.KindSAML, `{"saml":{"idpMetadataURL":"https://idp.test/md","signRequests":true}}`,
			[]string{"needs spKeyEnv and spCertEnv"}},
		{"unknown-field", engine.KindOIDC, `{"oidc":{"issuer":"https://idp.test","clientID":"c","clientSecret":"plain"}}`,
			[]string{"unknown field"}},
		{"wrong-kind", engine.KindSCIM, `{}`, []string{"is not saml, oidc or email-domain"}},
	} {
		t.Run("case="+tc.name, func(t *testing.T) {
			_, err := jit.ParseConfig(tc.kind, json.RawMessage(tc.cfg))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if !errors.Is(err, engine.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

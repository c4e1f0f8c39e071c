package ldaptest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartSeeds proves the harness: slapd answers on loopback with the
// seeded entries, and the memberof overlay stamps memberOf on members.
func TestStartSeeds(t *testing.T) {
	s := Start(t, Options{LDIF: []string{filepath.Join(TestdataDir(), "users.ldif"), filepath.Join(TestdataDir(), "groups.ldif")}})
	out, err := exec.Command("ldapsearch", "-x", "-LLL", "-H", s.URL, "-D", AdminDN, "-w", AdminPassword,
		"-b", "ou=people,"+Base, "(uid=u0000)", "memberOf", "entryUUID").CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "memberOf: cn=engineering,ou=groups,dc=test") || !strings.Contains(string(out), "entryUUID:") {
		t.Fatalf("u0000 lacks memberOf or entryUUID:\n%s", out)
	}
}

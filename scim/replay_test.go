package scim_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

// exchange is one recorded request and the response it must get.
type exchange struct {
	Name    string            `json:"name"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Request json.RawMessage   `json:"request"`
	Status  int               `json:"status"`
	// Response is matched as a subset: every key given must be there with
	// this value; arrays must have the same length. "{{name}}" is a
	// captured value, "{{*}}" anything.
	Response json.RawMessage `json:"response"`
	// Absent lists top-level keys the response must not have.
	Absent []string `json:"absent"`
	// Capture names values of the response (top-level keys) for later.
	Capture map[string]string `json:"capture"`
	// Graph checks the engine: per captured user id, the person's state,
	// golden attributes, groups, or that they were deleted.
	Graph map[string]graphCheck `json:"graph"`
}

type graphCheck struct {
	State   string            `json:"state"`
	Attrs   map[string]string `json:"attrs"`
	Groups  *[]string         `json:"groups"`
	Deleted bool              `json:"deleted"`
}

type recording struct {
	Description string     `json:"description"`
	Exchanges   []exchange `json:"exchanges"`
}

// TestRecordedExchanges replays scim/testdata/{entra,okta}/*.json through
// the real HTTP stack on loopback, on SQLite and PostgreSQL.
func TestRecordedExchanges(t *testing.T) {
	files, _ := filepath.Glob("testdata/entra/*.json")
	okta, _ := filepath.Glob("testdata/okta/*.json")
	files = append(files, okta...)
	if len(files) == 0 {
		t.Fatal("no recordings")
	}
	for _, be := range storagetest.Backends() {
		t.Run("database="+be.Name, func(t *testing.T) {
			for _, file := range files {
				name := strings.TrimSuffix(strings.TrimPrefix(file, "testdata/"), ".json")
				t.Run("case="+name, func(t *testing.T) {
					b, err := os.ReadFile(file)
					if err != nil {
						t.Fatal(err)
					}
					var rec recording
					if err := json.Unmarshal(b, &rec); err != nil {
						t.Fatalf("%s: %v", file, err)
					}
					replay(t, newEnv(t, be.Open(t)), rec)
				})
			}
		})
	}
}

func replay(t *testing.T, e *env, rec recording) {
	vars := map[string]string{"base": e.srv.URL + "/scim/v2"}
	subst := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "{{"+k+"}}", v)
		}
		return s
	}
	for i, x := range rec.Exchanges {
		var hdr []string
		for k, v := range x.Headers {
			hdr = append(hdr, k, subst(v))
		}
		body := ""
		if len(x.Request) > 0 {
			body = subst(string(x.Request))
		}
		code, got, _ := e.call(x.Method, subst(x.Path), body, hdr...)
		step := fmt.Sprintf("exchange %d (%s): %s %s", i+1, x.Name, x.Method, x.Path)
		if code != x.Status {
			t.Fatalf("%s: status %d, want %d: %s", step, code, x.Status, got)
		}
		var doc map[string]any
		if len(got) > 0 {
			if err := json.Unmarshal(got, &doc); err != nil {
				t.Fatalf("%s: response is not a JSON object: %s", step, got)
			}
		}
		for name, key := range x.Capture {
			v, _ := doc[key].(string)
			if v == "" {
				t.Fatalf("%s: nothing to capture at %q: %s", step, key, got)
			}
			vars[name] = v
		}
		if len(x.Response) > 0 {
			var want any
			if err := json.Unmarshal([]byte(subst(string(x.Response))), &want); err != nil {
				t.Fatalf("%s: expected response: %v", step, err)
			}
			if err := subset(want, any(doc), "$"); err != nil {
				t.Fatalf("%s: %v\ngot: %s", step, err, got)
			}
		}
		for _, k := range x.Absent {
			if _, ok := doc[k]; ok {
				t.Fatalf("%s: response has %q: %s", step, k, got)
			}
		}
		for who, g := range x.Graph {
			checkGraph(t, e, step, vars[who], g)
		}
	}
}

func checkGraph(t *testing.T, e *env, step, key string, g graphCheck) {
	t.Helper()
	a, ok, err := e.f.DB.AccountByKey(bg, e.f.SCIM.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	if g.Deleted {
		if ok {
			if _, err := e.f.DB.Identity(bg, a.IdentityID); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("%s: person %s still exists (account removed=%v)", step, a.IdentityID, a.Removed)
			}
		}
		return
	}
	if !ok {
		t.Fatalf("%s: the directory holds no account %s", step, key)
	}
	id := e.f.Identity(a.IdentityID)
	if g.State != "" && string(id.State) != g.State {
		t.Fatalf("%s: state %s, want %s", step, id.State, g.State)
	}
	for k, v := range g.Attrs {
		if id.Attrs[k] != v {
			t.Fatalf("%s: golden %s = %q, want %q", step, k, id.Attrs[k], v)
		}
	}
	if g.Groups != nil {
		have := e.f.GroupsOf(a.IdentityID)
		want := append([]string{}, *g.Groups...)
		sort.Strings(want)
		if len(have) == 0 {
			have = []string{}
		}
		if !reflect.DeepEqual(have, want) {
			t.Fatalf("%s: groups %v, want %v", step, have, want)
		}
	}
	if raw := string(a.Raw); strings.Contains(strings.ToLower(raw), "password") {
		t.Fatalf("%s: the account's raw document holds a password: %s", step, raw)
	}
}

// subset checks that got has everything want has.
func subset(want, got any, at string) error {
	if s, ok := want.(string); ok && s == "{{*}}" {
		return nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want an object", at, got)
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s is missing", at, k)
			}
			if err := subset(wv, gv, at+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %v, want %d elements", at, got, len(w))
		}
		for i := range w {
			if err := subset(w[i], g[i], fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		return nil
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%s: got %v, want %v", at, got, want)
	}
	return nil
}

package storagetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
)

// nothingWritten fails if the graph or the audit log changed since seq.
func nothingWritten(t *testing.T, f *Fixture, seq int64) {
	t.Helper()
	if f.AuditSeq() != seq {
		t.Errorf("audit moved: %v", Actions(f.Events(seq)))
	}
	for _, table := range []string{"identities", "accounts", "org_groups", "conflicts"} {
		if n := f.Count(table, ""); n != 0 {
			t.Errorf("%s holds %d rows", table, n)
		}
	}
}

var _ = register(
	Case{"apply to an unknown source is not found", func(t *testing.T, f *Fixture) {
		seq := f.AuditSeq()
		_, err := f.Engine.Apply(bg, engine.Observation{SourceID: engine.NewID(), Key: "u-1", Attrs: person("ghost")})
		if !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
		nothingWritten(t, f, seq)
	}},

	Case{"apply to a disabled source is forbidden", func(t *testing.T, f *Fixture) {
		if _, err := f.Engine.UpdateSource(bg, byTest, f.SCIM.ID, func(s *engine.Source) error {
			s.Enabled = false
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		seq := f.AuditSeq()
		_, err := f.Engine.Apply(bg, engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("ghost")})
		if !errors.Is(err, engine.ErrForbidden) {
			t.Errorf("err = %v, want ErrForbidden", err)
		}
		nothingWritten(t, f, seq)
	}},

	Case{"invalid attributes are refused naming the attribute", func(t *testing.T, f *Fixture) {
		seq := f.AuditSeq()
		for _, c := range []struct {
			attrs engine.Attrs
			names string
		}{
			{engine.Attrs{"email": "not-an-email"}, "email"},
			{engine.Attrs{"userName": "ok", "bad name": "x"}, `"bad name"`},
			{engine.Attrs{"locale": "no locale!"}, "locale"},
		} {
			r, err := f.Engine.Apply(bg, engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: c.attrs})
			if !errors.Is(err, engine.ErrInvalid) {
				t.Errorf("%v: err = %v, want ErrInvalid", c.attrs, err)
				continue
			}
			if !strings.Contains(err.Error(), c.names) {
				t.Errorf("%v: error %q does not name %s", c.attrs, err, c.names)
			}
			if r.IdentityID != "" {
				t.Errorf("%v: result %+v", c.attrs, r)
			}
		}
		_, err := f.Engine.Apply(bg, engine.Observation{SourceID: f.SCIM.ID, Key: "u-1",
			Attrs: engine.Attrs{"email": "not-an-email", "bad name": "x"}})
		if err == nil || !strings.Contains(err.Error(), "email") || !strings.Contains(err.Error(), "bad name") {
			t.Errorf("two problems: %v, want both named", err)
		}
		if _, err := f.Engine.Apply(bg, engine.Observation{SourceID: f.SCIM.ID, Key: " ", Attrs: person("x")}); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("blank key: %v, want ErrInvalid", err)
		}
		nothingWritten(t, f, seq)
	}},
)

package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/idsync/idsync/engine"
)

var _ = register(
	Case{"a source revokes only the group edges it asserted", func(t *testing.T, f *Fixture) {
		scim := engine.Observation{SourceID: f.SCIM.ID, Key: "scim-ivy", EmailVerified: true, Attrs: person("ivy"),
			Groups: []string{"Engineering"}}
		ldap := engine.Observation{SourceID: f.LDAP.ID, Key: "ldap-ivy", EmailVerified: true, Attrs: person("ivy"),
			Groups: []string{"engineering"}} // group names match case-insensitively
		r := f.Apply(scim)
		seq := f.AuditSeq()
		if r2 := f.Apply(ldap); r2.IdentityID != r.IdentityID {
			t.Fatalf("LDAP account not linked: %+v", r2)
		}
		noActions(t, f.Events(seq), "membership.granted", "group.created")
		if e := f.Edges(r.IdentityID); len(e) != 2 {
			t.Fatalf("edges %v, want one per source", e)
		}

		seq = f.AuditSeq()
		scim.Groups = []string{}
		f.Apply(scim)
		noActions(t, f.Events(seq), "membership.revoked")
		if g := f.GroupsOf(r.IdentityID); !slices.Equal(g, []string{"Engineering"}) {
			t.Errorf("after SCIM dropped it: groups %v, want Engineering (LDAP still asserts it)", g)
		}
		if e := f.Edges(r.IdentityID); !slices.Equal(e, []string{"Engineering@" + f.LDAP.ID}) {
			t.Errorf("edges %v, want only LDAP's", e)
		}

		seq = f.AuditSeq()
		ldap.Groups = []string{}
		f.Apply(ldap)
		rev := Of(f.Events(seq), "membership.revoked")
		if len(rev) != 1 || rev[0].IdentityID != r.IdentityID {
			t.Errorf("membership.revoked events %+v, want one for %s", rev, r.IdentityID)
		}
		if g := f.GroupsOf(r.IdentityID); len(g) != 0 {
			t.Errorf("after both dropped it: groups %v", g)
		}
	}},

	Case{"groups in add mode grant without revoking", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|jo", EmailVerified: true, Attrs: person("jo"),
			Groups: []string{"Staff"}})
		seq := f.AuditSeq()
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|jo", EmailVerified: true, Attrs: person("jo"),
			Groups: []string{"Admins"}, GroupMode: engine.GroupsAdd})
		evs := f.Events(seq)
		noActions(t, evs, "membership.revoked")
		if g := Of(evs, "membership.granted"); len(g) != 1 {
			t.Errorf("membership.granted events %d, want 1 (Admins)", len(g))
		}
		if g := f.GroupsOf(r.IdentityID); !slices.Equal(g, []string{"Admins", "Staff"}) {
			t.Errorf("groups %v, want Admins and Staff", g)
		}
		// Replace mode (the default) does revoke what is left out.
		seq = f.AuditSeq()
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|jo", EmailVerified: true, Attrs: person("jo"),
			Groups: []string{"Admins"}})
		if rev := Of(f.Events(seq), "membership.revoked"); len(rev) != 1 {
			t.Errorf("replace: membership.revoked events %d, want 1 (Staff)", len(rev))
		}
		if g := f.GroupsOf(r.IdentityID); !slices.Equal(g, []string{"Admins"}) {
			t.Errorf("after replace: groups %v, want Admins", g)
		}
	}},

	Case{"nil groups say nothing about memberships", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("kim"), Groups: []string{"A", "B"}})
		seq := f.AuditSeq()
		r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("kim", "title", "Lead"), Groups: noGroup})
		if r2.Outcome != engine.OutcomeUpdated {
			t.Fatalf("outcome %q, want updated", r2.Outcome)
		}
		noActions(t, f.Events(seq), "membership.revoked", "membership.granted")
		if g := f.GroupsOf(r.IdentityID); !slices.Equal(g, []string{"A", "B"}) {
			t.Errorf("groups %v, want A and B", g)
		}
		if g := f.Account(f.SCIM.ID, "u-1").Groups; !slices.Equal(g, []string{"A", "B"}) {
			t.Errorf("account groups %v, want A and B kept", g)
		}
	}},
)

var _ = register(
	Case{"a savepoint rollback forgets the groups its writes created", func(t *testing.T, f *Fixture) {
		who := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "s-ghost", Attrs: person("ghost")})
		err := f.DB.InTx(bg, func(tx engine.Tx) error {
			sp, ok := tx.(interface {
				Savepoint(ctx context.Context, name string) error
				RollbackTo(ctx context.Context, name string) error
				Release(ctx context.Context, name string) error
			})
			if !ok {
				t.Fatal("the transaction has no savepoints")
			}
			if err := sp.Savepoint(bg, "t"); err != nil {
				return err
			}
			if _, created, err := tx.EnsureGroup(bg, f.Org.ID, "Ghosts", f.Clock.Now()); err != nil || !created {
				t.Fatalf("EnsureGroup: created %v, %v", created, err)
			}
			if err := sp.RollbackTo(bg, "t"); err != nil {
				return err
			}
			if err := sp.Release(bg, "t"); err != nil {
				return err
			}
			g, created, err := tx.EnsureGroup(bg, f.Org.ID, "Ghosts", f.Clock.Now())
			if err != nil || !created {
				t.Fatalf("after the rollback EnsureGroup: created %v, %v; want the group created again", created, err)
			}
			return tx.AddMembership(bg, engine.Membership{GroupID: g.ID, IdentityID: who.IdentityID, SourceID: f.SCIM.ID, GrantedAt: f.Clock.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.GroupsOf(who.IdentityID); !slices.Equal(got, []string{"Ghosts"}) {
			t.Errorf("groups %v, want [Ghosts]", got)
		}
	}},
)

var _ = register(
	Case{"groups of a rolled-back transaction are not remembered by later ones", func(t *testing.T, f *Fixture) {
		who := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "s-rb", Attrs: person("rb")})
		errUndo := errors.New("undo")
		err := f.DB.InTx(bg, func(tx engine.Tx) error {
			sp := tx.(interface {
				Savepoint(ctx context.Context, name string) error
				RollbackTo(ctx context.Context, name string) error
				Release(ctx context.Context, name string) error
			})
			if _, created, err := tx.EnsureGroup(bg, f.Org.ID, "Temp", f.Clock.Now()); err != nil || !created {
				t.Fatalf("EnsureGroup: %v %v", created, err)
			}
			// A rolled-back savepoint empties the memo; Temp is then found
			// by a query, as this transaction's own uncommitted row.
			if err := sp.Savepoint(bg, "t"); err != nil {
				return err
			}
			if _, _, err := tx.EnsureGroup(bg, f.Org.ID, "Other", f.Clock.Now()); err != nil {
				return err
			}
			if err := sp.RollbackTo(bg, "t"); err != nil {
				return err
			}
			if err := sp.Release(bg, "t"); err != nil {
				return err
			}
			if _, created, err := tx.EnsureGroup(bg, f.Org.ID, "Temp", f.Clock.Now()); err != nil || created {
				t.Fatalf("Temp again in its transaction: created %v, %v", created, err)
			}
			return errUndo
		})
		if !errors.Is(err, errUndo) {
			t.Fatal(err)
		}
		err = f.DB.InTx(bg, func(tx engine.Tx) error {
			g, created, err := tx.EnsureGroup(bg, f.Org.ID, "Temp", f.Clock.Now())
			if err != nil || !created {
				t.Fatalf("after the rollback EnsureGroup(Temp): created %v, %v; want it created anew", created, err)
			}
			return tx.AddMembership(bg, engine.Membership{GroupID: g.ID, IdentityID: who.IdentityID, SourceID: f.SCIM.ID, GrantedAt: f.Clock.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
		// A committed group is remembered: found again without being created.
		err = f.DB.InTx(bg, func(tx engine.Tx) error {
			if _, created, err := tx.EnsureGroup(bg, f.Org.ID, "temp", f.Clock.Now()); err != nil || created {
				t.Fatalf("committed Temp: created %v, %v", created, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}},
)

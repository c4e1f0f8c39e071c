package storage_test

import (
	"context"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestMigrationsKeepOldData writes a graph with the schema of the first
// migration, migrates to the latest, and checks everything still reads and
// works: old data survives new migrations.
func TestMigrationsKeepOldData(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			db, err := storage.Open(ctx, dsn, storage.Options{SkipMigrate: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if v, err := db.Migrate(ctx, 1); err != nil || v != 1 {
				t.Fatalf("migrate to 1: %d %v", v, err)
			}
			e := engine.New(db, engine.Options{})
			org, err := e.CreateOrganization(ctx, engine.Admin{}, engine.Organization{Slug: "old"})
			if err != nil {
				t.Fatal(err)
			}
			src, err := e.CreateSource(ctx, engine.Admin{}, engine.Source{OrgID: org.ID, Kind: engine.KindSCIM, Name: "dir"}, true)
			if err != nil {
				t.Fatal(err)
			}
			obs := engine.Observation{SourceID: src.ID, Key: "u1", Attrs: engine.Attrs{"userName": "ada", "department": "R&D"}, Groups: []string{"eng"}}
			r1, err := e.Apply(ctx, obs)
			if err != nil {
				t.Fatal(err)
			}

			// Rows written before provenance was stored grouped by origin
			// hold it as a map per attribute; they must still read.
			legacy := `{"department":{"sourceId":"` + src.ID + `","accountId":"` + r1.AccountID + `","at":"2026-01-02T03:04:05.000006Z"},` +
				`"userName":{"sourceId":"` + src.ID + `","accountId":"` + r1.AccountID + `","at":"2026-01-02T03:04:05.000006Z"}}`
			if _, err := db.SQL().ExecContext(ctx, db.SQL().Rebind(`UPDATE identities SET provenance = ? WHERE id = ?`), legacy, r1.IdentityID); err != nil {
				t.Fatal(err)
			}

			v, err := db.Migrate(ctx, 0)
			if err != nil || v != storage.LatestVersion() || v < 2 {
				t.Fatalf("migrate to latest: got %d (latest %d): %v", v, storage.LatestVersion(), err)
			}
			if sv, _ := db.SchemaVersion(ctx); sv != v {
				t.Fatalf("schema version %d, want %d", sv, v)
			}
			// Reopen as idsync would after an upgrade.
			db2, err := storage.Open(ctx, dsn, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			e2 := engine.New(db2, engine.Options{})
			id, err := db2.Identity(ctx, r1.IdentityID)
			if err != nil || id.Attrs["department"] != "R&D" {
				t.Fatalf("identity after migration: %+v %v", id, err)
			}
			if p := id.Provenance["department"]; p.AccountID != r1.AccountID || p.At.UnixMicro() != 1767323045000006 {
				t.Fatalf("provenance in the old form reads as %+v", id.Provenance)
			}
			if r, err := e2.Apply(ctx, obs); err != nil || r.Outcome != engine.OutcomeUnchanged {
				t.Fatalf("re-apply after migration: %+v %v", r, err)
			}
			obs.Attrs = engine.Attrs{"userName": "ada", "department": "Ops"}
			if r, err := e2.Apply(ctx, obs); err != nil || r.Outcome != engine.OutcomeUpdated || r.IdentityID != r1.IdentityID {
				t.Fatalf("update after migration: %+v %v", r, err)
			}
			if id, err := db2.Identity(ctx, r1.IdentityID); err != nil || id.Provenance["department"].AccountID != r1.AccountID || len(id.Provenance) != 2 {
				t.Fatalf("provenance after an update: %+v %v", id.Provenance, err)
			}
			// A column the second migration added works.
			if _, _, err := e2.CreateToken(ctx, engine.Admin{}, engine.Token{Kind: engine.TokenAdmin, Name: "new"}); err != nil {
				t.Fatal(err)
			}
			rep, err := engine.VerifyAudit(ctx, db2)
			if err != nil || !rep.OK {
				t.Fatalf("audit after migration: %+v %v", rep, err)
			}
		})
	}
}

package filter_test

import (
	"strings"
	"testing"

	"github.com/idsync/idsync/scim/filter"
)

// TestTranslateParameterises: values reach the SQL only as arguments, on
// both dialects; indexed attributes use their columns.
func TestTranslateParameterises(t *testing.T) {
	cases := []struct {
		filter  string
		column  string // expected in the SQL
		nArgs   int
		hostile string // must not appear in the SQL
	}{
		{`userName eq "x' OR '1'='1"`, "user_name_norm", 1, "OR '1'='1"},
		{`externalId eq "a\"b; DROP TABLE x"`, "external_id", 1, "DROP TABLE"},
		{`emails[type eq "work"].value eq "evil')--"`, "emails", 2, "evil"},
		{`displayName co "100%_"`, "display_name_norm", 1, "100"},
		{`title sw "robert'); --"`, "title", 1, "robert"},
	}
	for _, d := range []string{filter.SQLite, filter.Postgres} {
		for _, tc := range cases {
			t.Run("dialect="+d+"/filter="+tc.filter, func(t *testing.T) {
				sql, args, err := filter.Translate(filter.User, d, tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(sql, tc.hostile) || !strings.Contains(sql, tc.column) || len(args) != tc.nArgs {
					t.Fatalf("sql %q args %v", sql, args)
				}
				if strings.Count(sql, "?") != len(args) {
					t.Fatalf("%d placeholders for %d args: %s", strings.Count(sql, "?"), len(args), sql)
				}
			})
		}
	}
}

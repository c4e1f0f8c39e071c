package reconcile_test

import (
	"testing"

	"github.com/idsync/idsync/reconcile"
)

const (
	active        = reconcile.StateActive
	suspended     = reconcile.StateSuspended
	deprovisioned = reconcile.StateDeprovisioned
)

// life builds an account as Lifecycle sees it: authoritative or not, active
// or not, removed or not.
func life(id string, authoritative, isActive, isRemoved bool) reconcile.Account {
	kind := "saml"
	if authoritative {
		kind = "scim"
	}
	return reconcile.Account{
		ID: id, SourceID: "src-" + id, SourceKind: kind,
		Authoritative: authoritative, Active: isActive, Removed: isRemoved,
	}
}

func authActive(id string) reconcile.Account   { return life(id, true, true, false) }
func authInactive(id string) reconcile.Account { return life(id, true, false, false) }
func authRemoved(id string) reconcile.Account  { return life(id, true, true, true) }
func jitActive(id string) reconcile.Account    { return life(id, false, true, false) }
func jitInactive(id string) reconcile.Account  { return life(id, false, false, false) }
func jitRemoved(id string) reconcile.Account   { return life(id, false, true, true) }

func TestLifecycle(t *testing.T) {
	cases := []struct {
		name           string
		current        reconcile.State
		adminSuspended bool
		accounts       []reconcile.Account
		want           reconcile.State
	}{
		// An authoritative active account keeps the person active.
		{name: "authoritative active keeps active", current: active,
			accounts: []reconcile.Account{authActive("hr")}, want: active},
		{name: "one authoritative active among removed ones keeps active", current: active,
			accounts: []reconcile.Account{authRemoved("hr-old"), authInactive("ldap"), authActive("hr-new")}, want: active},
		{name: "new person with an authoritative account is active", current: "",
			accounts: []reconcile.Account{authActive("hr")}, want: active},

		// Non-authoritative sources can neither deprovision...
		{name: "non-authoritative removal cannot deprovision", current: active,
			accounts: []reconcile.Account{authActive("hr"), jitRemoved("idp")}, want: active},
		{name: "non-authoritative inactive cannot deprovision", current: active,
			accounts: []reconcile.Account{jitInactive("idp"), authActive("hr")}, want: active},
		// ... nor keep someone alive.
		{name: "non-authoritative active cannot keep alive past a removed authoritative", current: active,
			accounts: []reconcile.Account{authRemoved("hr"), jitActive("idp")}, want: deprovisioned},
		{name: "non-authoritative active cannot keep alive past an inactive authoritative", current: active,
			accounts: []reconcile.Account{jitActive("idp"), jitActive("oidc"), authInactive("hr")}, want: deprovisioned},
		{name: "non-authoritative active cannot reactivate while authoritative is removed", current: deprovisioned,
			accounts: []reconcile.Account{authRemoved("hr"), jitActive("idp")}, want: deprovisioned},

		// All authoritative accounts removed or inactive: deprovisioned.
		{name: "only authoritative account removed deprovisions", current: active,
			accounts: []reconcile.Account{authRemoved("hr")}, want: deprovisioned},
		{name: "only authoritative account inactive deprovisions", current: active,
			accounts: []reconcile.Account{authInactive("hr")}, want: deprovisioned},
		{name: "removed authoritative counts even if still flagged active", current: active,
			accounts: []reconcile.Account{life("hr", true, true, true)}, want: deprovisioned},
		{name: "removed and inactive authoritative deprovisions", current: active,
			accounts: []reconcile.Account{life("hr", true, false, true)}, want: deprovisioned},
		{name: "mix of removed and inactive authoritative deprovisions", current: active,
			accounts: []reconcile.Account{authRemoved("hr"), authInactive("ldap")}, want: deprovisioned},
		{name: "deprovisioned stays deprovisioned while authoritative is gone", current: deprovisioned,
			accounts: []reconcile.Account{authRemoved("hr")}, want: deprovisioned},
		{name: "suspended person whose authoritative is gone is deprovisioned", current: suspended,
			accounts: []reconcile.Account{authRemoved("hr")}, want: deprovisioned},

		// JIT-only people.
		{name: "jit-only stays active", current: active,
			accounts: []reconcile.Account{jitActive("idp")}, want: active},
		{name: "jit-only removed stays active", current: active,
			accounts: []reconcile.Account{jitRemoved("idp")}, want: active},
		{name: "jit-only inactive stays active", current: active,
			accounts: []reconcile.Account{jitInactive("idp"), jitRemoved("oidc")}, want: active},
		{name: "new jit-only person is active", current: "",
			accounts: []reconcile.Account{jitActive("idp")}, want: active},
		{name: "jit-only cannot reactivate a deprovisioned person", current: deprovisioned,
			accounts: []reconcile.Account{jitActive("idp")}, want: deprovisioned},
		{name: "jit-only with several active logins cannot reactivate", current: deprovisioned,
			accounts: []reconcile.Account{jitActive("saml"), jitActive("oidc")}, want: deprovisioned},
		{name: "no accounts: deprovisioned stays deprovisioned", current: deprovisioned,
			accounts: nil, want: deprovisioned},
		{name: "no accounts: active stays active", current: active,
			accounts: nil, want: active},

		// Admin suspension sticks until lifted.
		{name: "admin suspension sticks despite authoritative active", current: suspended, adminSuspended: true,
			accounts: []reconcile.Account{authActive("hr")}, want: suspended},
		{name: "admin suspension applies to an active person", current: active, adminSuspended: true,
			accounts: []reconcile.Account{authActive("hr"), jitActive("idp")}, want: suspended},
		{name: "admin suspension sticks for jit-only", current: suspended, adminSuspended: true,
			accounts: []reconcile.Account{jitActive("idp")}, want: suspended},
		{name: "admin suspension sticks with no accounts", current: suspended, adminSuspended: true,
			accounts: nil, want: suspended},
		{name: "lifted suspension with authoritative active restores", current: suspended,
			accounts: []reconcile.Account{authActive("hr")}, want: active},
		{name: "lifted suspension for jit-only restores", current: suspended,
			accounts: []reconcile.Account{jitActive("idp")}, want: active},

		// Deprovisioning outranks suspension.
		{name: "deprovisioning outranks admin suspension", current: suspended, adminSuspended: true,
			accounts: []reconcile.Account{authRemoved("hr")}, want: deprovisioned},
		{name: "deprovisioning outranks admin suspension of an active person", current: active, adminSuspended: true,
			accounts: []reconcile.Account{authInactive("hr"), jitActive("idp")}, want: deprovisioned},
		{name: "admin suspension does not undo a jit-only deprovisioning", current: deprovisioned, adminSuspended: true,
			accounts: []reconcile.Account{jitActive("idp")}, want: deprovisioned},

		// Reappearing in an authoritative source reactivates.
		{name: "reappearing authoritative account reactivates", current: deprovisioned,
			accounts: []reconcile.Account{authActive("hr")}, want: active},
		{name: "reappearing in another authoritative source reactivates", current: deprovisioned,
			accounts: []reconcile.Account{authRemoved("hr-old"), jitActive("idp"), authActive("ldap")}, want: active},
		{name: "reappearing while admin-suspended gives suspended", current: deprovisioned, adminSuspended: true,
			accounts: []reconcile.Account{authActive("hr")}, want: suspended},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			if got := reconcile.Lifecycle(tc.current, tc.adminSuspended, tc.accounts); got != tc.want {
				t.Errorf("Lifecycle(%q, %v, given order) = %q, want %q", tc.current, tc.adminSuspended, got, tc.want)
			}
			if got := reconcile.Lifecycle(tc.current, tc.adminSuspended, reversed(tc.accounts)); got != tc.want {
				t.Errorf("Lifecycle(%q, %v, reversed order) = %q, want %q", tc.current, tc.adminSuspended, got, tc.want)
			}
		})
	}
}

func TestTransition(t *testing.T) {
	cases := []struct {
		name     string
		from, to reconcile.State
		want     string
	}{
		{name: "active to active is no change", from: active, to: active, want: ""},
		{name: "suspended to suspended is no change", from: suspended, to: suspended, want: ""},
		{name: "deprovisioned to deprovisioned is no change", from: deprovisioned, to: deprovisioned, want: ""},
		{name: "active to suspended", from: active, to: suspended, want: "identity.suspended"},
		{name: "deprovisioned to suspended", from: deprovisioned, to: suspended, want: "identity.suspended"},
		{name: "active to deprovisioned", from: active, to: deprovisioned, want: "identity.deprovisioned"},
		{name: "suspended to deprovisioned", from: suspended, to: deprovisioned, want: "identity.deprovisioned"},
		{name: "deprovisioned to active reactivates", from: deprovisioned, to: active, want: "identity.reactivated"},
		{name: "suspended to active restores", from: suspended, to: active, want: "identity.restored"},
		{name: "unknown target state", from: active, to: reconcile.State("archived"), want: "identity.state_changed"},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			if got := reconcile.Transition(tc.from, tc.to); got != tc.want {
				t.Errorf("Transition(%q, %q) = %q, want %q", tc.from, tc.to, got, tc.want)
			}
		})
	}
}

// TestLifecycleTransitions checks the audit action the engine would record
// for whole scenarios: Lifecycle decides, Transition names it.
func TestLifecycleTransitions(t *testing.T) {
	cases := []struct {
		name           string
		current        reconcile.State
		adminSuspended bool
		accounts       []reconcile.Account
		want           string
	}{
		{name: "authoritative removal deprovisions", current: active,
			accounts: []reconcile.Account{authRemoved("hr"), jitActive("idp")}, want: "identity.deprovisioned"},
		{name: "authoritative reappearance reactivates", current: deprovisioned,
			accounts: []reconcile.Account{authActive("hr")}, want: "identity.reactivated"},
		{name: "jit login after deprovisioning records nothing", current: deprovisioned,
			accounts: []reconcile.Account{jitActive("idp")}, want: ""},
		{name: "admin suspension is recorded", current: active, adminSuspended: true,
			accounts: []reconcile.Account{authActive("hr")}, want: "identity.suspended"},
		{name: "lifting a suspension restores", current: suspended,
			accounts: []reconcile.Account{authActive("hr")}, want: "identity.restored"},
		{name: "steady active state records nothing", current: active,
			accounts: []reconcile.Account{authActive("hr"), jitRemoved("idp")}, want: ""},
	}
	for _, tc := range cases {
		t.Run("case="+tc.name, func(t *testing.T) {
			next := reconcile.Lifecycle(tc.current, tc.adminSuspended, tc.accounts)
			if got := reconcile.Transition(tc.current, next); got != tc.want {
				t.Errorf("%q -> %q named %q, want %q", tc.current, next, got, tc.want)
			}
		})
	}
}

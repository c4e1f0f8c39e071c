package reconcile

// State is a person's lifecycle state.
type State string

const (
	// StateActive: may sign in and is provisioned downstream.
	StateActive State = "active"
	// StateSuspended: an admin (or an inactivity rule acting for one) set the
	// identity's suspension flag; it sticks until lifted, whatever the
	// sources say. Lifecycle derives it from that flag.
	StateSuspended State = "suspended"
	// StateDeprovisioned: the person's authoritative sources no longer hold
	// them as active. Reappearing in one reactivates the same identity.
	StateDeprovisioned State = "deprovisioned"
)

// Lifecycle derives the state of one identity from its accounts.
//
//   - A person is active while at least one authoritative source holds an
//     active account for them.
//   - A person who has authoritative accounts but none of them is live and
//     active any more is deprovisioned — non-authoritative sources (JIT by
//     default) can neither deprovision nor keep someone alive.
//   - A person only non-authoritative sources know stays as they are:
//     active, unless they were deprovisioned before (JIT cannot undo that).
//   - An admin suspension sticks until lifted; deprovisioning outranks it.
func Lifecycle(current State, adminSuspended bool, accounts []Account) State {
	hasAuth, authActive := false, false
	for _, a := range accounts {
		if !a.Authoritative {
			continue
		}
		hasAuth = true
		if a.Active && !a.Removed {
			authActive = true
		}
	}
	switch {
	case hasAuth && !authActive:
		return StateDeprovisioned
	case !hasAuth && current == StateDeprovisioned:
		return StateDeprovisioned
	case adminSuspended:
		return StateSuspended
	default:
		return StateActive
	}
}

// Transition names the audit action for a change of state, or "" for none.
func Transition(from, to State) string {
	if from == to {
		return ""
	}
	switch to {
	case StateSuspended:
		return "identity.suspended"
	case StateDeprovisioned:
		return "identity.deprovisioned"
	case StateActive:
		if from == StateDeprovisioned {
			return "identity.reactivated"
		}
		return "identity.restored"
	}
	return "identity.state_changed"
}

package engine

import "context"

// Plan.Events keys a pull records when it stops before any destructive
// write: how many deprovisions (an active account turned inactive) and
// removals (sweep or an explicit Removed) it would have made. Approving
// the quarantined run allows at most their sum.
const (
	PlannedDeprovisions = "planned.deprovisions"
	PlannedRemovals     = "planned.removals"
)

type approvalKey struct{}

// withApproval marks ctx as the rerun of an approved quarantined run: the
// threshold is lifted, but the run may still make at most limit
// destructive changes (what the admin saw in the plan).
func withApproval(ctx context.Context, limit int) context.Context {
	return context.WithValue(ctx, approvalKey{}, limit)
}

func approvalFrom(ctx context.Context) (int, bool) {
	n, ok := ctx.Value(approvalKey{}).(int)
	return n, ok
}

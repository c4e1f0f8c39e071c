package ldap

import (
	"context"
	"fmt"
	"time"

	"github.com/idsync/idsync/engine"
)

// Sync runs one pull of src: full (a snapshot: entries no longer returned
// are removed from the source) or incremental (entries changed since the
// watermark, applied as upserts). It returns the plan and the next
// watermark (the highest change value seen; "" when none). A time
// watermark is inclusive (entries at the mark are read again and change
// nothing) unless it is more than ClockSkew old when the sync starts; a
// USN watermark is exclusive.
//
// Nothing is removed or deprovisioned when the directory cannot be
// reached, refuses the bind, times out, answers with a referral or
// answers nothing: the stream fails (or is empty) and ApplySnapshot stops
// before any destructive write.
func Sync(ctx context.Context, e *engine.Engine, src engine.Source, full bool, watermark string, opts engine.SnapshotOptions) (engine.Plan, string, error) {
	started := time.Now()
	cfg, err := ParseConfig(src.Config)
	if err != nil {
		return engine.Plan{}, "", fmt.Errorf("source %s: %w", src.Name, err)
	}
	c, err := Connect(ctx, cfg)
	if err != nil {
		return engine.Plan{}, "", fmt.Errorf("source %s: %w", src.Name, err)
	}
	defer c.Close()
	var groups *GroupIndex
	if *cfg.Groups {
		if groups, err = c.LoadGroups(ctx); err != nil {
			return engine.Plan{}, "", fmt.Errorf("source %s: %w", src.Name, err)
		}
	}
	if opts.PageSize == 0 {
		opts.PageSize = cfg.PageSize
	}
	if full {
		watermark = ""
	} else {
		opts.Upsert = true
	}
	mark := watermark
	plan, err := e.ApplySnapshot(ctx, src.ID, c.Users(ctx, groups, watermark, &mark), opts)
	return plan, c.settleMark(mark, started), err
}

// Runner returns the scheduler runner of full (JobFull) or incremental
// (JobIncremental) LDAP jobs. A run's watermark is stored only when the
// run succeeded, i.e. after every page it covers committed; a full sync
// also sets it, so the next incremental starts from there.
func Runner(full bool) engine.Runner {
	return func(ctx context.Context, rc *engine.RunContext) (engine.Counts, *engine.Plan, error) {
		src, err := rc.Engine.Store().Source(ctx, rc.Job.SourceID)
		if err != nil {
			return engine.Counts{}, nil, err
		}
		opts := engine.SnapshotOptions{DryRun: rc.DryRun, Threshold: rc.Job.Threshold, Progress: rc.Progress}
		plan, mark, err := Sync(ctx, rc.Engine, src, full, rc.Job.Watermark, opts)
		if err == nil && !rc.DryRun && mark != "" && mark != rc.Job.Watermark {
			if werr := rc.SetWatermark(mark); werr != nil {
				return plan.Counts, &plan, werr
			}
		}
		return plan.Counts, &plan, err
	}
}

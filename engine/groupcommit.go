package engine

import (
	"context"
	"errors"
	"fmt"
)

// Group commit. On a store whose writers take turns anyway (SQLite: one
// write lock), concurrent Apply calls are gathered into one transaction:
// each observation runs inside its own savepoint (a failure rolls back that
// observation only), the audit events of the batch are appended once, and
// one commit makes them all durable. Callers still get their own Result or
// error. This is what lets many concurrent SCIM clients or logins share the
// single SQLite writer instead of queueing one commit each. PostgreSQL runs
// one transaction per observation (writers there proceed in parallel).

// SerializedWriter is implemented by stores whose write transactions run
// one at a time; the engine then groups concurrent applies.
type SerializedWriter interface {
	SerializedWrites() bool
}

// Savepointer is implemented by transactions that support savepoints.
type Savepointer interface {
	Savepoint(ctx context.Context, name string) error
	RollbackTo(ctx context.Context, name string) error
	Release(ctx context.Context, name string) error
}

const maxGroup = 64

type applyReq struct {
	ctx  context.Context
	obs  Observation
	hash string
	res  Result
	err  error
	done chan struct{}
}

type committer struct {
	e    *Engine
	reqs chan *applyReq
}

func newCommitter(e *Engine) *committer {
	c := &committer{e: e, reqs: make(chan *applyReq, 1024)}
	go c.loop()
	return c
}

// submit hands one observation to the committer and waits for its result.
func (c *committer) submit(ctx context.Context, obs Observation, hash string) (Result, error) {
	r := &applyReq{ctx: ctx, obs: obs, hash: hash, done: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		// The batch may still commit it; the caller has gone.
		return Result{}, ctx.Err()
	}
}

func (c *committer) loop() {
	batch := make([]*applyReq, 0, maxGroup)
	for first := range c.reqs {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxGroup {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		c.run(batch)
	}
}

// run applies a batch in one transaction; if the transaction itself fails,
// each observation is retried on its own so one bad apple spoils nothing.
func (c *committer) run(batch []*applyReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.err = r.ctx.Err()
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	e := c.e
	ctx := context.Background()
	var events []AuditEvent
	err := e.store.InTx(ctx, func(tx Tx) error {
		events = events[:0]
		if len(live) == 1 { // nothing to isolate: a plain transaction
			r := live[0]
			r.res, r.err = e.applyBatched(r.ctx, tx, r.obs, r.hash, nil, false, &events)
			if r.err != nil {
				return r.err
			}
			return appendEvents(ctx, tx, events)
		}
		sp, ok := tx.(Savepointer)
		if !ok {
			return fmt.Errorf("transaction has no savepoints: %w", errRetry)
		}
		for _, r := range live {
			r.res, r.err = Result{}, nil
			mark := len(events)
			if err := sp.Savepoint(ctx, "obs"); err != nil {
				return err
			}
			res, err := e.applyBatched(r.ctx, tx, r.obs, r.hash, nil, false, &events)
			if err != nil {
				if rerr := sp.RollbackTo(ctx, "obs"); rerr != nil {
					return rerr
				}
				events = events[:mark]
				r.err = err
			} else {
				r.res = res
			}
			if err := sp.Release(ctx, "obs"); err != nil {
				return err
			}
		}
		return appendEvents(ctx, tx, events)
	})
	if err != nil {
		// The batch failed as a whole: apply each on its own.
		for _, r := range live {
			r.res, r.err = e.applyOne(r.ctx, r.obs, r.hash)
			close(r.done)
		}
		return
	}
	if len(events) > 0 {
		e.opts.Metrics.AuditEvents(len(events))
	}
	for _, r := range live {
		if r.err != nil && errors.Is(r.err, ErrRetry) {
			r.res, r.err = e.applyOne(r.ctx, r.obs, r.hash)
		}
		close(r.done)
	}
}

// applyOne applies one observation in its own transaction, with retries.
func (e *Engine) applyOne(ctx context.Context, obs Observation, hash string) (Result, error) {
	var res Result
	err := e.inTx(ctx, func(tx Tx) error {
		var err error
		res, err = e.applyTx(ctx, tx, obs, hash, nil, false)
		return err
	})
	return res, err
}

func appendEvents(ctx context.Context, tx Tx, events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return tx.AppendAudit(ctx, events)
}

package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/idsync/idsync/engine"
)

type jobRow struct {
	ID         string  `db:"id"`
	OrgID      string  `db:"org_id"`
	SourceID   string  `db:"source_id"`
	Name       string  `db:"name"`
	Kind       string  `db:"kind"`
	Schedule   string  `db:"schedule"`
	TimeZone   string  `db:"time_zone"`
	Enabled    bool    `db:"enabled"`
	Threshold  float64 `db:"threshold"`
	Config     string  `db:"config"`
	Watermark  string  `db:"watermark"`
	LeaseOwner string  `db:"lease_owner"`
	LeaseUntil ts      `db:"lease_until"`
	LastRunAt  ts      `db:"last_run_at"`
	NextRunAt  ts      `db:"next_run_at"`
	CreatedAt  ts      `db:"created_at"`
	UpdatedAt  ts      `db:"updated_at"`
}

const jobCols = `id, org_id, source_id, name, kind, schedule, time_zone, enabled, threshold, config, watermark, lease_owner, lease_until, last_run_at, next_run_at, created_at, updated_at`

func (r jobRow) job() engine.Job {
	j := engine.Job{ID: r.ID, OrgID: r.OrgID, SourceID: r.SourceID, Name: r.Name, Kind: r.Kind, Schedule: r.Schedule,
		TimeZone: r.TimeZone, Enabled: r.Enabled, Threshold: r.Threshold, Watermark: r.Watermark, LeaseOwner: r.LeaseOwner,
		LeaseUntil: r.LeaseUntil.T(), LastRunAt: r.LastRunAt.T(), NextRunAt: r.NextRunAt.T(), CreatedAt: r.CreatedAt.T(), UpdatedAt: r.UpdatedAt.T()}
	if r.Config != "" && r.Config != "{}" {
		j.Config = json.RawMessage(r.Config)
	}
	return j
}

func (c conn) Job(ctx context.Context, id string) (engine.Job, error) {
	var r jobRow
	err := c.get(ctx, "job "+id, &r, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id)
	return r.job(), err
}

func (c conn) Jobs(ctx context.Context, orgID string) ([]engine.Job, error) {
	q := `SELECT ` + jobCols + ` FROM jobs`
	var args []any
	if orgID != "" {
		q += ` WHERE org_id = ?`
		args = append(args, orgID)
	}
	var rows []jobRow
	if err := c.sel(ctx, "jobs", &rows, q+` ORDER BY name`, args...); err != nil {
		return nil, err
	}
	out := make([]engine.Job, len(rows))
	for i, r := range rows {
		out[i] = r.job()
	}
	return out, nil
}

func (c txConn) CreateJob(ctx context.Context, j engine.Job) error {
	_, err := c.exec(ctx, "create job "+j.Name, `INSERT INTO jobs (`+jobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.OrgID, j.SourceID, j.Name, j.Kind, j.Schedule, j.TimeZone, j.Enabled, j.Threshold, configText(j.Config),
		j.Watermark, j.LeaseOwner, int64(tsOf(j.LeaseUntil)), tsOf(j.LastRunAt), tsOf(j.NextRunAt), tsOf(j.CreatedAt), tsOf(j.UpdatedAt))
	return err
}

// UpdateJob writes a job's settings, watermark and run times; the lease is
// only changed by TryLease and ReleaseLease.
func (c txConn) UpdateJob(ctx context.Context, j engine.Job) error {
	r, err := c.exec(ctx, "update job "+j.Name, `UPDATE jobs SET source_id = ?, name = ?, kind = ?, schedule = ?, time_zone = ?, enabled = ?,
		threshold = ?, config = ?, watermark = ?, last_run_at = ?, next_run_at = ?, updated_at = ? WHERE id = ?`,
		j.SourceID, j.Name, j.Kind, j.Schedule, j.TimeZone, j.Enabled, j.Threshold, configText(j.Config), j.Watermark,
		tsOf(j.LastRunAt), tsOf(j.NextRunAt), tsOf(j.UpdatedAt), j.ID)
	if err != nil {
		return err
	}
	return mustAffect(r, "update job "+j.ID)
}

func (c txConn) DeleteJob(ctx context.Context, id string) error {
	r, err := c.exec(ctx, "delete job", `DELETE FROM jobs WHERE id = ?`, id)
	if err != nil {
		return err
	}
	return mustAffect(r, "delete job "+id)
}

// TryLease takes the job's lease for owner if it is free, expired or
// already owner's — one conditional UPDATE, atomic on both backends.
func (s *DB) TryLease(ctx context.Context, jobID, owner string, now, until time.Time) (bool, error) {
	r, err := s.exec(ctx, "lease job", `UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id = ? AND (lease_owner = '' OR lease_owner = ? OR lease_until < ?)`,
		owner, until.UnixMicro(), jobID, owner, now.UnixMicro())
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, mapErr(err)
}

// ReleaseLease frees the lease if owner still holds it.
func (s *DB) ReleaseLease(ctx context.Context, jobID, owner string) error {
	_, err := s.exec(ctx, "release job lease", `UPDATE jobs SET lease_owner = '', lease_until = 0 WHERE id = ? AND lease_owner = ?`, jobID, owner)
	return err
}

type runRow struct {
	ID         string  `db:"id"`
	JobID      string  `db:"job_id"`
	Status     string  `db:"status"`
	DryRun     bool    `db:"dry_run"`
	StartedAt  ts      `db:"started_at"`
	FinishedAt ts      `db:"finished_at"`
	Counts     string  `db:"counts"`
	Error      string  `db:"error"`
	Plan       *string `db:"plan"`
}

const runCols = `id, job_id, status, dry_run, started_at, finished_at, counts, error, plan`

func (r runRow) run() engine.JobRun {
	x := engine.JobRun{ID: r.ID, JobID: r.JobID, Status: r.Status, DryRun: r.DryRun, StartedAt: r.StartedAt.T(),
		FinishedAt: r.FinishedAt.T(), Error: r.Error}
	fromJSON(r.Counts, &x.Counts)
	if r.Plan != nil {
		x.Plan = json.RawMessage(*r.Plan)
	}
	return x
}

func (c conn) JobRun(ctx context.Context, id string) (engine.JobRun, error) {
	var r runRow
	err := c.get(ctx, "job run "+id, &r, `SELECT `+runCols+` FROM job_runs WHERE id = ?`, id)
	return r.run(), err
}

func (c conn) JobRuns(ctx context.Context, jobID string, limit int) ([]engine.JobRun, error) {
	if limit <= 0 {
		limit = 50
	}
	var rows []runRow
	if err := c.sel(ctx, "job runs", &rows, fmt.Sprintf(`SELECT `+runCols+` FROM job_runs WHERE job_id = ? ORDER BY started_at DESC, id DESC LIMIT %d`, limit), jobID); err != nil {
		return nil, err
	}
	out := make([]engine.JobRun, len(rows))
	for i, r := range rows {
		out[i] = r.run()
	}
	return out, nil
}

func (c txConn) CreateJobRun(ctx context.Context, r engine.JobRun) error {
	_, err := c.exec(ctx, "create job run", `INSERT INTO job_runs (`+runCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.JobID, r.Status, r.DryRun, tsOf(r.StartedAt), tsOf(r.FinishedAt), jsonOf(r.Counts), r.Error, nullText(r.Plan))
	return err
}

func (c txConn) UpdateJobRun(ctx context.Context, r engine.JobRun) error {
	res, err := c.exec(ctx, "update job run", `UPDATE job_runs SET status = ?, finished_at = ?, counts = ?, error = ?, plan = ? WHERE id = ?`,
		r.Status, tsOf(r.FinishedAt), jsonOf(r.Counts), r.Error, nullText(r.Plan), r.ID)
	if err != nil {
		return err
	}
	return mustAffect(res, "update job run "+r.ID)
}

type tokenRow struct {
	ID         string `db:"id"`
	Kind       string `db:"kind"`
	OrgID      string `db:"org_id"`
	SourceID   string `db:"source_id"`
	Name       string `db:"name"`
	Scope      string `db:"scope"`
	Prefix     string `db:"prefix"`
	Hash       string `db:"hash"`
	CreatedAt  ts     `db:"created_at"`
	RevokedAt  ts     `db:"revoked_at"`
	LastUsedAt ts     `db:"last_used_at"`
}

const tokenCols = `id, kind, org_id, source_id, name, scope, prefix, hash, created_at, revoked_at, last_used_at`

func (r tokenRow) token() engine.Token {
	return engine.Token{ID: r.ID, Kind: r.Kind, OrgID: r.OrgID, SourceID: r.SourceID, Name: r.Name, Scope: r.Scope,
		Prefix: r.Prefix, Hash: r.Hash, CreatedAt: r.CreatedAt.T(), RevokedAt: r.RevokedAt.T(), LastUsedAt: r.LastUsedAt.T()}
}

func (c conn) TokenByHash(ctx context.Context, hash string) (engine.Token, error) {
	var r tokenRow
	err := c.get(ctx, "token", &r, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash)
	return r.token(), err
}

func (c conn) Tokens(ctx context.Context, kind, orgID string) ([]engine.Token, error) {
	q := `SELECT ` + tokenCols + ` FROM tokens WHERE kind = ?`
	args := []any{kind}
	if orgID != "" {
		q += ` AND org_id = ?`
		args = append(args, orgID)
	}
	var rows []tokenRow
	if err := c.sel(ctx, "tokens", &rows, q+` ORDER BY created_at, id`, args...); err != nil {
		return nil, err
	}
	out := make([]engine.Token, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, nil
}

func (c txConn) CreateToken(ctx context.Context, t engine.Token) error {
	_, err := c.exec(ctx, "create token", `INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Kind, t.OrgID, t.SourceID, t.Name, t.Scope, t.Prefix, t.Hash, tsOf(t.CreatedAt), tsOf(t.RevokedAt), tsOf(t.LastUsedAt))
	return err
}

func (c txConn) RevokeToken(ctx context.Context, id string, at time.Time) error {
	r, err := c.exec(ctx, "revoke token", `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, tsOf(at), id)
	if err != nil {
		return err
	}
	return mustAffect(r, "revoke token "+id)
}

// Package file pulls people from a CSV or JSON-lines file at a path on a
// schedule, as a snapshot (people no longer in the file are removed from
// the source, with the engine's threshold and empty-file guards) or as
// upserts (nothing removed). It owns reading the file (the format is the
// one of `idsync person import`, engine.ReadPeople) and its config; it
// must not write to the database itself or hold the file in memory.
package file

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/idsync/idsync/engine"
)

// Config is the config of a file source (Source.Config, JSON). A YAML
// example:
//
//	path: /var/lib/idsync/hr-export.csv
//	format: csv        # csv or jsonl; default from the extension
//	mode: snapshot     # snapshot (full jobs remove the missing) or upsert
//	keyAttr: employeeNumber  # key when a row has no "key" column
//
// CSV: a header of attribute names plus optional key, groups and roles
// (";"-separated) and active (true/false). JSON lines: one
// {"key":…,"attributes":{…},"groups":[…],"inactive":false} per line.
type Config struct {
	Path    string `json:"path"`
	Format  string `json:"format,omitempty"`
	Mode    string `json:"mode,omitempty"`
	KeyAttr string `json:"keyAttr,omitempty"`
}

// ParseConfig reads and validates a file source's config, reporting every
// problem at once.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	var probs []string
	if len(raw) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("file config: %v: %w", err, engine.ErrInvalid)
		}
	}
	if c.Format == "" {
		switch strings.ToLower(filepath.Ext(c.Path)) {
		case ".jsonl", ".ndjson", ".json":
			c.Format = "jsonl"
		default:
			c.Format = "csv"
		}
	}
	if c.Mode == "" {
		c.Mode = "snapshot"
	}
	if c.Path == "" || !filepath.IsAbs(c.Path) {
		probs = append(probs, fmt.Sprintf("path %q must be absolute", c.Path))
	}
	if c.Format != "csv" && c.Format != "jsonl" {
		probs = append(probs, fmt.Sprintf("format %q is not csv or jsonl", c.Format))
	}
	if c.Mode != "snapshot" && c.Mode != "upsert" {
		probs = append(probs, fmt.Sprintf("mode %q is not snapshot or upsert", c.Mode))
	}
	if len(probs) > 0 {
		return c, fmt.Errorf("file config: %s: %w", strings.Join(probs, "; "), engine.ErrInvalid)
	}
	return c, nil
}

// Observations streams the file's people, one at a time.
func (c Config) Observations(f *os.File) iter.Seq2[engine.Observation, error] {
	return func(yield func(engine.Observation, error) bool) {
		for p, err := range engine.ReadPeople(f, engine.ImportFormat(c.Format)) {
			if err != nil {
				yield(engine.Observation{}, fmt.Errorf("%s: %w", c.Path, err))
				return
			}
			key := p.Key
			for _, k := range []string{c.KeyAttr, "externalId", "employeeNumber", "userName", "email"} {
				if key == "" && k != "" {
					key = p.Attrs[k]
				}
			}
			obs := engine.Observation{Key: key, Attrs: p.Attrs, Groups: p.Groups, Roles: p.Roles, Inactive: p.Inactive}
			if !yield(obs, nil) {
				return
			}
		}
	}
}

// Sync applies the file once: as a snapshot when full and the mode is
// snapshot, else as upserts. A missing or unreadable file, or a malformed
// line, stops it before anything is removed.
func Sync(ctx context.Context, e *engine.Engine, src engine.Source, full bool, opts engine.SnapshotOptions) (engine.Plan, error) {
	cfg, err := ParseConfig(src.Config)
	if err != nil {
		return engine.Plan{}, fmt.Errorf("source %s: %w", src.Name, err)
	}
	f, err := os.Open(cfg.Path)
	if err != nil {
		return engine.Plan{}, fmt.Errorf("source %s: %v: %w", src.Name, err, engine.ErrUnavailable)
	}
	defer f.Close()
	opts.Upsert = !full || cfg.Mode == "upsert"
	return e.ApplySnapshot(ctx, src.ID, cfg.Observations(f), opts)
}

// Runner returns the scheduler runner of full or incremental (upsert)
// file jobs.
func Runner(full bool) engine.Runner {
	return func(ctx context.Context, rc *engine.RunContext) (engine.Counts, *engine.Plan, error) {
		src, err := rc.Engine.Store().Source(ctx, rc.Job.SourceID)
		if err != nil {
			return engine.Counts{}, nil, err
		}
		plan, err := Sync(ctx, rc.Engine, src, full, engine.SnapshotOptions{DryRun: rc.DryRun,
			Threshold: rc.Job.Threshold, Progress: rc.Progress})
		return plan.Counts, &plan, err
	}
}

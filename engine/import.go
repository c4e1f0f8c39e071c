package engine

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
)

// ImportFormat names a bulk import format.
type ImportFormat string

const (
	// FormatJSONL is one Person object per line.
	FormatJSONL ImportFormat = "jsonl"
	// FormatCSV has a header row of attribute names plus the optional
	// columns key, groups and roles (";"-separated) and active (true/false).
	FormatCSV ImportFormat = "csv"
)

// ReadPeople parses a bulk import stream lazily; a malformed line stops the
// stream with an error naming the line.
func ReadPeople(r io.Reader, format ImportFormat) iter.Seq2[Person, error] {
	switch format {
	case FormatJSONL:
		return readJSONL(r)
	case FormatCSV:
		return readCSV(r)
	}
	return func(yield func(Person, error) bool) {
		yield(Person{}, fmt.Errorf("import format %q is not jsonl or csv: %w", format, ErrInvalid))
	}
}

func readJSONL(r io.Reader) iter.Seq2[Person, error] {
	return func(yield func(Person, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			b := strings.TrimSpace(sc.Text())
			if b == "" {
				continue
			}
			var p Person
			dec := json.NewDecoder(strings.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				yield(Person{}, fmt.Errorf("line %d: %v: %w", line, err, ErrInvalid))
				return
			}
			if !yield(p, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(Person{}, fmt.Errorf("line %d: %w", line+1, errors.Join(err, ErrInvalid)))
		}
	}
}

func readCSV(r io.Reader) iter.Seq2[Person, error] {
	return func(yield func(Person, error) bool) {
		cr := csv.NewReader(r)
		cr.TrimLeadingSpace = true
		header, err := cr.Read()
		if err != nil {
			yield(Person{}, fmt.Errorf("csv header: %v: %w", err, ErrInvalid))
			return
		}
		for i := range header {
			header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
		}
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Person{}, fmt.Errorf("csv: %v: %w", err, ErrInvalid))
				return
			}
			line, _ := cr.FieldPos(0)
			p := Person{Attrs: Attrs{}}
			for i, col := range header {
				v := strings.TrimSpace(rec[i])
				switch col {
				case "key":
					p.Key = v
				case "groups":
					p.Groups = splitList(v)
				case "roles":
					p.Roles = splitList(v)
				case "active":
					if v != "" {
						b, err := strconv.ParseBool(v)
						if err != nil {
							yield(Person{}, fmt.Errorf("csv line %d: active %q is not true or false: %w", line, v, ErrInvalid))
							return
						}
						p.Inactive = !b
					}
				default:
					if v != "" {
						p.Attrs[col] = v
					}
				}
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

func splitList(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Import creates or updates people in bulk through the organization's admin
// source: the same rules and audit as CreatePerson, in pages. A malformed
// line stops the import; pages before it stay committed and the error says
// where it stopped.
func (e *Engine) Import(ctx context.Context, by Admin, orgID string, r io.Reader, format ImportFormat, opts SnapshotOptions) (Plan, error) {
	src, err := e.AdminSource(ctx, orgID)
	if err != nil {
		return Plan{}, err
	}
	obs := func(yield func(Observation, error) bool) {
		for p, err := range ReadPeople(r, format) {
			if err != nil {
				yield(Observation{}, err)
				return
			}
			o, err := p.observation(src.ID, by)
			if err != nil {
				// A person without a key: keep going, counted as an error.
				o = Observation{SourceID: src.ID, Attrs: p.Attrs}
			}
			if !yield(o, nil) {
				return
			}
		}
	}
	return e.ApplyAll(ctx, src.ID, obs, opts)
}

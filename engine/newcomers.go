package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/idsync/idsync/reconcile"
)

// newcomers holds back the rows of the people a snapshot page creates, so
// that they reach the database in a few multi-row inserts (Tx.InsertNew)
// instead of five or six statements each. Measured on SQLite, a statement's
// fixed cost was as large as the work of inserting its row.
//
// Buffered rows are invisible to the transaction's reads, so applyPage and
// applyHinted flush them before any read that could see them:
//   - before every observation that is not a newcomer's first statement in
//     the page (it reads its account, identity, memberships…);
//   - before matching an observation whose matching values equal one of a
//     buffered person's (the candidates query must find them);
//   - when a newcomer's observation turns out not to create a person
//     (a link or a conflict);
//   - before the page's audit append and commit.
//
// A newcomer's own writes read nothing the buffer holds: its identity,
// account, organization membership and group edges are all new rows
// (groups themselves are written through, and memoised per transaction).
type newcomers struct {
	rows NewRows
	// norms holds rule attribute + "\x00" + lower-cased value of each
	// buffered person's matching attributes.
	norms map[string]struct{}
	// In a grouped write (writer.go) each call runs in a savepoint: mark
	// is where the current call's rows begin, and crossed says a flush
	// during the call wrote rows of earlier calls (which a rollback of the
	// call would then undo as well).
	mark    [4]int
	crossed bool
	// ahead, in a snapshot page, inserts full chunks of buffered people
	// in the background while the page goes on (see inserter).
	ahead *inserter
}

// inserter writes chunks of a page's newcomers through the page's
// transaction from its own goroutine, while the page's goroutine works out
// the next people: on two cores the statements and the engine's work then
// overlap. database/sql serialises the two goroutines' use of the
// connection. Only newcomers' rows go this way, and they are read by no
// one until flush, which first waits for the inserter to be idle.
type inserter struct {
	ch   chan NewRows
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
	stop func()
}

// aheadChunk is how many people a background insert carries.
const aheadChunk = 64

func startInserter(ctx context.Context, tx Tx) *inserter {
	in := &inserter{ch: make(chan NewRows, 2)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rows := range in.ch {
			in.mu.Lock()
			failed := in.err != nil
			in.mu.Unlock()
			if !failed {
				if err := tx.InsertNew(ctx, rows); err != nil {
					in.mu.Lock()
					in.err = err
					in.mu.Unlock()
				}
			}
			in.wg.Done()
		}
	}()
	in.stop = func() { close(in.ch); <-done }
	return in
}

// wait returns once every chunk handed over is written, with the first
// error.
func (in *inserter) wait() error {
	in.wg.Wait()
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

// handOff gives the rows buffered so far (complete people: it runs before
// the next person's first row) to the inserter when there are enough.
// (Handing the page's audit events over too was measured slower: the
// append holds the connection the page's reads wait for.)
func (n *newcomers) handOff() {
	if n.ahead == nil || len(n.rows.Identities) < aheadChunk {
		return
	}
	n.ahead.wg.Add(1)
	n.ahead.ch <- n.rows
	n.rows = NewRows{Identities: make([]Identity, 0, aheadChunk), Accounts: make([]Account, 0, aheadChunk),
		OrgMembers: make([]OrgMembership, 0, aheadChunk), Memberships: make([]Membership, 0, 2*aheadChunk)}
}

func (n *NewRows) lens() [4]int {
	return [4]int{len(n.Identities), len(n.Accounts), len(n.OrgMembers), len(n.Memberships)}
}

// begin marks the start of a call of a grouped write.
func (n *newcomers) begin() {
	n.mark, n.crossed = n.rows.lens(), false
}

// undo drops the rows the current call buffered, after its savepoint was
// rolled back; false when a flush during the call wrote earlier calls'
// rows, which the rollback undid too (the caller must then give up the
// whole transaction).
func (n *newcomers) undo() bool {
	if n.crossed {
		return false
	}
	m := n.mark
	n.rows.Identities, n.rows.Accounts = n.rows.Identities[:m[0]], n.rows.Accounts[:m[1]]
	n.rows.OrgMembers, n.rows.Memberships = n.rows.OrgMembers[:m[2]], n.rows.Memberships[:m[3]]
	clear(n.norms)
	for _, i := range n.rows.Identities {
		n.addNorms(i.Attrs)
	}
	return true
}

func (n *newcomers) addNorms(a Attrs) {
	for _, attr := range MatchableAttrs() {
		if v := a[attr]; strings.TrimSpace(v) != "" {
			n.norms[normKey(attr, v)] = struct{}{}
		}
	}
}

func newNewcomers() *newcomers { return &newcomers{norms: map[string]struct{}{}} }

func normKey(attr, value string) string {
	return attr + "\x00" + strings.ToLower(strings.TrimSpace(value))
}

// mayMatch reports whether a buffered person holds one of values (rule
// attribute → value), that is, could be a matching candidate.
func (n *newcomers) mayMatch(values map[string]string) bool {
	if n == nil || len(n.norms) == 0 {
		return false
	}
	for attr, v := range values {
		if _, ok := n.norms[normKey(attr, v)]; ok {
			return true
		}
	}
	return false
}

// flush writes the buffered rows in tx (after what the inserter holds).
func (n *newcomers) flush(ctx context.Context, tx Tx) error {
	if n == nil {
		return nil
	}
	if n.ahead != nil {
		if err := n.ahead.wait(); err != nil {
			return err
		}
	}
	if len(n.rows.Identities)+len(n.rows.Accounts)+len(n.rows.OrgMembers)+len(n.rows.Memberships) == 0 {
		clear(n.norms)
		return nil
	}
	if n.mark != [4]int{} {
		n.crossed = true
	}
	n.mark = [4]int{}
	err := tx.InsertNew(ctx, n.rows)
	n.rows = NewRows{Identities: n.rows.Identities[:0], Accounts: n.rows.Accounts[:0],
		OrgMembers: n.rows.OrgMembers[:0], Memberships: n.rows.Memberships[:0]}
	clear(n.norms)
	return err
}

// bufferedTx is the transaction a newcomer is written through: its inserts
// go to the buffer, everything else to the transaction.
type bufferedTx struct {
	Tx
	n *newcomers
}

func (b bufferedTx) InsertIdentity(_ context.Context, i Identity) error {
	b.n.handOff() // the people buffered so far are complete
	b.n.rows.Identities = append(b.n.rows.Identities, i)
	b.n.addNorms(i.Attrs)
	return nil
}

func (b bufferedTx) InsertAccount(_ context.Context, a Account) error {
	b.n.rows.Accounts = append(b.n.rows.Accounts, a)
	return nil
}

// UpsertOrgMembership of a newcomer is an insert: they have no membership.
func (b bufferedTx) UpsertOrgMembership(_ context.Context, m OrgMembership) error {
	b.n.rows.OrgMembers = append(b.n.rows.OrgMembers, m)
	return nil
}

func (b bufferedTx) AddMembership(_ context.Context, m Membership) error {
	b.n.rows.Memberships = append(b.n.rows.Memberships, m)
	return nil
}

// page is what the observations of one snapshot page share in its
// transaction: the newcomers buffer, the candidates read ahead for them,
// and the matching values of every person the page has written so far.
type page struct {
	news *newcomers
	// candidates[i] are the matching candidates of the page's observation
	// i, read in one query before the first write (nil: not read ahead).
	candidates []map[string][]reconcile.Candidate
	// touched holds rule attribute + "\x00" + lower-cased value of every
	// person the page wrote (their values before and after): candidates
	// read ahead for those values may be stale, so they are queried again.
	// nil when nothing was read ahead (then nothing needs it).
	touched map[string]struct{}
}

// pageHint is one observation's view of its page (page is nil for an
// observation applied alone whose key is known to be new).
type pageHint struct {
	page *page
	// absent: a read just before the transaction found no account for
	// the key, so it is not read again and a person it creates is
	// buffered (a concurrent insert of the same key then fails on the
	// unique key, and the page reruns without hints).
	absent bool
	// candidates read ahead for this observation, or nil.
	candidates map[string][]reconcile.Candidate
}

// newPage reads ahead, in one query, the matching candidates of the
// observations whose key had no account (when hinted).
func (e *Engine) newPage(ctx context.Context, tx Tx, todo []Observation, absent []bool, hinted bool) (*page, error) {
	pg := &page{news: newNewcomers(), candidates: make([]map[string][]reconcile.Candidate, len(todo))}
	if !hinted || len(todo) < 2 {
		return pg, nil
	}
	src, org, err := e.source(ctx, tx, todo[0].SourceID)
	if err != nil {
		return nil, err
	}
	var (
		values []map[string]string
		which  []int
	)
	for i, obs := range todo {
		if !absent[i] || obs.SourceID != src.ID {
			continue
		}
		if v := matchValues(org, obs); len(v) > 0 {
			values = append(values, v)
			which = append(which, i)
		}
	}
	if len(values) < 2 {
		return pg, nil
	}
	found, err := tx.FindCandidatesMany(ctx, org.ID, src.ID, values)
	if err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	for k, i := range which {
		pg.candidates[i] = found[k]
	}
	pg.touched = map[string]struct{}{}
	return pg, nil
}

// touch records the matching values of a person the page wrote.
func (p *page) touch(before, after Attrs) {
	if p.touched == nil {
		return
	}
	for _, attrs := range []Attrs{before, after} {
		for _, attr := range MatchableAttrs() {
			if v := attrs[attr]; strings.TrimSpace(v) != "" {
				p.touched[normKey(attr, v)] = struct{}{}
			}
		}
	}
}

// touchedAny reports whether a person the page wrote holds one of values.
func (p *page) touchedAny(values map[string]string) bool {
	for attr, v := range values {
		if _, ok := p.touched[normKey(attr, v)]; ok {
			return true
		}
	}
	return false
}

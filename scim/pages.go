package scim

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/idsync/idsync/engine"
)

// pageCache remembers, for imports that page through a directory with
// startIndex/count (Okta steps by 100 through every user), where the next
// page starts (a keyset cursor: the id of the last row served) and the
// total of the first page, so that page n does not skip n×count rows and
// count them all again. It is per process and only an accelerator: a miss
// falls back to OFFSET and COUNT. Totals are reused only while this
// process made no write to the directory and for at most totalTTL; other
// processes' writes can make a reused total that old.
type pageCache struct {
	mu      sync.Mutex
	cursors map[string]cursor
	totals  map[string]total
	gen     map[string]uint64 // source → writes seen
}

type cursor struct {
	after string
	at    time.Time
}

type total struct {
	n   int
	gen uint64
	at  time.Time
}

const (
	maxCursors = 10000
	cursorTTL  = 10 * time.Minute
	totalTTL   = 5 * time.Second
)

func queryKey(q engine.SCIMQuery) string {
	return q.SourceID + "\x00" + q.Type + "\x00" + q.Where + "\x00" + fmt.Sprint(q.Args)
}

func (c *pageCache) cursor(q engine.SCIMQuery, start int) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.cursors[queryKey(q)+"\x00"+strconv.Itoa(start)]
	if !ok || time.Since(cur.at) > cursorTTL {
		return "", false
	}
	return cur.after, true
}

func (c *pageCache) setCursor(q engine.SCIMQuery, start int, after string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cursors == nil || len(c.cursors) >= maxCursors {
		c.cursors = map[string]cursor{}
	}
	c.cursors[queryKey(q)+"\x00"+strconv.Itoa(start)] = cursor{after: after, at: time.Now()}
}

func (c *pageCache) total(q engine.SCIMQuery) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.totals[queryKey(q)]
	if !ok || t.gen != c.gen[q.SourceID] || time.Since(t.at) > totalTTL {
		return 0, false
	}
	return t.n, true
}

func (c *pageCache) setTotal(q engine.SCIMQuery, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.totals == nil || len(c.totals) >= maxCursors {
		c.totals = map[string]total{}
	}
	c.totals[queryKey(q)] = total{n: n, gen: c.gen[q.SourceID], at: time.Now()}
}

// wrote notes a write to a directory: its totals are stale.
func (c *pageCache) wrote(sourceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == nil {
		c.gen = map[string]uint64{}
	}
	c.gen[sourceID]++
}

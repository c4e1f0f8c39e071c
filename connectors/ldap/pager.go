package ldap

import (
	"context"
	"fmt"
	"iter"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/idsync/idsync/engine"
)

// The LDAP pager: Simple Paged Results (RFC 2696) searches streamed page by
// page, and a one-page read-ahead so the directory is read while the
// engine applies the previous page.

// pages runs a paged search and yields each page's entries; it stops at
// the first error, including a referral (never followed: a referral loop
// or a partial answer must not look like a complete directory).
func (c *Client) pages(ctx context.Context, base string, scope int, filter string, attrs []string) iter.Seq2[[]*goldap.Entry, error] {
	return func(yield func([]*goldap.Entry, error) bool) {
		paging := goldap.NewControlPaging(uint32(c.cfg.PageSize))
		timeLimit := int(time.Duration(c.cfg.Timeout).Seconds())
		req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, timeLimit, false, filter, attrs,
			[]goldap.Control{paging})
		done := false
		defer func() {
			if !done { // abandon the paged search
				paging.PagingSize = 0
				_, _ = c.conn.Search(req)
			}
		}()
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			res, err := c.conn.Search(req)
			if err != nil {
				if goldap.IsErrorWithCode(err, goldap.LDAPResultReferral) {
					err = fmt.Errorf("ldap: search %s returned a referral, which idsync does not follow: %w", base, engine.ErrUnavailable)
				} else if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
					err = fmt.Errorf("ldap: base %s does not exist: %w", base, engine.ErrUnavailable)
				} else {
					err = fmt.Errorf("ldap: search %s %s: %s: %w", base, filter, ldapErrText(err), engine.ErrUnavailable)
				}
				done = true
				yield(nil, err)
				return
			}
			if len(res.Referrals) > 0 {
				yield(nil, fmt.Errorf("ldap: search %s returned %d referrals (e.g. %s), which idsync does not follow: %w",
					base, len(res.Referrals), res.Referrals[0], engine.ErrUnavailable))
				return
			}
			var cookie []byte
			if pc, ok := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging); ok {
				cookie = pc.Cookie
			}
			if len(cookie) == 0 {
				done = true
			}
			if !yield(res.Entries, nil) {
				return
			}
			if done {
				return
			}
			paging.SetCookie(cookie)
		}
	}
}

// prefetch reads the next page while the engine applies the current one
// (the directory and the database work at once); at most one page waits.
func prefetch(ctx context.Context, seq iter.Seq2[[]*goldap.Entry, error]) iter.Seq2[[]*goldap.Entry, error] {
	return func(yield func([]*goldap.Entry, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		ch := make(chan pageOrErr, 1)
		go func() {
			defer close(ch)
			for entries, err := range seq {
				select {
				case ch <- pageOrErr{entries, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
		defer func() {
			cancel()
			for range ch { // wait for the reader to stop
			}
		}()
		for p := range ch {
			if !yield(p.entries, p.err) {
				return
			}
		}
	}
}

type pageOrErr struct {
	entries []*goldap.Entry
	err     error
}

package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	scimerr "github.com/elimity-com/scim/errors"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/scim/filter"
	"github.com/idsync/idsync/scim/patch"
)

// groupDoc normalises a group document and takes its members out (they
// are stored one row each).
func groupDoc(body []byte) (map[string]any, []patch.Member, bool, error) {
	raw, err := decodeObject(body)
	if err != nil {
		return nil, nil, false, err
	}
	doc, err := patch.Normalize(filter.Group, raw)
	if err != nil {
		return nil, nil, false, err
	}
	mv, stated := doc["members"]
	delete(doc, "members")
	var members []patch.Member
	if stated && mv != nil {
		ops, err := patch.Apply(filter.Group, map[string]any{}, "", []patch.Op{{Op: "add", Value: mustJSON(map[string]any{"members": mv})}})
		if err != nil {
			return nil, nil, false, err
		}
		for _, op := range ops {
			members = append(members, op.Members...)
		}
	}
	return doc, members, stated, checkGroup(doc)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func checkGroup(doc map[string]any) error {
	dn, _ := doc["displayName"].(string)
	if strings.TrimSpace(dn) == "" {
		return scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "displayName is required")
	}
	if len(dn) > 512 {
		return scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "displayName is longer than 512 bytes")
	}
	if _, ok := doc["schemas"]; !ok {
		doc["schemas"] = []any{filter.GroupURN}
	}
	return nil
}

func groupRow(src, id string, doc map[string]any) engine.SCIMResource {
	b, _ := json.Marshal(doc)
	return engine.SCIMResource{SourceID: src, Type: typeGroup, ID: id, ExternalID: str(doc, "externalId"),
		DisplayName: str(doc, "displayName"), Doc: b}
}

// members changes a group's members one at a time, with the directory's
// membership edges.
type members struct {
	w     *engine.SourceWriter
	tx    engine.SCIMTx
	group string // id
	name  string // displayName: the organization group
}

func (m members) add(ctx context.Context, mem patch.Member) (bool, error) {
	if _, err := m.tx.SCIMResource(ctx, m.w.Src.ID, typeUser, mem.Value); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return false, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue,
				"member "+mem.Value+" is not a user of this directory")
		}
		return false, err
	}
	added, err := m.tx.AddSCIMMember(ctx, m.w.Src.ID, m.group, engine.SCIMMember{Value: mem.Value, Display: mem.Display})
	if err != nil || !added {
		return false, err
	}
	return true, m.edge(ctx, mem.Value, true)
}

func (m members) remove(ctx context.Context, id string) (bool, error) {
	removed, err := m.tx.RemoveSCIMMember(ctx, m.w.Src.ID, m.group, id)
	if err != nil || !removed {
		return false, err
	}
	return true, m.edge(ctx, id, false)
}

// edge grants or revokes the directory's edge; a member whose account
// never reached the graph (an open conflict) has none.
func (m members) edge(ctx context.Context, userID string, add bool) error {
	err := m.w.SetMembership(ctx, m.name, userID, add)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	return err
}

// apply runs member operations and reports whether anything changed.
func (m members) apply(ctx context.Context, ops []patch.MemberOp) (bool, error) {
	changed := false
	for _, op := range ops {
		switch op.Kind {
		case "add":
			for _, mem := range op.Members {
				c, err := m.add(ctx, mem)
				if err != nil {
					return false, err
				}
				changed = changed || c
			}
		case "remove":
			list := op.Members
			if list == nil { // all
				cur, err := m.tx.SCIMMembers(ctx, m.w.Src.ID, m.group)
				if err != nil {
					return false, err
				}
				for _, c := range cur {
					list = append(list, patch.Member{Value: c.Value})
				}
			}
			for _, mem := range list {
				c, err := m.remove(ctx, mem.Value)
				if err != nil {
					return false, err
				}
				changed = changed || c
			}
		case "replace":
			cur, err := m.tx.SCIMMembers(ctx, m.w.Src.ID, m.group)
			if err != nil {
				return false, err
			}
			want := map[string]bool{}
			for _, mem := range op.Members {
				want[mem.Value] = true
			}
			for _, c := range cur {
				if !want[c.Value] {
					if _, err := m.remove(ctx, c.Value); err != nil {
						return false, err
					}
					changed = true
				}
			}
			for _, mem := range op.Members {
				c, err := m.add(ctx, mem)
				if err != nil {
					return false, err
				}
				changed = changed || c
			}
		}
	}
	return changed, nil
}

// rename moves the directory's edges from the old organization group to
// the new one.
func (m members) rename(ctx context.Context, from string) error {
	cur, err := m.tx.SCIMMembers(ctx, m.w.Src.ID, m.group)
	if err != nil {
		return err
	}
	old := m
	old.name = from
	for _, c := range cur {
		if err := old.edge(ctx, c.Value, false); err != nil {
			return err
		}
		if err := m.edge(ctx, c.Value, true); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) createGroup(ctx context.Context, d *dir, req request) (response, error) {
	doc, mems, _, err := groupDoc(req.body)
	if err != nil {
		return response{}, err
	}
	r := groupRow(d.src.ID, engine.NewID(), doc)
	err = h.e.WriteSource(ctx, d.src.ID, req.actor, req.corr, func(ctx context.Context, w *engine.SourceWriter) error {
		tx, err := scimTx(w)
		if err != nil {
			return err
		}
		r.Version, r.Created, r.Modified = 1, w.Now, w.Now
		if err := tx.InsertSCIMResource(ctx, r); err != nil {
			return err
		}
		_, err = members{w: w, tx: tx, group: r.ID, name: str(doc, "displayName")}.apply(ctx, []patch.MemberOp{{Kind: "add", Members: mems}})
		return err
	})
	if err != nil {
		return response{}, err
	}
	return h.renderGroup(ctx, d, req, r, http.StatusCreated)
}

func (h *Handler) putGroup(ctx context.Context, d *dir, req request, id string) (response, error) {
	doc, mems, stated, err := groupDoc(req.body)
	if err != nil {
		return response{}, err
	}
	ops := []patch.MemberOp{}
	if stated {
		ops = append(ops, patch.MemberOp{Kind: "replace", Members: append([]patch.Member{}, mems...)})
	}
	return h.writeGroup(ctx, d, req, id, func(cur map[string]any) (map[string]any, []patch.MemberOp, error) {
		return doc, ops, nil
	})
}

func (h *Handler) patchGroup(ctx context.Context, d *dir, req request, id string) (response, error) {
	ops, err := patch.Parse(req.body)
	if err != nil {
		return response{}, err
	}
	return h.writeGroup(ctx, d, req, id, func(cur map[string]any) (map[string]any, []patch.MemberOp, error) {
		mops, err := patch.Apply(filter.Group, cur, id, ops)
		if err != nil {
			return nil, nil, err
		}
		return cur, mops, checkGroup(cur)
	})
}

// writeGroup reads a group, lets change compute its new document and
// member changes, and writes them in one transaction.
func (h *Handler) writeGroup(ctx context.Context, d *dir, req request, id string,
	change func(cur map[string]any) (map[string]any, []patch.MemberOp, error)) (response, error) {
	var r engine.SCIMResource
	err := h.e.WriteSource(ctx, d.src.ID, req.actor, req.corr, func(ctx context.Context, w *engine.SourceWriter) error {
		tx, cur, err := current(ctx, w, d, typeGroup, id, req.ifMatch)
		if err != nil {
			return err
		}
		doc, err := decodeObject(cur.Doc)
		if err != nil {
			return err
		}
		oldName := str(doc, "displayName")
		next, mops, err := change(doc)
		if err != nil {
			return err
		}
		r = groupRow(d.src.ID, id, next)
		r.Created, r.Version, r.Modified = cur.Created, cur.Version, cur.Modified
		m := members{w: w, tx: tx, group: id, name: oldName}
		newName := str(next, "displayName")
		docChanged := string(r.Doc) != string(cur.Doc)
		if docChanged {
			r.Version, r.Modified = cur.Version+1, w.Now
			if err := tx.UpdateSCIMResource(ctx, r, cur.Version); err != nil {
				return err
			}
			if !strings.EqualFold(strings.TrimSpace(oldName), strings.TrimSpace(newName)) {
				m.name = newName
				if err := m.rename(ctx, oldName); err != nil {
					return err
				}
			}
		}
		m.name = newName
		changed, err := m.apply(ctx, mops)
		if err != nil {
			return err
		}
		if changed && !docChanged {
			v, err := tx.TouchSCIMResource(ctx, d.src.ID, typeGroup, id, w.Now)
			if err != nil {
				return err
			}
			r.Version, r.Modified = v, w.Now
		}
		return nil
	})
	if err != nil {
		return response{}, err
	}
	return h.renderGroup(ctx, d, req, r, http.StatusOK)
}

func (h *Handler) deleteGroup(ctx context.Context, d *dir, req request, id string) (response, error) {
	err := h.e.WriteSource(ctx, d.src.ID, req.actor, req.corr, func(ctx context.Context, w *engine.SourceWriter) error {
		tx, cur, err := current(ctx, w, d, typeGroup, id, req.ifMatch)
		if err != nil {
			return err
		}
		var doc map[string]any
		_ = json.Unmarshal(cur.Doc, &doc)
		m := members{w: w, tx: tx, group: id, name: str(doc, "displayName")}
		if _, err := m.apply(ctx, []patch.MemberOp{{Kind: "remove"}}); err != nil {
			return err
		}
		return tx.DeleteSCIMResource(ctx, d.src.ID, typeGroup, id)
	})
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusNoContent}, nil
}

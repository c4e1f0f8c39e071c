package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	scimerr "github.com/elimity-com/scim/errors"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/scim/filter"
	"github.com/idsync/idsync/scim/patch"
)

const (
	typeUser  = "User"
	typeGroup = "Group"
)

func scimTx(w *engine.SourceWriter) (engine.SCIMTx, error) {
	tx, ok := w.Tx.(engine.SCIMTx)
	if !ok {
		return nil, fmt.Errorf("scim: transaction %T keeps no SCIM resources", w.Tx)
	}
	return tx, nil
}

// current reads, in w's transaction, the stored resource a write changes,
// and refuses the write (412) when If-Match names another version.
func current(ctx context.Context, w *engine.SourceWriter, d *dir, typ, id, ifMatch string) (engine.SCIMTx, engine.SCIMResource, error) {
	tx, err := scimTx(w)
	if err != nil {
		return nil, engine.SCIMResource{}, err
	}
	cur, err := tx.SCIMResource(ctx, d.src.ID, typ, id)
	if err != nil {
		return nil, engine.SCIMResource{}, err
	}
	if !matchesIfMatch(ifMatch, cur.Version) {
		return nil, engine.SCIMResource{}, errPrecondition
	}
	return tx, cur, nil
}

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// matchesIfMatch reports whether an If-Match header admits version.
func matchesIfMatch(h string, version int64) bool {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return true
	}
	want := etag(version)
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimSpace(t)
		if t == want || t == strings.TrimPrefix(want, "W/") {
			return true
		}
	}
	return false
}

// userDoc normalises a user document and checks userName.
func userDoc(body []byte) (map[string]any, string, error) {
	raw, err := decodeObject(body)
	if err != nil {
		return nil, "", err
	}
	doc, err := patch.Normalize(filter.User, raw)
	if err != nil {
		return nil, "", err
	}
	return doc, "", checkUser(doc)
}

func checkUser(doc map[string]any) error {
	un, _ := doc["userName"].(string)
	if strings.TrimSpace(un) == "" {
		return scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "userName is required")
	}
	if _, ok := doc["schemas"]; !ok {
		doc["schemas"] = []any{filter.UserURN}
	}
	return nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// pick returns the value of the primary element of a multi-valued
// attribute, else the work one, else the first.
func pick(doc map[string]any, attr string) string {
	arr, _ := doc[attr].([]any)
	var work, first string
	for _, e := range arr {
		m, _ := e.(map[string]any)
		v := str(m, "value")
		if v == "" {
			continue
		}
		if p, _ := m["primary"].(bool); p {
			return v
		}
		if work == "" && strings.EqualFold(str(m, "type"), "work") {
			work = v
		}
		if first == "" {
			first = v
		}
	}
	if work != "" {
		return work
	}
	return first
}

// observation maps a stored user to what the directory says about the
// person. Only these attributes reach the graph; the whole document is
// Raw.
func observation(id string, doc map[string]any, raw []byte) engine.Observation {
	a := engine.Attrs{}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			a[k] = v
		}
	}
	set(reconcile.AttrUserName, str(doc, "userName"))
	set(reconcile.AttrExternalID, str(doc, "externalId"))
	set(reconcile.AttrDisplayName, str(doc, "displayName"))
	set(reconcile.AttrTitle, str(doc, "title"))
	set(reconcile.AttrLocale, str(doc, "locale"))
	if n, ok := doc["name"].(map[string]any); ok {
		set(reconcile.AttrGivenName, str(n, "givenName"))
		set(reconcile.AttrFamilyName, str(n, "familyName"))
	}
	set(reconcile.AttrEmail, pick(doc, "emails"))
	set(reconcile.AttrPhone, pick(doc, "phoneNumbers"))
	if ent, ok := doc[filter.EnterpriseURN].(map[string]any); ok {
		set(reconcile.AttrEmployeeNumber, str(ent, "employeeNumber"))
		set(reconcile.AttrDepartment, str(ent, "department"))
		if m, ok := ent["manager"].(map[string]any); ok {
			set(reconcile.AttrManager, str(m, "value"))
		}
	}
	inactive := false
	if act, ok := doc["active"].(bool); ok && !act {
		inactive = true
	}
	return engine.Observation{Key: id, Attrs: a, Inactive: inactive, Raw: raw}
}

func userRow(src, id string, doc map[string]any) (engine.SCIMResource, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return engine.SCIMResource{}, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidValue, "the document cannot be stored")
	}
	return engine.SCIMResource{SourceID: src, Type: typeUser, ID: id, ExternalID: str(doc, "externalId"),
		UserName: str(doc, "userName"), DisplayName: str(doc, "displayName"), Doc: b}, nil
}

// applyUser stores a user (r, whose document is doc) and applies it to the
// graph, in w's transaction. obs is nil when the observation is to be made
// from doc here (a create prepares it before the transaction).
func applyUser(ctx context.Context, w *engine.SourceWriter, tx engine.SCIMTx, r engine.SCIMResource, doc map[string]any, obs *engine.Prepared, create bool, prevVersion int64) error {
	if create {
		if err := tx.InsertSCIMResource(ctx, r); err != nil {
			return err
		}
	} else if err := tx.UpdateSCIMResource(ctx, r, prevVersion); err != nil {
		return err
	}
	if obs == nil {
		p, err := w.Src.Prepare(observation(r.ID, doc, r.Doc), false)
		if err != nil {
			return err
		}
		obs = &p
	}
	_, err := w.ApplyPrepared(ctx, *obs)
	return err
}

func (h *Handler) createUser(ctx context.Context, d *dir, req request) (response, error) {
	doc, _, err := userDoc(req.body)
	if err != nil {
		return response{}, err
	}
	id := engine.NewID()
	r, err := userRow(d.src.ID, id, doc)
	if err != nil {
		return response{}, err
	}
	// Validated and hashed before the transaction; the key is the ID just
	// minted, so no account holds it.
	obs, err := d.src.Prepare(observation(id, doc, r.Doc), true)
	if err != nil {
		return response{}, err
	}
	err = h.e.WriteSource(ctx, d.src.ID, req.actor, req.corr, func(ctx context.Context, w *engine.SourceWriter) error {
		tx, err := scimTx(w)
		if err != nil {
			return err
		}
		r.Version, r.Created, r.Modified = 1, w.Now, w.Now
		return applyUser(ctx, w, tx, r, doc, &obs, true, 0)
	})
	if err != nil {
		return response{}, err
	}
	return h.render(req, r, nil, http.StatusCreated)
}

func (h *Handler) putUser(ctx context.Context, d *dir, req request, id string) (response, error) {
	doc, _, err := userDoc(req.body)
	if err != nil {
		return response{}, err
	}
	r, err := userRow(d.src.ID, id, doc)
	if err != nil {
		return response{}, err
	}
	err = h.e.WriteSource(ctx, d.src.ID, req.actor, req.corr, func(ctx context.Context, w *engine.SourceWriter) error {
		tx, cur, err := current(ctx, w, d, typeUser, id, req.ifMatch)
		if err != nil {
			return err
		}
		r.Created, r.Version, r.Modified = cur.Created, cur.Version, cur.Modified
		if string(cur.Doc) == string(r.Doc) {
			return nil // nothing changed: keep the version
		}
		r.Version, r.Modified = cur.Version+1, w.Now
		return applyUser(ctx, w, tx, r, doc, nil, false, cur.Version)
	})
	if err != nil {
		return response{}, err
	}
	return h.render(req, r, nil, http.StatusOK)
}

func (h *Handler) patchUser(ctx context.Context, d *dir, req request, id string) (response, error) {
	ops, err := patch.Parse(req.body)
	if err != nil {
		return response{}, err
	}
	var r engine.SCIMResource
	err = h.e.WriteSource(ctx, d.src.ID, req.actor, req.corr, func(ctx context.Context, w *engine.SourceWriter) error {
		tx, cur, err := current(ctx, w, d, typeUser, id, req.ifMatch)
		if err != nil {
			return err
		}
		doc, err := decodeObject(cur.Doc)
		if err != nil {
			return err
		}
		if _, err := patch.Apply(filter.User, doc, id, ops); err != nil {
			return err
		}
		if err := checkUser(doc); err != nil {
			return err
		}
		next, err := userRow(d.src.ID, id, doc)
		if err != nil {
			return err
		}
		next.Created, next.Version, next.Modified = cur.Created, cur.Version, cur.Modified
		r = next
		if string(cur.Doc) == string(next.Doc) {
			return nil
		}
		r.Version, r.Modified = cur.Version+1, w.Now
		return applyUser(ctx, w, tx, r, doc, nil, false, cur.Version)
	})
	if err != nil {
		return response{}, err
	}
	return h.render(req, r, nil, http.StatusOK)
}

func (h *Handler) deleteUser(ctx context.Context, d *dir, req request, id string) (response, error) {
	err := h.e.WriteSource(ctx, d.src.ID, req.actor, req.corr, func(ctx context.Context, w *engine.SourceWriter) error {
		tx, _, err := current(ctx, w, d, typeUser, id, req.ifMatch)
		if err != nil {
			return err
		}
		if err := tx.DeleteSCIMResource(ctx, d.src.ID, typeUser, id); err != nil {
			return err
		}
		groups, err := tx.RemoveSCIMMemberships(ctx, d.src.ID, id)
		if err != nil {
			return err
		}
		for _, g := range groups {
			if _, err := tx.TouchSCIMResource(ctx, d.src.ID, typeGroup, g, w.Now); err != nil {
				return err
			}
		}
		// The account says only that the directory dropped the subject; its
		// group edges go with it.
		res, err := w.Apply(ctx, engine.Observation{Key: id, Removed: true})
		if errors.Is(err, engine.ErrNotFound) {
			return nil // never reached the graph (a conflict still open)
		}
		if err != nil {
			return err
		}
		if res.IdentityID != "" {
			_, err = w.DeleteIfOrphan(ctx, res.IdentityID)
		}
		return err
	})
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusNoContent}, nil
}

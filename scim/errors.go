package scim

import (
	"encoding/json"
	"errors"
	"net/http"

	scimerr "github.com/elimity-com/scim/errors"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/scim/filter"
	"github.com/idsync/idsync/scim/patch"
)

func scimErr(status int, typ scimerr.ScimType, detail string) error {
	return scimerr.ScimError{Status: status, ScimType: typ, Detail: detail}
}

// errPrecondition answers a stale If-Match (RFC 7644 §3.14).
var errPrecondition = scimErr(http.StatusPreconditionFailed, "", "the resource changed: its version does not match If-Match")

// toScimError maps an error to its RFC 7644 §3.12 form. Engine error kinds
// map here and only here; unexpected errors answer 500 without detail
// (they are logged by the caller without request bodies).
func toScimError(err error) scimerr.ScimError {
	var se scimerr.ScimError
	var pe *patch.Error
	var fe *filter.Error
	switch {
	case errors.As(err, &se):
		return se
	case errors.As(err, &pe):
		return scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimType(pe.ScimType), Detail: pe.Msg}
	case errors.As(err, &fe):
		return scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidFilter, Detail: fe.Msg}
	case errors.Is(err, engine.ErrExists):
		return scimerr.ScimError{Status: http.StatusConflict, ScimType: scimerr.ScimTypeUniqueness,
			Detail: "userName (or group displayName) is already taken in this directory"}
	case errors.Is(err, engine.ErrNotFound):
		return scimerr.ScimError{Status: http.StatusNotFound, Detail: "resource not found"}
	case errors.Is(err, engine.ErrInvalid):
		return scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidValue, Detail: err.Error()}
	case errors.Is(err, engine.ErrConflict):
		return scimerr.ScimError{Status: http.StatusConflict, Detail: "a concurrent change won; retry"}
	case errors.Is(err, engine.ErrForbidden):
		return scimerr.ScimError{Status: http.StatusForbidden, Detail: "forbidden"}
	case errors.Is(err, engine.ErrUnavailable):
		return scimerr.ScimError{Status: http.StatusServiceUnavailable, Detail: "the database is unavailable; retry later"}
	}
	return scimerr.ScimError{Status: http.StatusInternalServerError, Detail: "internal error"}
}

func errResponse(err error, method string) response {
	se := toScimError(err)
	b, _ := json.Marshal(se)
	return response{status: se.Status, body: b}
}

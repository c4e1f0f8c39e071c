package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/idsync/idsync/engine"
)

// Error codes of the API's one error shape; they are stable.
const (
	CodeNotFound     = "not_found"
	CodeExists       = "exists"
	CodeConflict     = "conflict"
	CodeInvalid      = "invalid"
	CodeForbidden    = "forbidden"
	CodeUnauthorized = "unauthorized"
	CodeUnavailable  = "unavailable"
	CodeQuarantined  = "quarantined"
	CodeBusy         = "busy"
	CodeInternal     = "internal"
)

// ErrorBody is the shape of every error response.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// codeOf maps an engine error kind to its HTTP status and stable code.
func codeOf(err error) (int, string) {
	switch {
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, CodeUnauthorized
	case errors.Is(err, engine.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, engine.ErrExists):
		return http.StatusConflict, CodeExists
	case errors.Is(err, engine.ErrBusy):
		return http.StatusConflict, CodeBusy
	case errors.Is(err, engine.ErrQuarantined):
		return http.StatusConflict, CodeQuarantined
	case errors.Is(err, engine.ErrConflict):
		return http.StatusConflict, CodeConflict
	case errors.Is(err, engine.ErrInvalid):
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, engine.ErrForbidden):
		return http.StatusForbidden, CodeForbidden
	case errors.Is(err, engine.ErrUnavailable):
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

var errUnauthorized = errors.New("unauthorized")

func (h *Handler) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	status, code := codeOf(err)
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, err.Error()
	if code == CodeInternal {
		h.log.Error("admin api", "route", r.Pattern, "error", err.Error())
		b.Error.Message = "internal error"
	}
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

package api

import (
	"errors"
	"fmt"
	"strings"
)

// Reasons carried by Status errors. Each has one HTTP-like code.
const (
	ReasonBadRequest    = "BadRequest"
	ReasonNotFound      = "NotFound"
	ReasonAlreadyExists = "AlreadyExists"
	ReasonConflict      = "Conflict"
	ReasonInvalid       = "Invalid"
	ReasonForbidden     = "Forbidden"
	ReasonTooLarge      = "RequestEntityTooLarge"
	ReasonUnavailable   = "ServiceUnavailable"
	// ReasonTimeout: the server could not answer in time (504), e.g. a
	// consistent read whose cache did not catch up; retry.
	ReasonTimeout  = "Timeout"
	ReasonInternal = "InternalError"
	// ReasonMethodNotAllowed: the kind does not support the verb (405).
	ReasonMethodNotAllowed = "MethodNotAllowed"
)

// NewMethodNotAllowed is a 405: the verb does not apply to the kind.
func NewMethodNotAllowed(format string, args ...any) *Status {
	return &Status{Code: 405, Reason: ReasonMethodNotAllowed, Message: fmt.Sprintf(format, args...)}
}

// StatusCause is one problem with one field.
type StatusCause struct {
	// Field is the field path, e.g. "spec.containers[0].image".
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Status is the error shape of every API reply: a stable code and reason, a
// message, and per-field causes. It implements error.
type Status struct {
	Code    int           `json:"code"`
	Reason  string        `json:"reason"`
	Message string        `json:"message"`
	Kind    string        `json:"kind,omitempty"`
	Name    string        `json:"name,omitempty"`
	Causes  []StatusCause `json:"causes,omitempty"`
}

func (s *Status) Error() string { return s.Message }

// ReasonOf returns the Status reason of err, or "" when err is not a Status.
func ReasonOf(err error) string {
	var s *Status
	if errors.As(err, &s) {
		return s.Reason
	}
	return ""
}

// IsNotFound reports whether err is a NotFound Status.
func IsNotFound(err error) bool { return ReasonOf(err) == ReasonNotFound }

// IsConflict reports whether err is a Conflict Status.
func IsConflict(err error) bool { return ReasonOf(err) == ReasonConflict }

// IsAlreadyExists reports whether err is an AlreadyExists Status.
func IsAlreadyExists(err error) bool { return ReasonOf(err) == ReasonAlreadyExists }

// IsInvalid reports whether err is an Invalid Status.
func IsInvalid(err error) bool { return ReasonOf(err) == ReasonInvalid }

// NewNotFound says an object does not exist.
func NewNotFound(kind, name string) *Status {
	return &Status{Code: 404, Reason: ReasonNotFound, Kind: kind, Name: name,
		Message: fmt.Sprintf("%s %q not found", strings.ToLower(kind), name)}
}

// NewAlreadyExists says create found an object of that name.
func NewAlreadyExists(kind, name string) *Status {
	return &Status{Code: 409, Reason: ReasonAlreadyExists, Kind: kind, Name: name,
		Message: fmt.Sprintf("%s %q already exists", strings.ToLower(kind), name)}
}

// NewConflict says a compare-and-set failed: the object changed since it was read.
func NewConflict(kind, name, detail string) *Status {
	return &Status{Code: 409, Reason: ReasonConflict, Kind: kind, Name: name,
		Message: fmt.Sprintf("operation cannot be fulfilled on %s %q: %s", strings.ToLower(kind), name, detail)}
}

// NewInvalid says an object failed validation; causes name every problem.
func NewInvalid(kind, name string, causes []StatusCause) *Status {
	parts := make([]string, len(causes))
	for i, c := range causes {
		if c.Field != "" {
			parts[i] = c.Field + ": " + c.Message
		} else {
			parts[i] = c.Message
		}
	}
	return &Status{Code: 422, Reason: ReasonInvalid, Kind: kind, Name: name, Causes: causes,
		Message: fmt.Sprintf("%s %q is invalid: %s", kind, name, strings.Join(parts, ", "))}
}

// NewBadRequest says the request itself could not be understood.
func NewBadRequest(format string, args ...any) *Status {
	return &Status{Code: 400, Reason: ReasonBadRequest, Message: fmt.Sprintf(format, args...)}
}

// NewForbidden says the caller may not do this.
func NewForbidden(format string, args ...any) *Status {
	return &Status{Code: 403, Reason: ReasonForbidden, Message: fmt.Sprintf(format, args...)}
}

// NewUnavailable says the server cannot serve the request now; retry later.
func NewUnavailable(format string, args ...any) *Status {
	return &Status{Code: 503, Reason: ReasonUnavailable, Message: fmt.Sprintf(format, args...)}
}

// NewTimeout says the server gave up waiting to answer (504); retry.
func NewTimeout(format string, args ...any) *Status {
	return &Status{Code: 504, Reason: ReasonTimeout, Message: fmt.Sprintf(format, args...)}
}

// NewInternal wraps an unexpected server error.
func NewInternal(err error) *Status {
	return &Status{Code: 500, Reason: ReasonInternal, Message: err.Error()}
}

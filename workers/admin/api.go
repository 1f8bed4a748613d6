package admin

import (
	"io"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
)

// This file is the admin API's vocabulary: the JSON bodies every endpoint
// takes and answers. The handlers encode them and Client decodes them, so
// the server, the CLI, the console and the tests speak one language. A
// record the API shows as it is stored is an alias of the store's (or the
// event stream's) type: its JSON field names are then part of this API.

// OffHeader names the header every answer of the admin API carries: "on"
// while the API serves, "off" on the 404 answers of an API that has no token
// configured. It lets a client tell "the API is off" from "no such record",
// and a wxscan server from any other server.
const OffHeader = "Wxscan-Admin"

// ErrorBody is every error answer: one English line, with a 4xx or 5xx
// status (see the package documentation for which).
type ErrorBody struct {
	Error string `json:"error"`
}

// ImportResult answers POST /admin/users/import and POST
// /admin/items/import: how many rows were new and how many replaced an
// existing employee or barcode.
type ImportResult struct {
	Added   int `json:"added"`
	Updated int `json:"updated"`
}

// OpenStocktakeRequest is what POST /admin/stocktakes opens: the JSON body
// without a book stock, or the fields of its multipart form.
type OpenStocktakeRequest struct {
	Name string `json:"name"`
	// Locations are the location prefixes of the scope (SPEC §9); none
	// covers every location.
	Locations []string `json:"locations,omitempty"`
	// Expected is the book stock, a CSV or XLSX file with the columns
	// location,sku,qty; nil: none. Client sends it as the form's file part
	// "expected".
	Expected io.Reader `json:"-"`
}

// Stocktake is a stocktake as the admin API shows it (POST and GET
// /admin/stocktakes, POST /admin/stocktakes/{id}/close): the store's record
// plus its state, "open" or "closed".
type Stocktake struct {
	store.Stocktake
	State string `json:"state"`
}

// User is one entry of GET /admin/users, and the answer of POST
// /admin/users/{employee_no}/unlock: a person of the staff directory with
// their binding and their bind lockout. It never holds the bind code.
type User struct {
	EmployeeNo string `json:"employee_no"`
	Name       string `json:"name"`
	CanScan    bool   `json:"can_scan"`
	// State is the binding's state: "active", "suspended" (the person
	// unsubscribed) or "unbound".
	State   string    `json:"state"`
	OpenID  string    `json:"openid,omitempty"`
	BoundAt time.Time `json:"bound_at,omitzero"`
	// BindFailures counts the wrong bind codes for this employee not yet
	// forgotten; LockedUntil is set while they lock the employee out (SPEC
	// §11).
	BindFailures int       `json:"bind_failures"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
}

// UserUnbound is User.State for a person without a binding.
const UserUnbound = "unbound"

// Binding is one entry of GET /admin/bindings.
type Binding = store.Binding

// POST /admin/menu answers the wechatapi.Menu it pushed (see Menu).

// DeadLetter is one entry of GET /admin/dlq, and the answer of POST
// /admin/dlq/{id}/replay.
type DeadLetter = events.DeadLetter

// ReplayAllResult answers POST /admin/dlq/replay.
type ReplayAllResult struct {
	Replayed int `json:"replayed"`
}

// Status is the answer of GET /admin/status. The token fields are left out
// when the process has no WeChat client, LastTokenRefresh also before the
// first refresh.
type Status struct {
	StreamMsgs          uint64     `json:"stream_msgs"`
	StreamBytes         uint64     `json:"stream_bytes"`
	DLQMsgs             uint64     `json:"dlq_msgs"`
	ConsumerPending     uint64     `json:"consumer_pending"`
	ConsumerAckPending  int        `json:"consumer_ack_pending"`
	ConsumerRedelivered int        `json:"consumer_redelivered"`
	LastTokenRefresh    *time.Time `json:"last_token_refresh,omitempty"`
	TokenRefreshes      *int       `json:"token_refreshes,omitempty"`
	ScansToday          int        `json:"scans_today"`
	Outbox              int        `json:"outbox"`
}

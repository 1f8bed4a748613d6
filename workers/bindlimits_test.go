package workers_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers"
)

// syncBuffer collects log output across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func withLogs(buf *syncBuffer) func(*workers.Config) {
	return func(c *workers.Config) { c.Logger = slog.New(slog.NewTextHandler(buf, nil)) }
}

func (h *harness) counts(tb testing.TB) map[string]int {
	tb.Helper()
	c, err := h.db.KeyCounts()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func (h *harness) fileSize(tb testing.TB) int64 {
	tb.Helper()
	fi, err := os.Stat(h.db.Path())
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// checkCounts fails unless the buckets hold what before held, except the
// changes listed in delta.
func checkCounts(tb testing.TB, before, after map[string]int, delta map[string]int) {
	tb.Helper()
	want := maps.Clone(before)
	for k, d := range delta {
		want[k] += d
	}
	for k := range maps.Keys(want) {
		if after[k] != want[k] {
			tb.Fatalf("bucket %s holds %d records, want %d (before: %v, after: %v)", k, after[k], want[k], before, after)
		}
	}
	for k := range maps.Keys(after) {
		if _, ok := want[k]; !ok {
			tb.Fatalf("new bucket %s", k)
		}
	}
}

func (h *harness) submit(tb testing.TB, sess, emp, code string) *events.RPCError {
	tb.Helper()
	_, rerr := call[events.BindSubmitResponse](tb, h, events.OpBindSubmit, events.BindSubmitRequest{Session: sess, EmployeeNo: emp, BindCode: code})
	return rerr
}

// importStaff adds n employees E100, E101, ... with bind codes C100000, ...
func (h *harness) importStaff(tb testing.TB, n int) {
	tb.Helper()
	rows := make([]store.Staff, n)
	for i := range rows {
		rows[i] = store.Staff{EmployeeNo: fmt.Sprintf("E%d", 100+i), Name: "员工", BindCode: fmt.Sprintf("C%d", 100000+i), CanScan: true}
	}
	if _, _, err := h.db.ImportStaff(rows); err != nil {
		tb.Fatal(err)
	}
}

// The reproduced attack: one bind session tries 4 wrong codes for each of 50
// employee numbers. Only the first 10 are evaluated; from the 10th on,
// every attempt from that openid is refused for an hour, the right code too.
func TestBindLimitPerOpenID(t *testing.T) {
	h := MustHarness(t)
	h.importStaff(t, 50)
	sess := h.session(t, "oMallory")
	before := h.counts(t)
	var evaluated, refused int
	for i := range 50 {
		for try := range 4 {
			rerr := h.submit(t, sess, fmt.Sprintf("E%d", 100+i), fmt.Sprintf("W%05d", try))
			switch {
			case rerr != nil && rerr.Status == 400 && rerr.Code == "wrong_code":
				evaluated++
			case rerr != nil && rerr.Status == 429 && rerr.Code == "openid_locked":
				refused++
			case rerr != nil && rerr.Status == 429 && rerr.Code == "locked":
				t.Fatalf("E%d try %d: employee locked; the openid should have been locked first", 100+i, try)
			default:
				t.Fatalf("E%d try %d: %v", 100+i, try, rerr)
			}
		}
	}
	if got, want := evaluated, store.MaxOpenIDBindFailures-1; got != want {
		t.Fatalf("wrong codes answered as such=%d, want %d (the 10th locks)", got, want)
	}
	if got, want := refused, 200-evaluated; got != want {
		t.Fatalf("refused=%d, want %d", got, want)
	}
	// One record for the openid, one per employee tried before the lock
	// (E100, E101: 4 each; E102: 2), none per attempt.
	checkCounts(t, before, h.counts(t), map[string]int{"bind_attempts_openid": 1, "bind_attempts": 3})

	// The right code is refused too, for an hour, and binds nothing.
	h.advance(59 * time.Minute)
	if rerr := h.submit(t, h.session(t, "oMallory"), "E120", "C100020"); rerr == nil || rerr.Code != "openid_locked" {
		t.Fatalf("right code while the openid is locked: %v, want 429 openid_locked", rerr)
	}
	if _, err := h.db.BindingByOpenID("oMallory"); err == nil {
		t.Fatal("bound while locked")
	}
	// Another openid is not affected.
	if rerr := h.submit(t, h.session(t, "oAnn"), "E110", "C100010"); rerr != nil {
		t.Fatalf("another openid: %v", rerr)
	}
	h.advance(time.Minute)
	if rerr := h.submit(t, h.session(t, "oMallory"), "E120", "C100020"); rerr != nil {
		t.Fatalf("right code after the hour: %v", rerr)
	}
}

// An unknown employee number counts as a wrong code for the openid, and
// makes no record of its own.
func TestBindUnknownEmployeeCountsForTheOpenID(t *testing.T) {
	h := MustHarness(t)
	sess := h.session(t, "oMallory")
	before := h.counts(t)
	var first string
	for i := 1; i <= store.MaxOpenIDBindFailures; i++ {
		rerr := h.submit(t, sess, fmt.Sprintf("NOBODY%d", i), "123456")
		wantStatus, wantCode := 400, "wrong_code"
		if i == store.MaxOpenIDBindFailures {
			wantStatus, wantCode = 429, "openid_locked"
		}
		if rerr == nil || rerr.Status != wantStatus || rerr.Code != wantCode {
			t.Fatalf("unknown employee #%d: %v, want %d %s", i, rerr, wantStatus, wantCode)
		}
		if i == 1 {
			first = rerr.Message
		}
	}
	checkCounts(t, before, h.counts(t), map[string]int{"bind_attempts_openid": 1})
	if wrong := h.submitWrongMessage(t); first != wrong {
		t.Fatalf("unknown employee answered %q, a wrong code %q: they must not differ", first, wrong)
	}
}

// submitWrongMessage is the answer to a wrong code for a known employee,
// from a fresh openid.
func (h *harness) submitWrongMessage(tb testing.TB) string {
	tb.Helper()
	rerr := h.submit(tb, h.session(tb, fmt.Sprintf("oProbe%d", time.Now().UnixNano())), "E001", "999999")
	if rerr == nil {
		tb.Fatal("wrong code accepted")
	}
	return rerr.Message
}

// Five wrong codes for one employee, from different openids, lock that
// employee for everyone for 15 minutes, the right code included.
func TestBindLimitPerEmployee(t *testing.T) {
	h := MustHarness(t)
	for i := 1; i <= store.MaxBindFailures; i++ {
		rerr := h.submit(t, h.session(t, fmt.Sprintf("oGuess%d", i)), "E001", "000000")
		wantStatus := 400
		if i == store.MaxBindFailures {
			wantStatus = 429
		}
		if rerr == nil || rerr.Status != wantStatus {
			t.Fatalf("wrong code #%d: %v, want %d", i, rerr, wantStatus)
		}
	}
	before := h.counts(t)
	h.advance(14 * time.Minute)
	if rerr := h.submit(t, h.session(t, "oAnn"), "E001", "111111"); rerr == nil || rerr.Status != 429 || rerr.Code != "locked" {
		t.Fatalf("right code from the owner while locked: %v, want 429 locked", rerr)
	}
	checkCounts(t, before, h.counts(t), map[string]int{"bind_sessions": 1, "oauth_used_states": 1, "oauth_used_codes": 1})
	if _, err := h.db.BindingByOpenID("oAnn"); err == nil {
		t.Fatal("bound while the employee is locked")
	}
	// Another employee is not affected.
	if rerr := h.submit(t, h.session(t, "oBob"), "E002", "222222"); rerr != nil {
		t.Fatalf("another employee: %v", rerr)
	}
	h.advance(time.Minute)
	if rerr := h.submit(t, h.session(t, "oAnn"), "E001", "111111"); rerr != nil {
		t.Fatalf("right code after 15 minutes: %v", rerr)
	}
}

// Concurrent wrong codes from one openid cannot overrun its limit: the
// check and the count are one transaction.
func TestBindLimitHoldsUnderConcurrency(t *testing.T) {
	h := MustHarness(t)
	h.importStaff(t, 30)
	sess := h.session(t, "oMallory")
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for i := range 30 {
		wg.Go(func() {
			rerr := h.submit(t, sess, fmt.Sprintf("E%d", 100+i), "WRONG0")
			mu.Lock()
			defer mu.Unlock()
			if rerr == nil {
				statuses[200]++
				return
			}
			statuses[rerr.Status]++
		})
	}
	wg.Wait()
	if got, want := statuses[400], store.MaxOpenIDBindFailures-1; got != want {
		t.Fatalf("answers=%v: %d evaluated as wrong, want %d", statuses, got, want)
	}
	if got, want := statuses[429], 30-statuses[400]; got != want {
		t.Fatalf("answers=%v, want %d refused", statuses, want)
	}
	if got, want := h.counts(t)["bind_attempts"], store.MaxOpenIDBindFailures; got != want {
		t.Fatalf("employee counters=%d, want %d (one per evaluated attempt's employee)", got, want)
	}
}

// Refusals are logged with the openid and the employee number, never the
// code.
func TestBindRefusalsLogged(t *testing.T) {
	var logs syncBuffer
	h := MustHarness(t, withLogs(&logs))
	sess := h.session(t, "oMallory")
	for range store.MaxBindFailures {
		h.submit(t, sess, "E001", "Wr0ngC0de")
	}
	if rerr := h.submit(t, sess, "E001", "111111"); rerr == nil || rerr.Status != 429 {
		t.Fatalf("right code while locked: %v", rerr)
	}
	out := logs.String()
	for _, want := range []string{"bind refused", "reason=wrong_code", "reason=employee_locked", "openid=oMallory", "employee_no=E001"} {
		if !strings.Contains(out, want) {
			t.Fatalf("logs lack %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"Wr0ngC0de", "111111", sess} {
		if strings.Contains(out, secret) {
			t.Fatalf("logs show a secret %q:\n%s", secret, out)
		}
	}
}

// The workers refuse oversized fields themselves, whatever sent them (a
// callback of another version, any NATS client with the callback's rights).
func TestRPCFieldLimits(t *testing.T) {
	h := MustHarness(t)
	st := h.openStocktake(t)
	h.bind(t, "oAnn", "E001", "111111")
	sess := h.session(t, "oAnn")
	before := h.counts(t)
	for _, tt := range []struct {
		name string
		op   string
		req  any
	}{
		{"employee_no", events.OpBindSubmit, events.BindSubmitRequest{Session: sess, EmployeeNo: strings.Repeat("9", 65), BindCode: "111111"}},
		{"employee_no 16 KB", events.OpBindSubmit, events.BindSubmitRequest{Session: sess, EmployeeNo: strings.Repeat("9", 16<<10), BindCode: "111111"}},
		{"bind_code", events.OpBindSubmit, events.BindSubmitRequest{Session: sess, EmployeeNo: "E001", BindCode: strings.Repeat("1", 65)}},
		{"bind session", events.OpBindSubmit, events.BindSubmitRequest{Session: strings.Repeat("s", 129), EmployeeNo: "E001", BindCode: "111111"}},
		{"oauth code", events.OpOAuthCallback, events.OAuthCallbackRequest{Code: strings.Repeat("c", 129), State: "x"}},
		{"oauth state", events.OpOAuthCallback, events.OAuthCallbackRequest{Code: "c", State: strings.Repeat("s", 129)}},
		{"scanned code", events.OpScanSubmit, events.ScanSubmitRequest{Session: sess, Result: "EAN_13," + strings.Repeat("1", 257), ClientID: "c1"}},
		{"scan result", events.OpScanSubmit, events.ScanSubmitRequest{Session: sess, Result: strings.Repeat("T", 65) + "," + strings.Repeat("1", 256), ClientID: "c2"}},
		{"location code", events.OpScanSubmit, events.ScanSubmitRequest{Session: sess, Result: "QR_CODE,LOC:" + strings.Repeat("A", 65), ClientID: "c3"}},
		{"client_id", events.OpScanSubmit, events.ScanSubmitRequest{Session: sess, Result: "EAN_13,1", ClientID: strings.Repeat("c", 65)}},
		{"scan session", events.OpScanSubmit, events.ScanSubmitRequest{Session: strings.Repeat("s", 129), Result: "EAN_13,1", ClientID: "c4"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, rerr := call[struct{}](t, h, tt.op, tt.req)
			if rerr == nil || rerr.Status != 400 {
				t.Fatalf("%s: %v, want 400", tt.op, rerr)
			}
		})
	}
	checkCounts(t, before, h.counts(t), nil)
	// At the limits the fields go through.
	if _, rerr := call[events.ScanSubmitResponse](t, h, events.OpScanSubmit,
		events.ScanSubmitRequest{Session: sess, Result: "QR_CODE,LOC:" + strings.Repeat("A", 64), ClientID: "c5"}); rerr != nil {
		t.Fatalf("64-byte location: %v", rerr)
	}
	if _, rerr := call[events.ScanSubmitResponse](t, h, events.OpScanSubmit,
		events.ScanSubmitRequest{Session: sess, Result: strings.Repeat("T", 64) + "," + strings.Repeat("1", 256), ClientID: "c6"}); rerr != nil {
		t.Fatalf("256-byte code: %v", rerr)
	}
	if got, want := len(h.scans(t, st.ID)), 1; got != want {
		t.Fatalf("scans=%d, want %d", got, want)
	}
}

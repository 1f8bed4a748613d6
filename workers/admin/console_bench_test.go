package admin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/store"
	"github.com/wxscan/wxscan/workers/admin"
)

// benchScans is the size of the stocktake whose live page the benchmark
// renders.
const benchScans = 100_000

// BenchmarkConsoleLivePage renders the live page of an open stocktake of
// 100,000 scans (200 locations, 50 people), as the server answers GET
// /console/stocktakes/{id}: the target is under 300 ms.
func BenchmarkConsoleLivePage(b *testing.B) {
	e := mustConsole(b, token, "")
	st := mustBigStocktake(b, e, benchScans)
	cookie := e.signIn(b)
	req := httptest.NewRequest(http.MethodGet, "/console/stocktakes/"+st, nil)
	req.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: cookie})
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.Console.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), fmt.Sprintf(`id="n-scans">%d<`, benchScans)) {
			b.Fatalf("status=%d, want 200 with %d scans", rec.Code, benchScans)
		}
	}
}

// BenchmarkConsoleStocktakeList renders the stocktake list with the
// 100,000-scan stocktake on it.
func BenchmarkConsoleStocktakeList(b *testing.B) {
	e := mustConsole(b, token, "")
	mustBigStocktake(b, e, benchScans)
	cookie := e.signIn(b)
	req := httptest.NewRequest(http.MethodGet, "/console/", nil)
	req.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: cookie})
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.Console.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status=%d, want 200", rec.Code)
		}
	}
}

// mustBigStocktake opens a stocktake and records n scans in it, spread over
// 200 locations, 50 people and 5,000 codes.
func mustBigStocktake(tb testing.TB, e *consoleEnv, n int) string {
	tb.Helper()
	st, err := e.DB.OpenStocktake("大盘点", e.Clock.Now())
	if err != nil {
		tb.Fatal(err)
	}
	var staff []store.Staff
	for p := range 50 {
		staff = append(staff, store.Staff{EmployeeNo: fmt.Sprintf("E%03d", p), Name: fmt.Sprintf("员工%d", p), BindCode: "123456", CanScan: true})
	}
	e.MustImport(tb, staff...)
	at := e.Clock.Now()
	for start := 0; start < n; start += 10_000 {
		err := e.DB.Update(func(tx *store.Tx) error {
			for i := start; i < min(start+10_000, n); i++ {
				p := i % 50
				_, err := tx.RecordScan(store.Scan{
					StocktakeID: st.ID, OpenID: fmt.Sprintf("oPerson%03d", p), EmployeeNo: fmt.Sprintf("E%03d", p),
					CodeType: "EAN_13", Code: fmt.Sprintf("69%011d", i%5000), Location: fmt.Sprintf("A-%03d", i%200),
					Qty: 1, ScannedAt: at.Add(time.Duration(i) * time.Millisecond), EventID: fmt.Sprintf("ev-%d", i),
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return st.ID
}

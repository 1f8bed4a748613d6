package wechatsim_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wxscan/wxscan/callback/wechatsim"
)

// TestSendTimes sends a push and its retries, in turn and at once: every
// send carries the very same query and body.
func TestSendTimes(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		var mu sync.Mutex
		seen := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen[r.URL.RawQuery+"\n"+string(b)]++
			mu.Unlock()
			_, _ = io.WriteString(w, "success")
		}))
		sim := &wechatsim.Sim{URL: srv.URL + "/wechat/callback", Token: "tok", AppID: "wxsim", Mode: wechatsim.ModePlain}
		req, err := sim.Build(wechatsim.Push{Kind: "text", OpenID: "oA", Content: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		results, errs := sim.SendTimes(context.Background(), req, 3, concurrent)
		srv.Close()
		if len(results) != 3 || len(errs) != 3 {
			t.Fatalf("concurrent=%v: %d results, %d errors, want 3", concurrent, len(results), len(errs))
		}
		for i := range results {
			if errs[i] != nil || results[i].Status != http.StatusOK {
				t.Fatalf("concurrent=%v: send %d: %d %v", concurrent, i, results[i].Status, errs[i])
			}
		}
		if len(seen) != 1 {
			t.Fatalf("concurrent=%v: %d distinct requests, want 1 (retries are identical)", concurrent, len(seen))
		}
	}
}

func TestPageText(t *testing.T) {
	page := wechatsim.PageResult{Body: `<html><head><style>p{}</style><title>x</title></head>
<body><h1>绑定成功</h1><script>var a = "<b>";</script><p>张三 &amp; <b>E001</b></p></body></html>`}
	if got, want := page.Text(), "绑定成功 张三 &amp; E001"; got != want {
		t.Fatalf("Text()=%q, want %q", got, want)
	}
}

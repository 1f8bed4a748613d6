package callback_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/events"
	"github.com/wxscan/wxscan/events/eventstest"
)

// busAt connects a bus to srv with the duplicate window SPEC §4 gives for
// maxSkew, as serve does, and creates the streams.
func busAt(t *testing.T, srv *events.Server, maxSkew time.Duration) *events.Bus {
	t.Helper()
	bus, err := events.Connect(context.Background(), events.Options{URL: srv.ClientURL(), AppID: testAppID, Name: t.Name(),
		DuplicateWindow: events.DuplicateWindowFor(maxSkew), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	return bus
}

func wechatMsgs(t *testing.T, bus *events.Bus) (msgs uint64, dup time.Duration) {
	t.Helper()
	st, err := bus.JetStream().Stream(context.Background(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, info.Config.Duplicates
}

// A safe-mode request stamped 295 s in the future is accepted at once and
// again when replayed 590 s later (its timestamp is then 295 s in the
// past, still inside ±300 s): the stream's window must span both, so it is
// stored once.
func TestFutureTimestampReplayStoredOnce(t *testing.T) {
	const maxSkew = 300 * time.Second
	bus := busAt(t, eventstest.MustServer(t), maxSkew)
	var now atomic.Int64
	now.Store(testNow.Unix())
	cfg := testConfig()
	cfg.MaxSkew = maxSkew
	cfg.Now = func() time.Time { return time.Unix(now.Load(), 0) }
	srv := MustServe(t, cfg, bus)

	if _, dup := wechatMsgs(t, bus); dup < 2*maxSkew {
		t.Fatalf("duplicate window %v, shorter than the %v a timestamp stays acceptable", dup, 2*maxSkew)
	}
	ts := testNow.Unix() + 295
	enc := seal(t, keyA, testAppID, scanXML)
	u := srv.URL + callback.CallbackPath + "?" + withMsgSig(signed(tokenCur, ts), tokenCur, enc, true).Encode()
	for _, at := range []int64{0, 590} {
		now.Store(testNow.Unix() + at)
		if resp, out := do(t, "POST", u, strings.NewReader(safeBody(enc))); resp.StatusCode != http.StatusOK {
			t.Fatalf("at +%ds: status=%d (%s)", at, resp.StatusCode, out)
		}
	}
	// Past the window the request itself is refused.
	now.Store(testNow.Unix() + 596)
	if resp, _ := do(t, "POST", u, strings.NewReader(safeBody(enc))); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("at +596s: status=%d, want 403", resp.StatusCode)
	}
	if msgs, _ := wechatMsgs(t, bus); msgs != 1 {
		t.Fatalf("stream msgs=%d, want 1", msgs)
	}
}

// In plaintext mode the signature covers timestamp and nonce, not the body:
// a captured query with another body is refused; WeChat's retry of the
// first (same body) is answered as before and stored once.
func TestPlaintextReplayWithAnotherBody(t *testing.T) {
	for _, mode := range []string{"plain", "compat"} {
		t.Run(mode, func(t *testing.T) {
			bus := busAt(t, eventstest.MustServer(t), 300*time.Second)
			srv := MustServe(t, testConfig(), bus)
			q := signed(tokenCur, testNow.Unix())
			body := func(inner string) string { return inner }
			if mode == "compat" {
				enc := seal(t, keyA, testAppID, scanXML)
				q = withMsgSig(q, tokenCur, enc, false)
				body = func(inner string) string { return compatBody(inner, enc) }
			}
			u := srv.URL + callback.CallbackPath + "?" + q.Encode()
			other := strings.Replace(scanXML, "6901234567892", "6901234567893", 1)
			third := strings.Replace(textXML, "hello", "forged", 1)
			steps := []struct {
				body string
				want int
			}{
				{body(scanXML), http.StatusOK},
				{body(other), http.StatusForbidden},
				{body(third), http.StatusForbidden},
				{body(scanXML), http.StatusOK}, // WeChat's retry
			}
			for i, s := range steps {
				resp, out := do(t, "POST", u, strings.NewReader(s.body))
				if resp.StatusCode != s.want {
					t.Fatalf("step %d: status=%d (%s), want %d", i, resp.StatusCode, out, s.want)
				}
				if s.want == http.StatusOK && out != "success" {
					t.Fatalf("step %d: body %q, want success", i, out)
				}
			}
			if msgs, _ := wechatMsgs(t, bus); msgs != 1 {
				t.Fatalf("stream msgs=%d, want 1", msgs)
			}
		})
	}
}

// Another nonce is another request: both bodies are accepted.
func TestPlaintextOtherNonceAccepted(t *testing.T) {
	pub := &recorder{}
	srv := MustServe(t, testConfig(), pub)
	for i, nonce := range []string{"111", "222"} {
		q := signed(tokenCur, testNow.Unix())
		q.Set("nonce", nonce)
		q.Set("signature", callback.Signature(tokenCur, q.Get("timestamp"), nonce))
		inner := strings.Replace(textXML, "hello", "hello "+nonce, 1)
		inner = strings.Replace(inner, "6265881059295447969", "626588105929544796"+nonce[:1], 1)
		if resp, out := do(t, "POST", srv.URL+callback.CallbackPath+"?"+q.Encode(), strings.NewReader(inner)); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, out)
		}
	}
	if n := len(pub.Calls()); n != 2 {
		t.Fatalf("published %d, want 2", n)
	}
}

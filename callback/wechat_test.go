package callback_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxscan/wxscan/callback"
	"github.com/wxscan/wxscan/events"
)

// Publisher is a fake callback.Publisher.
type Publisher struct {
	PublishFn func(ctx context.Context, e events.Event, wait time.Duration) (*events.Reply, error)
}

func (p *Publisher) Publish(ctx context.Context, e events.Event, wait time.Duration) (*events.Reply, error) {
	return p.PublishFn(ctx, e, wait)
}

// recorder is a Publisher that stores what it is given and answers reply.
type recorder struct {
	mu    sync.Mutex
	calls []published
	reply func(e events.Event) *events.Reply
	err   error
}

type published struct {
	event    events.Event
	wait     time.Duration
	deadline time.Duration // from the call to the ctx deadline
}

func (r *recorder) Publish(ctx context.Context, e events.Event, wait time.Duration) (*events.Reply, error) {
	dl, _ := ctx.Deadline()
	r.mu.Lock()
	r.calls = append(r.calls, published{event: e, wait: wait, deadline: time.Until(dl)})
	r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	if r.reply != nil {
		return r.reply(e), nil
	}
	return nil, nil
}

func (r *recorder) Calls() []published {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]published(nil), r.calls...)
}

const (
	testAppID = "wx0123456789abcdef"
	tokenCur  = "tokenCurrent1"
	tokenPrev = "tokenPrevious2"
)

var testNow = time.Unix(1700000000, 0)

func testConfig() callback.Config {
	return callback.Config{
		AppID:   testAppID,
		Tokens:  []string{tokenCur, tokenPrev},
		AESKeys: []string{keyA, keyB},
		Now:     func() time.Time { return testNow },
		Logger:  slog.New(slog.DiscardHandler),
	}
}

// MustServe starts the endpoint for cfg on loopback.
func MustServe(tb testing.TB, cfg callback.Config, pub callback.Publisher) *httptest.Server {
	tb.Helper()
	h, err := callback.NewWeChatHandler(cfg, pub)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}

// signed returns the query WeChat sends, signed with token at ts.
func signed(token string, ts int64) url.Values {
	t, nonce := strconv.FormatInt(ts, 10), "1234567"
	return url.Values{"signature": {callback.Signature(token, t, nonce)}, "timestamp": {t}, "nonce": {nonce}, "openid": {"oUser1"}}
}

// withMsgSig adds msg_signature over enc (and encrypt_type=aes if safe).
func withMsgSig(q url.Values, token, enc string, safe bool) url.Values {
	q.Set("msg_signature", callback.Signature(token, q.Get("timestamp"), q.Get("nonce"), enc))
	if safe {
		q.Set("encrypt_type", "aes")
	}
	return q
}

const (
	textXML = `<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName>` +
		`<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content>` +
		`<MsgId>6265881059295447969</MsgId></xml>`
	scanXML = `<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName>` +
		`<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]></Event>` +
		`<EventKey><![CDATA[scan]]></EventKey><ScanCodeInfo><ScanType><![CDATA[barcode]]></ScanType>` +
		`<ScanResult><![CDATA[EAN_13,6901234567892]]></ScanResult></ScanCodeInfo></xml>`
	viewXML = `<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName>` +
		`<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[VIEW]]></Event>` +
		`<EventKey><![CDATA[https://example.com/scan]]></EventKey></xml>`
)

// seal encrypts inner with key for appid; safeBody wraps it as WeChat does.
func seal(tb testing.TB, key, appid, inner string) string {
	tb.Helper()
	enc, err := mustCipher(tb, key, appid).Encrypt(nil, []byte(inner))
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

func safeBody(enc string) string {
	return `<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><Encrypt><![CDATA[` + enc + `]]></Encrypt></xml>`
}

// compatBody is a plaintext push with its Encrypt beside it.
func compatBody(inner, enc string) string {
	return strings.Replace(inner, "</xml>", "<Encrypt><![CDATA["+enc+"]]></Encrypt></xml>", 1)
}

func do(tb testing.TB, method, u string, body io.Reader) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(b)
}

func TestEcho(t *testing.T) {
	srv := MustServe(t, testConfig(), &Publisher{PublishFn: func(context.Context, events.Event, time.Duration) (*events.Reply, error) {
		t.Error("a GET published")
		return nil, nil
	}})
	echo := func(q url.Values) url.Values { q.Set("echostr", "5837397520665436492"); return q }
	for _, tc := range []struct {
		name  string
		query url.Values
		want  int
	}{
		{"current token", echo(signed(tokenCur, testNow.Unix())), 200},
		{"previous token", echo(signed(tokenPrev, testNow.Unix())), 200},
		{"timestamp at the edge of the window", echo(signed(tokenCur, testNow.Unix()-300)), 200},
		{"unknown token", echo(signed("other", testNow.Unix())), 403},
		{"stale timestamp", echo(signed(tokenCur, testNow.Unix()-301)), 403},
		{"future timestamp", echo(signed(tokenCur, testNow.Unix()+301)), 403},
		{"no signature", url.Values{"timestamp": {"1700000000"}, "nonce": {"1"}, "echostr": {"x"}}, 403},
		{"no echostr", signed(tokenCur, testNow.Unix()), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, "GET", srv.URL+callback.CallbackPath+"?"+tc.query.Encode(), nil)
			if got, want := resp.StatusCode, tc.want; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, body)
			}
			if tc.want == 200 {
				if got, want := body, "5837397520665436492"; got != want {
					t.Fatalf("body=%q, want %q", got, want)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Fatalf("Content-Type=%q", ct)
				}
			}
		})
	}
}

func TestEchoTimestampNotNumber(t *testing.T) {
	srv := MustServe(t, testConfig(), &recorder{})
	q := url.Values{"timestamp": {"soon"}, "nonce": {"1"}, "echostr": {"x"}}
	q.Set("signature", callback.Signature(tokenCur, "soon", "1"))
	if resp, body := do(t, "GET", srv.URL+callback.CallbackPath+"?"+q.Encode(), nil); resp.StatusCode != 403 {
		t.Fatalf("status=%d, want 403 (%s)", resp.StatusCode, body)
	}
}

// TestPostStatus covers every status of a POST with the input that causes it.
func TestPostStatus(t *testing.T) {
	now := testNow.Unix()
	encA := seal(t, keyA, testAppID, textXML)
	encPrevKey := seal(t, keyB, testAppID, textXML)
	encOtherApp := seal(t, keyA, "wxsomeoneelse0000", textXML)
	encBadXML := seal(t, keyA, testAppID, "<xml><ToUserName>")
	big := strings.Replace(textXML, "</xml>", strings.Repeat(" ", callback.MaxBodyBytes-len(textXML))+"</xml>", 1)
	for _, tc := range []struct {
		name    string
		cfg     func(*callback.Config)
		query   url.Values
		body    string
		chunked bool
		pubErr  error
		want    int
		wantOut string // the body, when want is 200
		wantPub int    // events published
	}{
		{name: "plaintext", query: signed(tokenCur, now), body: textXML, want: 200, wantOut: "success", wantPub: 1},
		{name: "plaintext previous token", query: signed(tokenPrev, now), body: scanXML, want: 200, wantOut: "success", wantPub: 1},
		{name: "plaintext without any AES key", cfg: func(c *callback.Config) { c.AESKeys = nil }, query: signed(tokenCur, now), body: viewXML, want: 200, wantOut: "success", wantPub: 1},
		{name: "compatible", query: withMsgSig(signed(tokenCur, now), tokenCur, encA, false), body: compatBody(textXML, encA), want: 200, wantOut: "success", wantPub: 1},
		{name: "compatible without msg_signature", query: signed(tokenCur, now), body: compatBody(textXML, encA), want: 200, wantOut: "success", wantPub: 1},
		{name: "compatible with encrypt_type=aes", query: withMsgSig(signed(tokenCur, now), tokenCur, encA, true), body: compatBody(textXML, encA), want: 200, wantOut: "success", wantPub: 1},
		{name: "compatible with encrypt_type=aes and no AES key", cfg: func(c *callback.Config) { c.AESKeys = nil }, query: withMsgSig(signed(tokenCur, now), tokenCur, encA, true), body: compatBody(textXML, encA), want: 200, wantOut: "success", wantPub: 1},
		{name: "safe", query: withMsgSig(signed(tokenCur, now), tokenCur, encA, true), body: safeBody(encA), want: 200, wantOut: "success", wantPub: 1},
		{name: "safe previous token and key", query: withMsgSig(signed(tokenPrev, now), tokenPrev, encPrevKey, true), body: safeBody(encPrevKey), want: 200, wantOut: "success", wantPub: 1},
		{name: "safe with RequireEncryption", cfg: func(c *callback.Config) { c.RequireEncryption = true }, query: withMsgSig(signed(tokenCur, now), tokenCur, encA, true), body: safeBody(encA), want: 200, wantOut: "success", wantPub: 1},
		{name: "body of exactly 64 KiB", query: signed(tokenCur, now), body: big, want: 200, wantOut: "success", wantPub: 1},

		{name: "bad signature", query: signed("wrongtoken", now), body: textXML, want: 403},
		{name: "signature of another nonce", query: func() url.Values { q := signed(tokenCur, now); q.Set("nonce", "7654321"); return q }(), body: textXML, want: 403},
		{name: "stale timestamp", query: signed(tokenCur, now-301), body: textXML, want: 403},
		{name: "future timestamp", query: signed(tokenCur, now+301), body: textXML, want: 403},
		{name: "timestamp not a number", query: func() url.Values {
			q := url.Values{"timestamp": {"1700000000.5"}, "nonce": {"1"}}
			q.Set("signature", callback.Signature(tokenCur, "1700000000.5", "1"))
			return q
		}(), body: textXML, want: 403},
		{name: "timestamp far in the future", query: func() url.Values {
			q := url.Values{"timestamp": {"9223372036854775807"}, "nonce": {"1"}}
			q.Set("signature", callback.Signature(tokenCur, "9223372036854775807", "1"))
			return q
		}(), body: textXML, want: 403},
		{name: "timestamp far in the past", query: func() url.Values {
			q := url.Values{"timestamp": {"-9223372036854775808"}, "nonce": {"1"}}
			q.Set("signature", callback.Signature(tokenCur, "-9223372036854775808", "1"))
			return q
		}(), body: textXML, want: 403},
		{name: "safe without msg_signature", query: func() url.Values { q := signed(tokenCur, now); q.Set("encrypt_type", "aes"); return q }(), body: safeBody(encA), want: 403},
		{name: "safe bad msg_signature", query: withMsgSig(signed(tokenCur, now), "wrongtoken", encA, true), body: safeBody(encA), want: 403},
		{name: "safe msg_signature over another Encrypt", query: withMsgSig(signed(tokenCur, now), tokenCur, encPrevKey, true), body: safeBody(encA), want: 403},
		{name: "compatible bad msg_signature", query: withMsgSig(signed(tokenCur, now), "wrongtoken", encA, false), body: compatBody(textXML, encA), want: 403},
		{name: "msg_signature without Encrypt", query: withMsgSig(signed(tokenCur, now), tokenCur, "", false), body: textXML, want: 403},
		{name: "plaintext with RequireEncryption", cfg: func(c *callback.Config) { c.RequireEncryption = true }, query: signed(tokenCur, now), body: textXML, want: 403},
		{name: "compatible with RequireEncryption", cfg: func(c *callback.Config) { c.RequireEncryption = true }, query: withMsgSig(signed(tokenCur, now), tokenCur, encA, false), body: compatBody(textXML, encA), want: 403},

		{name: "bad XML", query: signed(tokenCur, now), body: "<xml><ToUserName>", want: 400},
		{name: "not XML", query: signed(tokenCur, now), body: "hello", want: 400},
		{name: "empty body", query: signed(tokenCur, now), body: "", want: 400},
		{name: "missing MsgType", query: signed(tokenCur, now), body: strings.Replace(textXML, "<MsgType><![CDATA[text]]></MsgType>", "", 1), want: 400},
		{name: "safe body not XML", query: withMsgSig(signed(tokenCur, now), tokenCur, encA, true), body: "Encrypt=" + encA, want: 400},
		{name: "safe body without Encrypt", query: withMsgSig(signed(tokenCur, now), tokenCur, "", true), body: textXML, want: 400},
		{name: "safe Encrypt not base64", query: withMsgSig(signed(tokenCur, now), tokenCur, "%%%not-base64%%%", true), body: safeBody("%%%not-base64%%%"), want: 400},
		{name: "safe Encrypt of an unknown key", cfg: func(c *callback.Config) { c.AESKeys = []string{keyA} }, query: withMsgSig(signed(tokenCur, now), tokenCur, encPrevKey, true), body: safeBody(encPrevKey), want: 400},
		{name: "safe wrong AppID", query: withMsgSig(signed(tokenCur, now), tokenCur, encOtherApp, true), body: safeBody(encOtherApp), want: 400},
		{name: "safe decrypted XML bad", query: withMsgSig(signed(tokenCur, now), tokenCur, encBadXML, true), body: safeBody(encBadXML), want: 400},

		{name: "body of 64 KiB + 1", query: signed(tokenCur, now), body: big + " ", want: 413},
		{name: "chunked body of 64 KiB + 1", query: signed(tokenCur, now), body: big + " ", chunked: true, want: 413},

		{name: "publisher fails", query: signed(tokenCur, now), body: textXML, pubErr: errors.New("nats: timeout"), want: 503, wantPub: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			pub := &recorder{err: tc.pubErr}
			srv := MustServe(t, cfg, pub)
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			resp, out := do(t, "POST", srv.URL+callback.CallbackPath+"?"+tc.query.Encode(), body)
			if got, want := resp.StatusCode, tc.want; got != want {
				t.Fatalf("status=%d, want %d (%s)", got, want, out)
			}
			if tc.want == 200 {
				if got, want := out, tc.wantOut; got != want {
					t.Fatalf("body=%q, want %q", got, want)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Fatalf("Content-Type=%q", ct)
				}
			}
			if got, want := len(pub.Calls()), tc.wantPub; got != want {
				t.Fatalf("published=%d, want %d", got, want)
			}
		})
	}
}

// TestBodyShorterThanItsLength sends fewer bytes than Content-Length says
// and closes its side: the push is refused with 400 and nothing is
// published.
func TestBodyShorterThanItsLength(t *testing.T) {
	pub := &recorder{}
	srv := MustServe(t, testConfig(), pub)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := signed(tokenCur, testNow.Unix()).Encode()
	fmt.Fprintf(conn, "POST %s?%s HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s",
		callback.CallbackPath, q, len(textXML)+10, textXML)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.StatusCode, 400; got != want {
		t.Fatalf("status=%d, want %d (%s)", got, want, out)
	}
	// Refused for the short read itself, not for what a padded body would
	// fail to parse as.
	if !strings.Contains(string(out), "read body") {
		t.Fatalf("body=%q, want the short read named", out)
	}
	if got := len(pub.Calls()); got != 0 {
		t.Fatalf("published=%d, want 0", got)
	}
}

// TestPostEvent checks what reaches the Publisher: the parsed event, and a
// reply wait only for events that want a reply.
func TestPostEvent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		xml      string
		safe     bool
		wantWait time.Duration
		check    func(t *testing.T, e events.Event)
	}{
		{"text waits", textXML, false, 3 * time.Second, func(t *testing.T, e events.Event) {
			if e.Content != "hello" || e.MsgID != "6265881059295447969" {
				t.Fatalf("event=%+v", e)
			}
		}},
		{"scan waits", scanXML, true, 3 * time.Second, func(t *testing.T, e events.Event) {
			if e.ScanResult != "EAN_13,6901234567892" || e.From != "oUser1" {
				t.Fatalf("event=%+v", e)
			}
		}},
		{"view does not wait", viewXML, false, 0, func(t *testing.T, e events.Event) {
			if e.Event != "VIEW" {
				t.Fatalf("event=%+v", e)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &recorder{}
			srv := MustServe(t, testConfig(), pub)
			q, body := signed(tokenCur, testNow.Unix()), tc.xml
			if tc.safe {
				enc := seal(t, keyA, testAppID, tc.xml)
				q, body = withMsgSig(q, tokenCur, enc, true), safeBody(enc)
			}
			if resp, out := do(t, "POST", srv.URL+callback.CallbackPath+"?"+q.Encode(), strings.NewReader(body)); resp.StatusCode != 200 {
				t.Fatalf("status=%d (%s)", resp.StatusCode, out)
			}
			calls := pub.Calls()
			if len(calls) != 1 {
				t.Fatalf("published=%d, want 1", len(calls))
			}
			c := calls[0]
			if got, want := c.wait, tc.wantWait; got != want {
				t.Fatalf("wait=%s, want %s", got, want)
			}
			if c.deadline <= 0 || c.deadline > 2*time.Second+tc.wantWait {
				t.Fatalf("ctx deadline in %s, want within %s", c.deadline, 2*time.Second+tc.wantWait)
			}
			e := c.event
			if e.AppID != testAppID || e.ID == "" || !e.ReceivedAt.Equal(testNow) || e.XML != tc.xml {
				t.Fatalf("event=%+v", e)
			}
			tc.check(t, e)
		})
	}
}

// TestRetryGivesOneEventID checks that WeChat's retry of a request, with the
// same query and body, reaches the Publisher with the same dedupe key.
func TestRetryGivesOneEventID(t *testing.T) {
	pub := &recorder{}
	srv := MustServe(t, testConfig(), pub)
	enc := seal(t, keyA, testAppID, scanXML)
	u := srv.URL + callback.CallbackPath + "?" + withMsgSig(signed(tokenCur, testNow.Unix()), tokenCur, enc, true).Encode()
	for range 3 {
		if resp, out := do(t, "POST", u, strings.NewReader(safeBody(enc))); resp.StatusCode != 200 {
			t.Fatalf("status=%d (%s)", resp.StatusCode, out)
		}
	}
	calls := pub.Calls()
	if len(calls) != 3 || calls[0].event.ID != calls[1].event.ID || calls[1].event.ID != calls[2].event.ID {
		t.Fatalf("calls=%+v", calls)
	}
}

func TestPassiveReplyPlain(t *testing.T) {
	pub := &recorder{reply: func(e events.Event) *events.Reply {
		return &events.Reply{EventID: e.ID, ToUser: e.From, FromUser: e.To, Content: "已记录 6901234567892"}
	}}
	srv := MustServe(t, testConfig(), pub)
	resp, out := do(t, "POST", srv.URL+callback.CallbackPath+"?"+signed(tokenCur, testNow.Unix()).Encode(), strings.NewReader(scanXML))
	if resp.StatusCode != 200 {
		t.Fatalf("status=%d (%s)", resp.StatusCode, out)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Fatalf("Content-Type=%q", ct)
	}
	var r passiveReply
	if err := xml.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.ToUserName != "oUser1" || r.FromUserName != "gh_abc" || r.MsgType != "text" || r.Content != "已记录 6901234567892" || r.CreateTime != testNow.Unix() {
		t.Fatalf("reply=%+v", r)
	}
}

// TestPassiveReplySafe checks that a safe-mode reply is sealed with the key
// and signed with the token that verified the request, both current and
// previous.
func TestPassiveReplySafe(t *testing.T) {
	for _, tc := range []struct {
		name, token, key string
	}{
		{"current", tokenCur, keyA},
		{"previous", tokenPrev, keyB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &recorder{reply: func(e events.Event) *events.Reply {
				return &events.Reply{EventID: e.ID, ToUser: e.From, FromUser: e.To, Content: "欢迎 ]]> welcome"}
			}}
			srv := MustServe(t, testConfig(), pub)
			enc := seal(t, tc.key, testAppID, textXML)
			q := withMsgSig(signed(tc.token, testNow.Unix()), tc.token, enc, true)
			resp, out := do(t, "POST", srv.URL+callback.CallbackPath+"?"+q.Encode(), strings.NewReader(safeBody(enc)))
			if resp.StatusCode != 200 {
				t.Fatalf("status=%d (%s)", resp.StatusCode, out)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
				t.Fatalf("Content-Type=%q", ct)
			}
			var env envelope
			if err := xml.Unmarshal([]byte(out), &env); err != nil {
				t.Fatal(err)
			}
			if env.TimeStamp != strconv.FormatInt(testNow.Unix(), 10) || env.Nonce == "" {
				t.Fatalf("envelope=%+v", env)
			}
			if got, want := env.MsgSignature, callback.Signature(tc.token, env.TimeStamp, env.Nonce, env.Encrypt); got != want {
				t.Fatalf("MsgSignature=%s, want %s", got, want)
			}
			inner, appid, err := mustCipher(t, tc.key, testAppID).Decrypt(env.Encrypt)
			if err != nil {
				t.Fatal(err)
			}
			if appid != testAppID {
				t.Fatalf("reply appid=%q", appid)
			}
			var r passiveReply
			if err := xml.Unmarshal(inner, &r); err != nil {
				t.Fatal(err)
			}
			if r.ToUserName != "oUser1" || r.Content != "欢迎 ]]> welcome" {
				t.Fatalf("reply=%+v", r)
			}
		})
	}
}

// TestPublisherHangs checks SPEC §8: when the event cannot be stored the
// answer is 503 within about 2 s, not a hang.
func TestPublisherHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2 s")
	}
	srv := MustServe(t, testConfig(), &Publisher{PublishFn: func(ctx context.Context, _ events.Event, _ time.Duration) (*events.Reply, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	start := time.Now()
	resp, out := do(t, "POST", srv.URL+callback.CallbackPath+"?"+signed(tokenCur, testNow.Unix()).Encode(), strings.NewReader(viewXML))
	if resp.StatusCode != 503 {
		t.Fatalf("status=%d, want 503 (%s)", resp.StatusCode, out)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("answered after %s", d)
	}
}

func TestPublisherPanics(t *testing.T) {
	srv := MustServe(t, testConfig(), &Publisher{PublishFn: func(context.Context, events.Event, time.Duration) (*events.Reply, error) {
		panic("bug")
	}})
	u := srv.URL + callback.CallbackPath + "?" + signed(tokenCur, testNow.Unix()).Encode()
	if resp, _ := do(t, "POST", u, strings.NewReader(textXML)); resp.StatusCode != 500 {
		t.Fatalf("status=%d, want 500", resp.StatusCode)
	}
	// The server is still there.
	if resp, _ := do(t, "GET", u+"&echostr=x", nil); resp.StatusCode != 200 {
		t.Fatalf("status=%d, want 200", resp.StatusCode)
	}
}

func TestRoutes(t *testing.T) {
	srv := MustServe(t, testConfig(), &recorder{})
	q := signed(tokenCur, testNow.Unix()).Encode()
	if resp, _ := do(t, "PUT", srv.URL+callback.CallbackPath+"?"+q, strings.NewReader(textXML)); resp.StatusCode != 405 {
		t.Fatalf("PUT status=%d, want 405", resp.StatusCode)
	}
	if resp, _ := do(t, "POST", srv.URL+"/wechat/other?"+q, strings.NewReader(textXML)); resp.StatusCode != 404 {
		t.Fatalf("other path status=%d, want 404", resp.StatusCode)
	}
}

// TestLogsKeepSecrets runs requests of every kind with a debug logger and
// checks that no token, key or body content reaches the log, while every
// refusal is logged with its reason.
func TestLogsKeepSecrets(t *testing.T) {
	var logs syncBuffer
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pub := &recorder{}
	srv := MustServe(t, cfg, pub)
	now := testNow.Unix()
	secretXML := strings.Replace(textXML, "hello", "secret-content", 1)
	enc := seal(t, keyA, testAppID, secretXML)
	for _, r := range []struct {
		q    url.Values
		body string
	}{
		{signed(tokenCur, now), secretXML},
		{withMsgSig(signed(tokenCur, now), tokenCur, enc, true), safeBody(enc)},
		{signed("wrongtoken", now), secretXML},
		{signed(tokenCur, now-1000), secretXML},
		{withMsgSig(signed(tokenCur, now), "wrongtoken", enc, true), safeBody(enc)},
		{signed(tokenCur, now), "<xml><Content>secret-content"},
	} {
		do(t, "POST", srv.URL+callback.CallbackPath+"?"+r.q.Encode(), strings.NewReader(r.body))
	}
	out := logs.String()
	for _, secret := range []string{tokenCur, tokenPrev, keyA, keyB, "secret-content", enc} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q:\n%s", secret, out)
		}
	}
	if got, want := strings.Count(out, `"msg":"wechat callback refused"`), 4; got != want {
		t.Fatalf("refusals logged=%d, want %d:\n%s", got, want, out)
	}
	if got, want := strings.Count(out, `"msg":"wechat event accepted"`), 2; got != want {
		t.Fatalf("acceptances logged=%d, want %d:\n%s", got, want, out)
	}
}

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

func TestNewWeChatHandlerConfig(t *testing.T) {
	pub := &recorder{}
	for _, tc := range []struct {
		name string
		cfg  func(*callback.Config)
		pub  callback.Publisher
		want string // in the error; "" for none
	}{
		{name: "valid", cfg: func(*callback.Config) {}, pub: pub},
		{name: "empty strings ignored", cfg: func(c *callback.Config) { c.Tokens = []string{"", tokenCur}; c.AESKeys = []string{"", ""} }, pub: pub},
		{name: "no publisher", cfg: func(*callback.Config) {}, want: "Publisher"},
		{name: "no AppID", cfg: func(c *callback.Config) { c.AppID = "" }, pub: pub, want: "WXSCAN_APPID"},
		{name: "no token", cfg: func(c *callback.Config) { c.Tokens = []string{""} }, pub: pub, want: "WXSCAN_TOKEN"},
		{name: "bad current key", cfg: func(c *callback.Config) { c.AESKeys = []string{"short"} }, pub: pub, want: "WXSCAN_AES_KEY "},
		{name: "bad previous key", cfg: func(c *callback.Config) { c.AESKeys = []string{keyA, keyA[:40] + "!!!"} }, pub: pub, want: "WXSCAN_AES_KEY_PREV"},
		{name: "encryption required without key", cfg: func(c *callback.Config) { c.AESKeys = nil; c.RequireEncryption = true }, pub: pub, want: "WXSCAN_REQUIRE_ENCRYPTION"},
		{name: "negative skew", cfg: func(c *callback.Config) { c.MaxSkew = -time.Second }, pub: pub, want: "WXSCAN_MAX_SKEW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.cfg(&cfg)
			_, err := callback.NewWeChatHandler(cfg, tc.pub)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err=%v, want one naming %q", err, tc.want)
			case err != nil && (strings.Contains(err.Error(), keyA[:40]) || strings.Contains(err.Error(), tokenCur)):
				t.Fatalf("err=%v shows a secret", err)
			}
		})
	}
}

// TestMaxSkewConfig checks a non-default window.
func TestMaxSkewConfig(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSkew = 10 * time.Second
	srv := MustServe(t, cfg, &recorder{})
	for _, tc := range []struct {
		ts   int64
		want int
	}{{testNow.Unix() - 10, 200}, {testNow.Unix() - 11, 403}, {testNow.Unix() + 11, 403}} {
		resp, out := do(t, "POST", srv.URL+callback.CallbackPath+"?"+signed(tokenCur, tc.ts).Encode(), strings.NewReader(viewXML))
		if resp.StatusCode != tc.want {
			t.Fatalf("ts %d: status=%d, want %d (%s)", tc.ts, resp.StatusCode, tc.want, out)
		}
	}
}

func benchHandler(b *testing.B, q url.Values, body string) {
	b.Helper()
	h, err := callback.NewWeChatHandler(testConfig(), &Publisher{PublishFn: func(context.Context, events.Event, time.Duration) (*events.Reply, error) {
		return nil, nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	target := callback.CallbackPath + "?" + q.Encode()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", target, strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatalf("status=%d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkHandlerPlain(b *testing.B) {
	benchHandler(b, signed(tokenCur, testNow.Unix()), scanXML)
}

func BenchmarkHandlerSafe(b *testing.B) {
	enc := seal(b, keyA, testAppID, scanXML)
	benchHandler(b, withMsgSig(signed(tokenCur, testNow.Unix()), tokenCur, enc, true), safeBody(enc))
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wxscan/wxscan/callback/wechatsim"
	"github.com/wxscan/wxscan/workers/fakewechat"
)

// syncBuffer is a log sink safe for the concurrent writes of a running Main.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records written so far.
func (b *syncBuffer) records(tb testing.TB) []map[string]any {
	tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			tb.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// scrape reads /metrics into metric families.
func scrape(tb testing.TB, base string) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		tb.Fatalf("/metrics status=%d, want %d", got, want)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// metricValue is the value of the counter or gauge name with exactly the
// given labels; it fails the test when there is none.
func metricValue(tb testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	tb.Helper()
	fam, ok := fams[name]
	if !ok {
		tb.Fatalf("metric %s missing", name)
	}
next:
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		for i, l := range m.GetLabel() {
			if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	tb.Fatalf("metric %s%v missing", name, labels)
	return 0
}

func TestMetricsAndRequestID(t *testing.T) {
	fake := fakewechat.New(fakewechat.Config{AppID: testAppID, AppSecret: "e2esecret"})
	api := httptest.NewServer(fake)
	defer api.Close()
	dir := t.TempDir()
	prepareData(t, dir, "oMetrics")
	cfg := testConfig(dir)
	cfg.APIBase, cfg.OAuthBase, cfg.AdminToken = api.URL, api.URL, "admintok"
	logs := &syncBuffer{}
	m := NewMain()
	m.Config = cfg
	m.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	base := "http://" + m.HTTPAddr()
	ctx := context.Background()

	send := func(sim *wechatsim.Sim, p wechatsim.Push, wantStatus int) wechatsim.Request {
		t.Helper()
		req, err := sim.Build(p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := sim.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Status; got != wantStatus {
			t.Fatalf("%s in %s mode: status=%d, want %d (%s)", p.Kind, sim.Mode, got, wantStatus, res.Body)
		}
		return req
	}
	plain, safe := simFor(m, "plain"), simFor(m, "safe")

	// A location event sent twice: one event, one duplicate absorbed.
	req := send(plain, wechatsim.Push{Kind: "location", OpenID: "oMetrics"}, http.StatusOK)
	if res, err := plain.Send(ctx, req); err != nil || res.Status != http.StatusOK {
		t.Fatalf("retry: %v %+v", err, res)
	}
	// WeChat's compatible mode sends encrypt_type=aes: it is served (and
	// counted) as safe mode, from the Encrypt element.
	send(simFor(m, "compat"), wechatsim.Push{Kind: "location", OpenID: "oMetricsCompat"}, http.StatusOK)
	// A scan with a request id set by a proxy in front: it must reach the
	// worker's log line for the reply.
	scan, err := safe.Build(wechatsim.Push{Kind: "scan", OpenID: "oMetrics", Code: "EAN_13,6901234567892"})
	if err != nil {
		t.Fatal(err)
	}
	hreq, _ := http.NewRequest(http.MethodPost, scan.URL, bytes.NewReader(scan.Body))
	hreq.Header.Set("X-Request-Id", "proxy-req-42")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("scan status=%d, want %d", got, want)
	}
	if got, want := resp.Header.Get("X-Request-Id"), "proxy-req-42"; got != want {
		t.Fatalf("X-Request-Id=%q, want %q", got, want)
	}

	// One refusal of each verification reason.
	bad := simFor(m, "plain")
	bad.Token = "not-the-token"
	send(bad, wechatsim.Push{Kind: "location", OpenID: "oMetrics"}, http.StatusForbidden)
	stale := simFor(m, "plain")
	stale.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	send(stale, wechatsim.Push{Kind: "location", OpenID: "oMetrics"}, http.StatusForbidden)
	otherKey := simFor(m, "safe")
	otherKey.AESKey = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
	send(otherKey, wechatsim.Push{Kind: "location", OpenID: "oMetrics"}, http.StatusBadRequest)
	otherApp := simFor(m, "safe")
	otherApp.AppID = "wxsomeoneelse0001"
	send(otherApp, wechatsim.Push{Kind: "location", OpenID: "oMetrics"}, http.StatusBadRequest)

	// A WeChat API call with a token refresh: push the menu.
	var out, errOut strings.Builder
	env := map[string]string{"WXSCAN_SERVER": base, "WXSCAN_ADMIN_TOKEN": "admintok"}
	if code := run(ctx, []string{"menu", "push"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("menu push exit %d: %s", code, errOut.String())
	}

	fams := scrape(t, base)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wxscan_callback_requests_total", []string{"mode", "plain", "status", "200"}, 2},
		{"wxscan_callback_requests_total", []string{"mode", "safe", "status", "200"}, 2},
		{"wxscan_callback_requests_total", []string{"mode", "plain", "status", "403"}, 2},
		{"wxscan_callback_requests_total", []string{"mode", "safe", "status", "400"}, 2},
		{"wxscan_callback_verify_failures_total", []string{"reason", "bad_signature"}, 1},
		{"wxscan_callback_verify_failures_total", []string{"reason", "stale_timestamp"}, 1},
		{"wxscan_callback_verify_failures_total", []string{"reason", "decrypt"}, 1},
		{"wxscan_callback_verify_failures_total", []string{"reason", "appid"}, 1},
		{"wxscan_events_published_total", []string{"result", "stored"}, 3},
		{"wxscan_events_published_total", []string{"result", "duplicate"}, 1},
		{"wxscan_events_publish_seconds", nil, 4},
		{"wxscan_scans_recorded_total", nil, 1},
		{"wxscan_replies_total", []string{"path", "passive"}, 1},
		{"wxscan_replies_total", []string{"path", "custom_send"}, 0},
		// The scan is the only event the workers are given: one batch.
		{"wxscan_workers_batch_events", nil, 1},
		{"wxscan_workers_batch_commit_seconds", nil, 1},
		{"wxscan_wechat_api_calls_total", []string{"endpoint", "cgi-bin/stable_token", "errcode", "0"}, 1},
		{"wxscan_wechat_api_calls_total", []string{"endpoint", "cgi-bin/menu/create", "errcode", "0"}, 1},
		{"wxscan_wechat_token_refreshes_total", []string{"kind", "access_token", "result", "ok"}, 1},
		{"wxscan_stream_messages", nil, 3},
		{"wxscan_dlq_messages", nil, 0},
		{"wxscan_nats_up", nil, 1},
	} {
		if got := metricValue(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v=%v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Lag and ack-pending settle to 0 once the events are acknowledged. Of
	// the three stored events only the scan is the workers' (the LOCATION
	// events are not delivered to them), so one ack.
	deadline := time.Now().Add(5 * time.Second)
	for {
		fams = scrape(t, base)
		if metricValue(t, fams, "wxscan_consumer_pending", "consumer", "workers") == 0 &&
			metricValue(t, fams, "wxscan_consumer_ack_pending", "consumer", "workers") == 0 &&
			metricValue(t, fams, "wxscan_consumer_events_total", "outcome", "ack") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer did not settle: pending=%v ack_pending=%v acks=%v",
				metricValue(t, fams, "wxscan_consumer_pending", "consumer", "workers"),
				metricValue(t, fams, "wxscan_consumer_ack_pending", "consumer", "workers"),
				metricValue(t, fams, "wxscan_consumer_events_total", "outcome", "ack"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The request id: in the callback's record and in the worker's.
	var sawWorker bool
	for _, rec := range logs.records(t) {
		if rec["msg"] == "reply delivered" && rec["request_id"] == "proxy-req-42" {
			sawWorker = true
		}
	}
	if !sawWorker {
		t.Fatalf("no worker log record carries request_id proxy-req-42")
	}
	// And no secret in any log line.
	for _, rec := range logs.records(t) {
		line, _ := json.Marshal(rec)
		for _, secret := range []string{"e2esecret", testToken, testAESKey, "admintok"} {
			if strings.Contains(string(line), secret) {
				t.Fatalf("log line holds a secret: %s", line)
			}
		}
	}
}

func TestCallbackOnlyProcessDropsTheAppSecret(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Roles = []string{"callback"}
	logs := &syncBuffer{}
	m := NewMain()
	m.Config = cfg
	m.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Config.AppSecret != "" {
		t.Fatal("a callback-only process kept the AppSecret")
	}
	var warned bool
	for _, rec := range logs.records(t) {
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "WXSCAN_APPSECRET is set") {
			warned = true
		}
	}
	if !warned {
		t.Fatal("no warning that WXSCAN_APPSECRET is ignored")
	}
}

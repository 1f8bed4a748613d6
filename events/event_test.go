package events_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxscan/wxscan/events"
)

var now = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		subject string
		check   func(t *testing.T, e events.Event)
		reply   bool
	}{
		{name: "text", file: "text.xml", subject: "wechat.wxA.msg.text", reply: true, check: func(t *testing.T, e events.Event) {
			if got, want := e.Content, "test text message"; got != want {
				t.Fatalf("content=%q, want %q", got, want)
			}
			if got, want := e.MsgID, "6265881059295447969"; got != want {
				t.Fatalf("msg_id=%q, want %q", got, want)
			}
			if got, want := e.ID, "m6265881059295447969"; got != want {
				t.Fatalf("id=%q, want %q", got, want)
			}
			if got, want := e.From, "okPEat9FRX96xG8JQvTxHLpzDV64"; got != want {
				t.Fatalf("from=%q, want %q", got, want)
			}
			if got, want := e.CreateTime, int64(1458889120); got != want {
				t.Fatalf("create_time=%d, want %d", got, want)
			}
		}},
		{name: "image", file: "image.xml", subject: "wechat.wxA.msg.image"},
		{name: "voice with MsgID spelling", file: "voice.xml", subject: "wechat.wxA.msg.voice", check: func(t *testing.T, e events.Event) {
			if got, want := e.MsgID, "1234567890123457"; got != want {
				t.Fatalf("msg_id=%q, want %q", got, want)
			}
		}},
		{name: "video", file: "video.xml", subject: "wechat.wxA.msg.video"},
		{name: "location message", file: "location_msg.xml", subject: "wechat.wxA.msg.location", check: func(t *testing.T, e events.Event) {
			if e.Latitude != "23.134521" || e.Longitude != "113.358803" || e.Precision != "20" {
				t.Fatalf("location=%q,%q,%q", e.Latitude, e.Longitude, e.Precision)
			}
		}},
		{name: "link", file: "link.xml", subject: "wechat.wxA.msg.link"},
		{name: "subscribe", file: "subscribe.xml", subject: "wechat.wxA.event.subscribe", reply: true},
		{name: "subscribe with qrscene", file: "subscribe_qrscene.xml", subject: "wechat.wxA.event.subscribe", reply: true, check: func(t *testing.T, e events.Event) {
			if e.EventKey != "qrscene_123123" || e.Ticket != "TICKET" {
				t.Fatalf("event_key=%q ticket=%q", e.EventKey, e.Ticket)
			}
		}},
		{name: "unsubscribe", file: "unsubscribe.xml", subject: "wechat.wxA.event.unsubscribe"},
		{name: "SCAN", file: "scan.xml", subject: "wechat.wxA.event.scan", check: func(t *testing.T, e events.Event) {
			if got, want := e.Event, "SCAN"; got != want {
				t.Fatalf("event=%q, want %q (as WeChat spells it)", got, want)
			}
		}},
		{name: "LOCATION", file: "location_event.xml", subject: "wechat.wxA.event.location", check: func(t *testing.T, e events.Event) {
			if e.Latitude != "23.137466" || e.Longitude != "113.352425" || e.Precision != "119.385040" {
				t.Fatalf("location=%q,%q,%q", e.Latitude, e.Longitude, e.Precision)
			}
		}},
		{name: "CLICK", file: "click.xml", subject: "wechat.wxA.event.click"},
		{name: "VIEW", file: "view.xml", subject: "wechat.wxA.event.view", check: func(t *testing.T, e events.Event) {
			if got, want := e.EventKey, "www.qq.com"; got != want {
				t.Fatalf("event_key=%q, want %q", got, want)
			}
		}},
		{name: "scancode_push", file: "scancode_push.xml", subject: "wechat.wxA.event.scancode_push", reply: true},
		{name: "scancode_waitmsg", file: "scancode_waitmsg.xml", subject: "wechat.wxA.event.scancode_waitmsg", reply: true, check: func(t *testing.T, e events.Event) {
			if e.ScanType != "barcode" || e.ScanResult != "EAN_13,6901234567892" {
				t.Fatalf("scan=%q,%q", e.ScanType, e.ScanResult)
			}
			if !e.IsScan() {
				t.Fatal("IsScan=false")
			}
		}},
		{name: "pic_sysphoto", file: "pic_sysphoto.xml", subject: "wechat.wxA.event.pic_sysphoto"},
		{name: "pic_photo_or_album", file: "pic_photo_or_album.xml", subject: "wechat.wxA.event.pic_photo_or_album"},
		{name: "pic_weixin", file: "pic_weixin.xml", subject: "wechat.wxA.event.pic_weixin"},
		{name: "location_select", file: "location_select.xml", subject: "wechat.wxA.event.location_select", check: func(t *testing.T, e events.Event) {
			if e.Latitude != "23" || e.Longitude != "113" {
				t.Fatalf("location=%q,%q", e.Latitude, e.Longitude)
			}
		}},
		{name: "unknown event kept", file: "unknown.xml", subject: "wechat.wxA.event.templatesendjobfinish", check: func(t *testing.T, e events.Event) {
			if !strings.Contains(e.XML, "<Nested>kept</Nested>") {
				t.Fatalf("xml lost unknown elements: %s", e.XML)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := mustRead(t, tt.file)
			e, err := events.Parse("wxA", raw, now)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := e.Subject(), tt.subject; got != want {
				t.Fatalf("subject=%q, want %q", got, want)
			}
			if got, want := e.WantsReply(), tt.reply; got != want {
				t.Fatalf("WantsReply=%v, want %v", got, want)
			}
			if got, want := e.XML, string(raw); got != want {
				t.Fatalf("xml not kept as received")
			}
			if e.ID == "" || strings.ContainsAny(e.ID, " \r\n") || e.V != 1 || e.AppID != "wxA" {
				t.Fatalf("id=%q v=%d appid=%q", e.ID, e.V, e.AppID)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tt := range []struct{ name, xml string }{
		{"empty", ""},
		{"not xml", "hello"},
		{"truncated", "<xml><ToUserName>a</ToUserName>"},
		{"wrong root", "<root><ToUserName>a</ToUserName></root>"},
		{"no MsgType", "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime></xml>"},
		{"no FromUserName", "<xml><ToUserName>a</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>"},
		{"bad CreateTime", "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>x1</CreateTime><MsgType>text</MsgType></xml>"},
		{"too deep", "<xml>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</xml>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := events.Parse("wxA", []byte(tt.xml), now); !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("err=%v, want ErrInvalid", err)
			}
		})
	}
}

func scanXML(from string, ct int, result string) []byte {
	return []byte(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[` + from + `]]></FromUserName><CreateTime>` +
		itoa(ct) + `</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_waitmsg]]></Event><EventKey><![CDATA[scan]]></EventKey><ScanCodeInfo><ScanType><![CDATA[barcode]]></ScanType><ScanResult><![CDATA[` +
		result + `]]></ScanResult></ScanCodeInfo></xml>`)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestDedupeKey(t *testing.T) {
	key := func(raw []byte) string {
		t.Helper()
		e, err := events.Parse("wxA", raw, now)
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	a := key(scanXML("o1", 100, "EAN_13,6901234567892"))
	if got := key(scanXML("o1", 100, "EAN_13,6901234567892")); got != a {
		t.Fatalf("same event gave keys %q and %q", a, got)
	}
	for _, tt := range []struct{ name, other string }{
		{"other code same second", key(scanXML("o1", 100, "EAN_13,6901234567893"))},
		{"other user", key(scanXML("o2", 100, "EAN_13,6901234567892"))},
		{"other second", key(scanXML("o1", 101, "EAN_13,6901234567892"))},
		{"newline in code", key(scanXML("o1", 100, "EAN_13,6901234567892\nx"))},
	} {
		if tt.other == a {
			t.Fatalf("%s: same key %q", tt.name, a)
		}
	}
	// Messages: the MsgId alone; two spellings.
	if got, want := key(mustRead(t, "voice.xml")), "m1234567890123457"; got != want {
		t.Fatalf("voice id=%q, want %q", got, want)
	}
}

func TestPayloadJSON(t *testing.T) {
	e, err := events.Parse("wx123", mustRead(t, "scancode_waitmsg.xml"), now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"v": 1.0, "appid": "wx123", "to": "gh_e136c6e50636", "from": "oMgHVjngRipVsoxg6TuX3vz6glDg",
		"create_time": 1408090606.0, "msg_type": "event", "event": "scancode_waitmsg", "event_key": "scan",
		"scan_type": "barcode", "scan_result": "EAN_13,6901234567892", "received_at": "2026-11-25T08:00:00Z",
	} {
		if got := m[k]; got != want {
			t.Fatalf("%s=%v, want %v", k, got, want)
		}
	}
	if m["id"] != e.ID || m["xml"] != e.XML {
		t.Fatalf("id/xml not in payload: %s", b)
	}
	if _, ok := m["content"]; ok {
		t.Fatalf("empty content not left out: %s", b)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"text.xml", "scancode_waitmsg.xml", "location_select.xml", "unknown.xml"} {
		f.Add(mustRead(f, name))
	}
	f.Add([]byte("<xml><a><![CDATA[]]></a></xml>"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := events.Parse("wxA", raw, now)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if e.ID == "" || e.From == "" || e.MsgType == "" {
			t.Fatalf("accepted event without id/from/type: %+v", e)
		}
		if strings.ContainsAny(e.ID, " \t\r\n") {
			t.Fatalf("id not header-safe: %q", e.ID)
		}
		if s := e.Subject(); strings.Count(s, ".") != 3 || strings.ContainsAny(s, " *>") {
			t.Fatalf("bad subject %q", s)
		}
		if _, err := json.Marshal(e); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	raw := mustRead(b, "scancode_waitmsg.xml")
	b.ReportAllocs()
	for b.Loop() {
		e, err := events.Parse("wxA", raw, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sameEvent compares two decoded events; times by instant and zone, since
// each decode of an offset makes its own *time.Location.
func sameEvent(a, b Event) bool {
	an, ao := a.ReceivedAt.Zone()
	bn, bo := b.ReceivedAt.Zone()
	if !a.ReceivedAt.Equal(b.ReceivedAt) || an != bn || ao != bo {
		return false
	}
	a.ReceivedAt, b.ReceivedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// checkDecode holds DecodeEvent to json.Unmarshal's result and error.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	var want Event
	werr := json.Unmarshal(data, &want)
	var fast Event
	if decodeEventFast(data, &fast) && (werr != nil || !sameEvent(fast, want)) {
		t.Fatalf("fast path read %q as %+v; json.Unmarshal: %+v, %v", data, fast, want, werr)
	}
	got, gerr := DecodeEvent(data)
	if (gerr != nil) != (werr != nil) || (werr == nil && !sameEvent(got, want)) {
		t.Fatalf("DecodeEvent(%q)=%+v,%v; json.Unmarshal: %+v,%v", data, got, gerr, want, werr)
	}
}

// The callback's payloads take the fast path and read back as they were
// written.
func TestDecodeEventReadsPayloadsWithoutReflection(t *testing.T) {
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("testdata: %v", err)
	}
	received := time.Date(2026, 12, 1, 19, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	evs := []Event{
		{V: 1, ID: "\"\\<>&\b\f\n\r\t\x00\x1f\x7f/", Content: "\u2028\u2029é中", ReceivedAt: received, XML: "<xml>&amp;</xml>"},
		{V: -3, CreateTime: -1, ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e, err := Parse("wxA", raw, received)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		evs = append(evs, e)
	}
	for _, e := range evs {
		data, err := e.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got Event
		if !decodeEventFast(data, &got) {
			t.Fatalf("payload %s did not take the fast path", data)
		}
		// JSON keeps a time's instant and offset, not its zone's name.
		if !got.ReceivedAt.Equal(e.ReceivedAt) {
			t.Fatalf("read back received_at %s, wrote %s", got.ReceivedAt, e.ReceivedAt)
		}
		got.ReceivedAt = e.ReceivedAt
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("read back %+v, wrote %+v", got, e)
		}
		checkDecode(t, data)
	}
}

// Whatever the bytes, DecodeEvent gives json.Unmarshal's answer.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":"a","appid":"wx","create_time":12,"msg_type":"text","received_at":"2026-12-01T19:00:00Z","xml":"\u003cxml\u003e"}`,
		` { "v" : 1 , "xml" : "a\"b\\c\/d\b\f\n\r\t\u00e9\u4e2d" } `,
		`{"ID":"upper case key"}`,
		`{"id":"x","unknown":1}`,
		`{"id":null}`,
		`{"v":1.0}`, `{"v":01}`, `{"v":-0}`, `{"v":1e3}`, `{"create_time":99999999999999999999}`,
		`{"id":"\ud83d\ude00"}`, `{"id":"\ud83d"}`, "{\"id\":\"\xff\"}", "{\"id\":\"a\x01\"}",
		`{"received_at":"2026-13-01T00:00:00Z"}`, `{"received_at":"2026-12-01T19:00:00+08:00"}`, `{"received_at":null}`,
		`{"id":"a"}x`, `{"id":"a",}`, `{}`, `[]`, ``, `{"id":"a","id":"b"}`, `{"\u0069d":"escaped key"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

// BenchmarkDecodeEvent reads a scan event's payload: compare with
// BenchmarkDecodeEventReflect, json.Unmarshal's time for the same bytes.
func BenchmarkDecodeEvent(b *testing.B) { benchDecode(b, DecodeEvent) }

func BenchmarkDecodeEventReflect(b *testing.B) {
	benchDecode(b, func(data []byte) (Event, error) {
		var e Event
		err := json.Unmarshal(data, &e)
		return e, err
	})
}

func benchDecode(b *testing.B, decode func([]byte) (Event, error)) {
	raw, err := os.ReadFile("testdata/scancode_waitmsg.xml")
	if err != nil {
		b.Fatal(err)
	}
	e, err := Parse("wxA", raw, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	data, err := e.AppendJSON(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// Publish sizes the payload's buffer with jsonSizeHint: a push that
// outgrows it costs a second allocation and a copy of the payload.
func TestJSONSizeHintHoldsEveryPush(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	text := func(content string) []byte {
		return []byte("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>" +
			"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>" + content + "</Content>" +
			"<MsgId>1</MsgId></xml>")
	}
	pushes := map[string][]byte{
		"ampersands in CDATA": text("<![CDATA[" + strings.Repeat("A&B>", 40) + "]]>"),
		"escaped ampersands":  text(strings.Repeat("A&amp;B&gt;", 40)),
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pushes[f] = raw
	}
	for f, raw := range pushes {
		e, err := Parse("wx0123456789abcdef", raw, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		hint := e.jsonSizeHint()
		data, err := e.AppendJSON(make([]byte, 0, hint))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > hint {
			t.Errorf("%s: payload is %d bytes, over the hint %d", f, len(data), hint)
		}
	}
}

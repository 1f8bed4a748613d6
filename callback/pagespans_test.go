package callback

import (
	"reflect"
	"testing"
)

func TestPageSpansLinkOnlySafeChatLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		want []pageSpan
	}{
		{"plain", "没有绑定。", []pageSpan{{Text: "没有绑定。"}}},
		{"https link", `请先绑定：<a href="https://wx.example.com/bind">点这里</a>。`,
			[]pageSpan{{Text: "请先绑定："}, {Text: "点这里", Href: "https://wx.example.com/bind"}, {Text: "。"}}},
		{"path", `<a href="/bind">绑定</a>`, []pageSpan{{Text: "绑定", Href: "/bind"}}},
		{"javascript", `<a href="javascript:alert(1)">x</a>`, []pageSpan{{Text: "x"}}},
		{"protocol-relative", `<a href="//evil.example/">x</a>`, []pageSpan{{Text: "x"}}},
		{"backslash", `<a href="/\evil.example/">x</a>`, []pageSpan{{Text: "x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pageSpans(tc.msg); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("pageSpans(%q)=%+v, want %+v", tc.msg, got, tc.want)
			}
		})
	}
	if got, want := pagePlainText(`请先绑定：<a href="/bind">点这里</a>`), "请先绑定：点这里"; got != want {
		t.Fatalf("pagePlainText=%q, want %q", got, want)
	}
}

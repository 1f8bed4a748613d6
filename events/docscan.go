package events

import (
	"strings"
	"unicode/utf8"
)

// maxScanDepth bounds the nesting scanDoc reads; deeper pushes go to etree,
// which holds them to maxDepth.
const maxScanDepth = 8

// scanDoc reads raw without etree when it has the plain shape WeChat sends:
// an <xml> root whose elements are leaves or hold elements, each leaf either
// plain text or one CDATA section, between nothing but whitespace. It reads
// such a push as etree would and keeps substrings of one copy of raw, so it
// allocates twice where etree allocates for every token.
//
// It answers false, and ReadDoc asks etree, for anything else: attributes,
// namespaces, entities, comments, processing instructions, self-closing
// elements, nesting deeper than maxScanDepth, a carriage return (XML normalizes line ends), text beside
// CDATA, characters XML forbids, invalid UTF-8, a declaration or anything
// outside the root. FuzzScanDocAgreesWithEtree holds it to etree's answer.
func scanDoc(raw []byte) (*Doc, bool) {
	d := &Doc{raw: raw, xml: string(raw)}
	s := d.xml
	i := skipSpace(s, 0)
	if !strings.HasPrefix(s[i:], "<xml>") {
		return nil, false
	}
	i += len("<xml>")
	for {
		i = skipSpace(s, i)
		if strings.HasPrefix(s[i:], "</xml>") {
			i += len("</xml>")
			break
		}
		name, next, ok := openTag(s, i)
		if !ok {
			return nil, false
		}
		f, c := -1, -1
		if x, known := rootFields[name]; known && !d.has[x] {
			f = x
			if f == fScanCodeInfo || f == fSendLocationInfo {
				c = f
			}
		}
		if i, ok = d.element(s, next, name, 1, f, c); !ok {
			return nil, false
		}
	}
	if skipSpace(s, i) != len(s) {
		return nil, false
	}
	return d, true
}

// element reads the content and end tag of element name, whose start tag
// ends at i, at depth (the root's children are at 1), and returns where its
// end tag ends. It records the element's text as field f when f >= 0, and
// its children's fields when it is the container c >= 0.
func (d *Doc) element(s string, i int, name string, depth, f, c int) (int, bool) {
	text, end, ok := leaf(s, i)
	if !ok {
		// Not a leaf: whitespace, then elements, then the end tag.
		j := skipSpace(s, i)
		if depth >= maxScanDepth || j == len(s) || s[j] != '<' || strings.HasPrefix(s[j:], "</") {
			return 0, false
		}
		text = ""
		for {
			j = skipSpace(s, j)
			if end, ok = closeTag(s, j, name); ok {
				break
			}
			child, next, ok := openTag(s, j)
			if !ok {
				return 0, false
			}
			cf := -1
			if x, ok := childField(c, child); ok && c >= 0 && !d.has[x] {
				cf = x
			}
			if j, ok = d.element(s, next, child, depth+1, cf, -1); !ok {
				return 0, false
			}
		}
	} else if end, ok = closeTag(s, end, name); !ok {
		return 0, false
	}
	if f >= 0 {
		d.has[f], d.text[f] = true, strings.TrimSpace(text)
	}
	return end, true
}

// leaf reads a leaf's content starting at i: one CDATA section, or plain
// text up to the next '<'. It returns the text and where the content ends
// (at the '<' of what follows). It refuses text it cannot read as etree
// would, and content that is not a leaf's.
func leaf(s string, i int) (text string, end int, ok bool) {
	const open, close = "<![CDATA[", "]]>"
	if strings.HasPrefix(s[i:], open) {
		start := i + len(open)
		n := strings.Index(s[start:], close)
		if n < 0 || !plainChars(s[start:start+n], false) {
			return "", 0, false
		}
		end = start + n + len(close)
		if !strings.HasPrefix(s[end:], "</") {
			return "", 0, false
		}
		return s[start : start+n], end, true
	}
	n := strings.IndexByte(s[i:], '<')
	if n < 0 || !strings.HasPrefix(s[i+n:], "</") {
		return "", 0, false
	}
	text = s[i : i+n]
	if !plainChars(text, true) || strings.Contains(text, "]]>") {
		return "", 0, false
	}
	return text, i + n, true
}

// plainChars reports whether t holds only characters that XML allows and
// that read as themselves: no carriage return, and in plain text no '&'.
func plainChars(t string, plain bool) bool {
	for k := 0; k < len(t); {
		b := t[k]
		if b < utf8.RuneSelf {
			if (b < 0x20 && b != '\t' && b != '\n') || (plain && b == '&') {
				return false
			}
			k++
			continue
		}
		r, size := utf8.DecodeRuneInString(t[k:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if (r >= 0xD800 && r <= 0xDFFF) || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		k += size
	}
	return true
}

// openTag reads a start tag without attributes at i and returns its name
// and where it ends.
func openTag(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '<' {
		return "", 0, false
	}
	n := nameLen(s, i+1)
	if n == 0 || i+1+n >= len(s) || s[i+1+n] != '>' {
		return "", 0, false
	}
	return s[i+1 : i+1+n], i + 2 + n, true
}

// closeTag reads the end tag of name at i and returns where it ends.
func closeTag(s string, i int, name string) (int, bool) {
	if !strings.HasPrefix(s[i:], "</") || !strings.HasPrefix(s[i+2:], name) {
		return 0, false
	}
	j := i + 2 + len(name)
	if j >= len(s) || s[j] != '>' {
		return 0, false
	}
	return j + 1, true
}

// nameLen is the length of the element name at i: an ASCII letter or '_',
// then letters, digits and '_'. Other names go to etree.
func nameLen(s string, i int) int {
	n := 0
	for ; i+n < len(s); n++ {
		b := s[i+n]
		letter := b == '_' || (b|0x20 >= 'a' && b|0x20 <= 'z')
		if !letter && (n == 0 || b < '0' || b > '9') {
			break
		}
	}
	return n
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
		i++
	}
	return i
}

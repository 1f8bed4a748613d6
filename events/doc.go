package events

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a push's XML: WeChat's go three deep.
const maxDepth = 16

// Doc is one WeChat XML push read once, without building a tree: the text
// of the elements an Event and the callback need. Read it with ReadDoc; a
// Doc is immutable and safe for concurrent use.
type Doc struct {
	raw  []byte
	xml  string // raw as a string: Event.XML, and what the fields point into
	text [numFields]string
	has  [numFields]bool
}

// The elements a Doc keeps: children of the <xml> root, and the children of
// the first ScanCodeInfo and SendLocationInfo. As with etree's
// SelectElement, the first element of a name counts and a namespace prefix
// is ignored.
const (
	fTo = iota
	fFrom
	fCreateTime
	fMsgType
	fEvent
	fEventKey
	fTicket
	fContent
	fMsgId
	fMsgID
	fLatitude
	fLongitude
	fPrecision
	fLocationX
	fLocationY
	fScale
	fEncrypt
	fScanCodeInfo
	fSendLocationInfo
	fScanType // in ScanCodeInfo
	fScanResult
	fSendLocationX // in SendLocationInfo
	fSendLocationY
	fSendScale
	numFields
)

var rootFields = map[string]int{
	"ToUserName": fTo, "FromUserName": fFrom, "CreateTime": fCreateTime, "MsgType": fMsgType,
	"Event": fEvent, "EventKey": fEventKey, "Ticket": fTicket, "Content": fContent,
	"MsgId": fMsgId, "MsgID": fMsgID, "Latitude": fLatitude, "Longitude": fLongitude,
	"Precision": fPrecision, "Location_X": fLocationX, "Location_Y": fLocationY, "Scale": fScale,
	"Encrypt": fEncrypt, "ScanCodeInfo": fScanCodeInfo, "SendLocationInfo": fSendLocationInfo,
}

// childField is the field of element local inside the container field c.
func childField(c int, local string) (int, bool) {
	switch {
	case c == fScanCodeInfo && local == "ScanType":
		return fScanType, true
	case c == fScanCodeInfo && local == "ScanResult":
		return fScanResult, true
	case c == fSendLocationInfo && local == "Location_X":
		return fSendLocationX, true
	case c == fSendLocationInfo && local == "Location_Y":
		return fSendLocationY, true
	case c == fSendLocationInfo && local == "Scale":
		return fSendScale, true
	}
	return 0, false
}

// ReadDoc reads raw as one WeChat XML push. It fails with ErrInvalid when
// raw is not well-formed XML (strict: every element closed by its own end
// tag), nests elements more than 16 deep, or its root element is not <xml>.
// It keeps raw (not a copy) for the Event's XML.
func ReadDoc(raw []byte) (*Doc, error) {
	d := &Doc{raw: raw, xml: string(raw)}
	if d.readFast() {
		return d, nil
	}
	d.text, d.has = [numFields]string{}, [numFields]bool{}
	if err := d.read(); err != nil {
		return nil, fmt.Errorf("events: parse xml: %w: %v", ErrInvalid, err)
	}
	return d, nil
}

// readFast reads the common shape of a push without encoding/xml: elements
// without attributes or namespace prefixes, text and CDATA sections of
// valid XML characters without entities or carriage returns, whitespace
// around the root. It reports false for anything else, including every
// error, and the caller then reads with encoding/xml (read), which decides.
// What it accepts, it reads exactly as read would (FuzzReadDocAgreesWithEtree).
func (d *Doc) readFast() bool {
	s := d.xml
	var (
		stack [maxDepth]struct {
			name  string
			field int
			open  bool
		}
		depth int
		done  bool // the root element is closed
	)
	for i := 0; i < len(s); {
		if s[i] != '<' {
			j := i
			for j < len(s) && s[j] != '<' {
				j++
			}
			text := s[i:j]
			if !plainText(text) {
				return false
			}
			if depth == 0 {
				if strings.TrimLeft(text, " \t\n") != "" {
					return false
				}
			} else if f := &stack[depth-1]; f.open && f.field >= 0 {
				d.addText(f.field, text)
			}
			i = j
			continue
		}
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "![CDATA["):
			end := strings.Index(rest, "]]>")
			if depth == 0 || end < 0 {
				return false
			}
			text := rest[len("![CDATA["):end]
			if !plainText(text) {
				return false
			}
			if f := &stack[depth-1]; f.open && f.field >= 0 {
				d.addText(f.field, text)
			}
			i += 1 + end + len("]]>")
		case strings.HasPrefix(rest, "/"):
			name, ok := tagName(rest[1:])
			if !ok || depth == 0 || stack[depth-1].name != name {
				return false
			}
			depth--
			done = depth == 0
			i += 2 + len(name) + 1
		default:
			name, ok := tagName(rest)
			if !ok || done || depth == maxDepth || (depth == 0 && name != "xml") {
				return false
			}
			field := -1
			switch depth {
			case 1:
				if f, ok := rootFields[name]; ok && !d.has[f] {
					field = f
				}
			case 2:
				if f, ok := childField(stack[1].field, name); ok && !d.has[f] {
					field = f
				}
			}
			if field >= 0 {
				d.has[field] = true
			}
			if depth > 0 {
				stack[depth-1].open = false
			}
			stack[depth].name, stack[depth].field, stack[depth].open = name, field, true
			depth++
			i += 1 + len(name) + 1
		}
	}
	if !done {
		return false
	}
	for f := range d.text {
		d.text[f] = strings.TrimSpace(d.text[f])
	}
	return true
}

// addText appends text to field f: a substring of the document when it is
// the first piece.
func (d *Doc) addText(f int, text string) {
	if d.text[f] == "" {
		d.text[f] = text
	} else {
		d.text[f] += text
	}
}

// tagName is the name at the start of s when a plain '>' follows it: ASCII
// letters, digits, '_', '-' and '.', starting with a letter or '_'.
func tagName(s string) (string, bool) {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && (c == '-' || c == '.' || '0' <= c && c <= '9') {
			i++
			continue
		}
		break
	}
	if i == 0 || i == len(s) || s[i] != '>' {
		return "", false
	}
	return s[:i], true
}

// plainText reports whether s is character data that encoding/xml reads
// unchanged: valid UTF-8 of XML characters, no entity, no carriage return
// (which it would normalise) and no "]]>".
func plainText(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' || c == '&' || c == '>' && i >= 2 && s[i-2:i] == "]]" {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r > 0xD7FF && r < 0xE000 || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		i += size
	}
	return true
}

// frame is one open element while reading.
type frame struct {
	name  xml.Name
	field int  // the field it fills, or -1
	open  bool // still collecting its text: no child element seen yet
}

func (d *Doc) read() error {
	dec := xml.NewDecoder(bytes.NewReader(d.raw)) // a ByteReader: no bufio copy
	dec.Strict = true
	dec.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	var (
		stack [maxDepth]frame
		depth int
		roots int // top-level elements seen; only the first is the push
		texts [numFields]strings.Builder
	)
	for {
		t, err := dec.RawToken()
		if err == io.EOF {
			if depth != 0 {
				return errors.New("unexpected end of document")
			}
			break
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if depth == maxDepth {
				return fmt.Errorf("elements nested over %d deep", maxDepth)
			}
			f := frame{name: t.Name, field: -1}
			switch {
			case depth == 0:
				roots++
				if roots == 1 && t.Name.Local != "xml" {
					return errors.New("root element is not <xml>")
				}
			case roots > 1:
			case depth == 1:
				if i, ok := rootFields[t.Name.Local]; ok && !d.has[i] {
					f.field, f.open = i, true
					d.has[i] = true
				}
			case depth == 2 && stack[1].field >= 0:
				if i, ok := childField(stack[1].field, t.Name.Local); ok && !d.has[i] {
					f.field, f.open = i, true
					d.has[i] = true
				}
			}
			if depth > 0 {
				stack[depth-1].open = false // its text ends at its first child element
			}
			stack[depth] = f
			depth++
		case xml.EndElement:
			if depth == 0 || stack[depth-1].name != t.Name {
				return fmt.Errorf("element <%s> closed by </%s>", stack[max(depth-1, 0)].name.Local, t.Name.Local)
			}
			depth--
		case xml.CharData:
			if depth > 0 {
				if f := stack[depth-1]; f.open && f.field >= 0 {
					texts[f.field].Write(t)
				}
			} else if len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
	if roots == 0 {
		return errors.New("no root element")
	}
	for i := range texts {
		d.text[i] = strings.TrimSpace(texts[i].String())
	}
	return nil
}

// Encrypt is the text of the <Encrypt> element, or "" when there is none:
// the ciphertext of a safe or compatible mode push.
func (d *Doc) Encrypt() string { return d.text[fEncrypt] }

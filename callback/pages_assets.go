package callback

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
)

// The staff pages' templates, style sheet and script, embedded (pages/).
// The pages load no style or script from anywhere but this origin: the
// style sheet and the /scan script are inlined by the templates as typed
// values (template.CSS, template.JS), which html/template inserts
// unchanged, so the hashes pagesCSP allows are computed over exactly the
// bytes the browser sees. The only other script is the JS-SDK at
// JSSDKPath, allowed by 'self'.
var (
	//go:embed pages/*.html
	pagesFS embed.FS
	//go:embed pages/pages.css
	pagesStyle string
	//go:embed pages/scan.js
	pagesScript string
)

var pagesTemplates = template.Must(template.New("pages").Funcs(template.FuncMap{
	"spans":      pageSpans,
	"pageStyle":  func() template.CSS { return template.CSS(pagesStyle) },
	"pageScript": func() template.JS { return template.JS(pagesScript) },
}).ParseFS(pagesFS, "pages/*.html"))

// pagesCSP forbids every load from anywhere else: no script but the /scan
// script (by hash) and this origin's (the JS-SDK), no style but the style
// sheet (by hash), fetch and forms only to this origin, images only data:
// URLs (so the JS-SDK's report beacon to open.weixin.qq.com, whose query
// carries the page's URL and so the session, is never sent), no framing.
var pagesCSP = "default-src 'none'; " +
	"script-src 'self' " + pagesCSPHash(pagesScript) + "; " +
	"style-src " + pagesCSPHash(pagesStyle) + "; " +
	"img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func pagesCSPHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

package callback

import (
	"bytes"
	_ "embed"
	"net/http"
	"time"
)

// JSSDKPath is where the staff pages serve WeChat's JS-SDK (jweixin 1.6.0), vendored unchanged from the
// npm package weixin-js-sdk (see static/README.md). Pages load it from their own origin.
const JSSDKPath = "/static/jweixin-1.6.0.js"

//go:embed static/jweixin-1.6.0.js
var jssdkJS []byte

// jssdkModTime is a fixed Last-Modified for the embedded file, so that conditional requests work.
var jssdkModTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// serveJSSDK is GET JSSDKPath. The file name carries the version, so it may be cached for a year.
func serveJSSDK(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", jssdkModTime, bytes.NewReader(jssdkJS))
}

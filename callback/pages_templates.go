package callback

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
)

// The staff pages load nothing from anywhere: their only style and script
// are these inline blocks, allowed by their hashes in the
// Content-Security-Policy (pagesCSP). The template text is passed through
// unchanged by html/template, so the hashes computed here match the bytes
// the browser sees.

const pagesStyle = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 -apple-system,BlinkMacSystemFont,"PingFang SC","Microsoft YaHei",sans-serif;background:#f2f3f5;color:#1f2329}
main{max-width:480px;margin:0 auto;padding:16px}
.card{background:#fff;border-radius:12px;padding:20px 16px;margin-bottom:12px}
h1{font-size:20px;margin:0 0 12px}
h2{font-size:16px;margin:0 0 8px}
p{margin:8px 0}
.muted{color:#8a8f99;font-size:14px}
.ok{color:#07c160}
.err{color:#e34d59}
.status{font-size:40px;line-height:1;margin:8px 0 12px}
.who{font-size:18px;font-weight:600}
label{display:block;margin:12px 0 4px;font-size:14px;color:#4e5969}
form>label:first-child{margin-top:0}
input{width:100%;font-size:17px;padding:10px 12px;border:1px solid #c9cdd4;border-radius:8px;background:#fff}
input:focus{outline:none;border-color:#07c160}
button{width:100%;font-size:17px;padding:12px;margin-top:16px;border:0;border-radius:8px;background:#07c160;color:#fff}
button:disabled{background:#a0d9b8}
button.big{font-size:22px;padding:20px;margin-top:8px}
button.small{width:auto;font-size:14px;padding:4px 10px;margin:4px 0 0}
.row{display:flex;gap:8px;align-items:flex-end}
.row input{flex:1}
.row button{width:auto;margin-top:0;padding:10px 16px}
a{color:#576b95}
.links a{display:inline-block;margin:8px 16px 0 0}
ul{list-style:none;margin:0;padding:0}
li{padding:8px 0;border-top:1px solid #f2f3f5;word-break:break-all}
li .code{font-family:ui-monospace,Menlo,monospace;font-size:14px;color:#4e5969}
li.pending .msg{color:#8a8f99}
li.ok .msg{color:#07c160}
li.err .msg{color:#e34d59}
`

// pagesScript runs the /scan page. It reads wx.config's values from the
// data attributes of #scan, verifies them with WeChat's JS bridge
// (preVerifyJSAPI, what jweixin's wx.config does) and calls scanQRCode with
// needResult 1 (what wx.scanQRCode does). Every result, scanned or typed,
// is posted to /api/scans with a client_id made once per scan, so a retry
// of the same scan is recorded once. Bridge answers are read as jweixin
// reads them ("name:ok" success, "name:cancel" a cancel, else a failure),
// and a resultStr in the JSON form some clients return is unwrapped.
//
// It holds no comments: html/template strips comments from scripts, which
// would change the bytes its CSP hash is computed over.
const pagesScript = `
(function () {
  'use strict';
  var root = document.getElementById('scan');
  if (!root) { return; }
  function attr(n) { return root.getAttribute('data-' + n) || ''; }
  var session = attr('session');
  var verify = {
    verifyAppId: attr('appid'),
    verifySignType: 'sha1',
    verifyTimestamp: attr('timestamp'),
    verifyNonceStr: attr('noncestr'),
    verifySignature: attr('signature')
  };
  var btn = document.getElementById('scanbtn');
  var hint = document.getElementById('hint');
  var list = document.getElementById('recent');
  var loc = document.getElementById('loc');
  var form = document.getElementById('manual');
  var input = document.getElementById('code');

  function newID() {
    var b = new Uint8Array(16), s = '', i;
    var c = window.crypto || window.msCrypto;
    if (c && c.getRandomValues) { c.getRandomValues(b); } else { for (i = 0; i < b.length; i++) { b[i] = Math.floor(Math.random() * 256); } }
    for (i = 0; i < b.length; i++) { s += (b[i] < 16 ? '0' : '') + b[i].toString(16); }
    return s;
  }
  function withVerify(o) {
    for (var k in verify) { if (Object.prototype.hasOwnProperty.call(verify, k)) { o[k] = verify[k]; } }
    o.appId = verify.verifyAppId;
    return o;
  }
  function outcome(res) {
    var m = String((res && (res.errMsg || res.err_msg)) || '');
    var t = m.substring(m.indexOf(':') + 1);
    if (t === 'ok' || t === 'confirm') { return 'ok'; }
    if (t === 'cancel') { return 'cancel'; }
    return 'fail';
  }
  function resultOf(s) {
    if (typeof s !== 'string') { return ''; }
    if (s.charAt(0) === '{') {
      try { var o = JSON.parse(s); if (o && o.scan_code && o.scan_code.scan_result) { return String(o.scan_code.scan_result); } } catch (e) {}
    }
    return s;
  }

  function show(li, text, cls) {
    li.className = cls;
    li.querySelector('.msg').textContent = text;
    var old = li.querySelector('button');
    if (old) { li.removeChild(old); }
  }
  function submit(result, id, li) {
    show(li, '提交中…', 'pending');
    var body = JSON.stringify({session: session, result: result, client_id: id});
    fetch('/api/scans', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: body, credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) {
        return r.json().then(function (b) { return {status: r.status, body: b || {}}; }, function () { return {status: r.status, body: {}}; });
      })
      .then(function (a) {
        if (a.status === 200) {
          show(li, a.body.message || '已记录', 'ok');
          if (a.body.location) { loc.textContent = a.body.location; }
          return;
        }
        var m = (a.body.error && a.body.error.message) || '提交没有成功';
        show(li, m, 'err');
        if (a.status >= 500 || a.status === 429) { retry(result, id, li); }
      }, function () {
        show(li, '网络不通，没有提交成功', 'err');
        retry(result, id, li);
      });
  }
  function retry(result, id, li) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'small';
    b.textContent = '重试';
    b.addEventListener('click', function () { submit(result, id, li); });
    li.appendChild(b);
  }
  function record(result) {
    var li = document.createElement('li');
    var code = document.createElement('div');
    code.className = 'code';
    code.textContent = result;
    var msg = document.createElement('div');
    msg.className = 'msg';
    li.appendChild(code);
    li.appendChild(msg);
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 20) { list.removeChild(list.lastChild); }
    submit(result, newID(), li);
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var v = input.value.replace(/^\s+|\s+$/g, '');
    if (!v) { input.focus(); return; }
    input.value = '';
    record(v);
  });

  btn.addEventListener('click', function () {
    WeixinJSBridge.invoke('scanQRCode', withVerify({needResult: 1, scanType: ['qrCode', 'barCode'], desc: ''}), function (res) {
      var o = outcome(res);
      if (o === 'ok') {
        var r = resultOf(res.resultStr);
        if (r) { record(r); } else { hint.textContent = '没有读到内容，请再扫一次。'; }
      } else if (o === 'fail') {
        hint.textContent = '扫码没有成功，请再试一次，或手动输入。';
      }
    });
  });

  function ready() {
    WeixinJSBridge.invoke('preVerifyJSAPI', withVerify({verifyJsApiList: ['scanQRCode']}), function (res) {
      if (outcome(res) === 'ok') {
        btn.disabled = false;
        hint.textContent = '点“扫一扫”，对准条码或二维码。';
      } else {
        hint.textContent = '微信扫一扫暂时用不了，请刷新页面，或手动输入。';
      }
    });
  }
  if (typeof WeixinJSBridge === 'object' && typeof WeixinJSBridge.invoke === 'function') {
    ready();
  } else {
    document.addEventListener('WeixinJSBridgeReady', ready, false);
    if (!/MicroMessenger/i.test(navigator.userAgent)) {
      hint.textContent = '请在微信里打开本页使用扫一扫；也可以在下面手动输入。';
    }
  }
})();
`

const pagesTemplateText = `
{{define "top"}}<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="format-detection" content="telephone=no">
<link rel="icon" href="data:,">
<title>{{.}}</title>
<style>` + pagesStyle + `</style>
</head>
<body>
<main>{{end}}

{{define "bottom"}}</main>
</body>
</html>
{{end}}

{{define "message"}}{{range spans .}}{{if .Href}}<a href="{{.Href}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}{{end}}{{end}}

{{define "links"}}{{if .}}<p class="links">{{range .}}<a href="{{.Href}}">{{.Label}}</a>{{end}}</p>{{end}}{{end}}

{{define "error"}}{{template "top" .Title}}
<section class="card">
<h1>{{.Title}}</h1>
<p class="err">{{template "message" .Message}}</p>
{{template "links" .Links}}
<p class="muted">错误 {{.Status}}{{if .Code}} · {{.Code}}{{end}}</p>
</section>
{{template "bottom"}}{{end}}

{{define "bind"}}{{template "top" "绑定工号"}}
{{if .Bound}}<section class="card">
<h1>你已绑定</h1>
<p class="who">你已绑定：工号 {{.BoundNo}} 姓名 {{.BoundName}}</p>
<p class="muted">可以直接用公众号菜单里的“扫码盘点”。要换成别的工号，在下面重新绑定。</p>
</section>{{end}}
<section class="card">
<h1>{{if .Bound}}重新绑定{{else}}绑定工号{{end}}</h1>
<p class="muted">输入你的工号和主管给你的绑定码，绑定后就能扫码盘点。</p>
{{if .Error}}<p class="err" role="alert">{{template "message" .Error}}</p>{{end}}
<form method="post" action="/bind" autocomplete="off">
<input type="hidden" name="session" value="{{.Session}}">
<label for="employee_no">工号</label>
<input id="employee_no" name="employee_no" value="{{.EmployeeNo}}" required maxlength="64" autocapitalize="off" autocorrect="off" spellcheck="false">
<label for="bind_code">绑定码</label>
<input id="bind_code" name="bind_code" required maxlength="64" autocapitalize="off" autocorrect="off" spellcheck="false">
<button type="submit">绑定</button>
</form>
{{template "links" .Links}}
</section>
{{template "bottom"}}{{end}}

{{define "bound"}}{{template "top" "绑定成功"}}
<section class="card">
<p class="status ok">✓</p>
<h1>绑定成功</h1>
<p class="who">{{.Name}}（工号 {{.EmployeeNo}}）</p>
<p>现在可以点公众号菜单里的“扫码盘点”开始扫码了。</p>
<p class="muted">可以关闭本页。</p>
</section>
{{template "bottom"}}{{end}}

{{define "scan"}}{{template "top" "扫码盘点"}}
<div id="scan" data-session="{{.Session}}" data-appid="{{.Config.AppID}}" data-timestamp="{{.Config.Timestamp}}" data-noncestr="{{.Config.NonceStr}}" data-signature="{{.Config.Signature}}">
<section class="card">
<h1>扫码盘点</h1>
<p class="who">{{.Config.Name}}（工号 {{.Config.EmployeeNo}}）</p>
{{if .Config.Stocktake}}<p>盘点：{{.Config.Stocktake}}</p>{{else}}<p class="err">现在没有进行中的盘点，请联系主管。</p>{{end}}
<p>库位：<span id="loc">{{if .Config.Location}}{{.Config.Location}}{{else}}未设置（先扫库位码）{{end}}</span></p>
<button id="scanbtn" class="big" type="button" disabled>扫一扫</button>
<p id="hint" class="muted">正在连接微信…</p>
</section>
<section class="card">
<form id="manual" autocomplete="off">
<label for="code">扫不了？手动输入条码</label>
<div class="row"><input id="code" name="result" required maxlength="512" autocapitalize="off" autocorrect="off" spellcheck="false" enterkeyhint="send"><button type="submit">提交</button></div>
</form>
</section>
<section class="card">
<h2>最近扫码</h2>
<ul id="recent"></ul>
</section>
</div>
<script>` + pagesScript + `</script>
{{template "bottom"}}{{end}}
`

var pagesTemplates = template.Must(template.New("pages").Funcs(template.FuncMap{"spans": pageSpans}).Parse(pagesTemplateText))

// pagesCSP forbids every load from anywhere else: no script or style but
// the two inline blocks above (by hash; 'unsafe-inline' is ignored by every
// browser that understands hashes), fetch and forms only to this origin,
// no framing.
var pagesCSP = "default-src 'none'; " +
	"script-src " + pagesCSPHash(pagesScript) + " 'unsafe-inline'; " +
	"style-src " + pagesCSPHash(pagesStyle) + " 'unsafe-inline'; " +
	"img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func pagesCSPHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

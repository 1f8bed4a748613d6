// The /scan page. It is inlined into the page and allowed by its hash in
// the Content-Security-Policy, so it is executed exactly as written here.
//
// WeChat's JS-SDK (jweixin 1.6.0, served from this origin) is configured
// with the values the server signed (data-* of #scan); 扫一扫 calls
// wx.scanQRCode with needResult 1. Every result, scanned or typed, is
// posted to /api/scans with a client_id made once per scan, so a retry of
// the same scan is recorded once. The person's recent scans in the open
// stocktake come from GET /api/scans, whichever way they were made, and
// each editable one can have its quantity set or be undone.
//
// Text that people control (codes, names, locations, messages) is only
// ever set with textContent, never as markup.
(function () {
  'use strict';
  var root = document.getElementById('scan');
  if (!root) { return; }
  function attr(n) { return root.getAttribute('data-' + n) || ''; }
  var session = attr('session');
  var canScan = attr('open') === '1';
  var btn = document.getElementById('scanbtn');
  var hint = document.getElementById('hint');
  var result = document.getElementById('result');
  var list = document.getElementById('recent');
  var empty = document.getElementById('empty');
  var loc = document.getElementById('loc');
  var count = document.getElementById('count');
  var stocktake = document.getElementById('stocktake');
  var form = document.getElementById('manual');
  var input = document.getElementById('code');
  var formBtn = form.querySelector('button');
  var wxReady = false;
  var wxFailed = false;

  function newID() {
    var b = new Uint8Array(16), s = '', i;
    var c = window.crypto || window.msCrypto;
    if (c && c.getRandomValues) { c.getRandomValues(b); } else { for (i = 0; i < b.length; i++) { b[i] = Math.floor(Math.random() * 256); } }
    for (i = 0; i < b.length; i++) { s += (b[i] < 16 ? '0' : '') + b[i].toString(16); }
    return s;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ''; }
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  // say shows the outcome of the last action; retry, when given, adds a
  // button that repeats it.
  function say(text, cls, retry) {
    result.hidden = false;
    result.className = cls || '';
    result.textContent = text;
    if (retry) {
      var b = el('button', 'small', '重试');
      b.type = 'button';
      b.addEventListener('click', function () { retry(); });
      result.appendChild(document.createTextNode(' '));
      result.appendChild(b);
    }
  }
  function setCount(n) {
    if (count && typeof n === 'number') { count.textContent = String(n); }
  }

  // stop turns scanning off once no stocktake can take a scan (it closed
  // while the page was open) and reads the list again, now empty.
  function stop() {
    canScan = false;
    btn.disabled = true;
    input.disabled = true;
    formBtn.disabled = true;
    stocktake.className = 'err';
    stocktake.textContent = '现在没有进行中的盘点，不能扫码。盘点开始后，请重新打开本页。';
    hint.className = 'muted';
    hint.textContent = '没有进行中的盘点，扫一扫已停用。';
    if (count) { count.parentNode.hidden = true; }
    document.getElementById('note').hidden = true;
    loadRecent();
  }

  // api sends one request and calls done(status, body); status 0 is a
  // network failure.
  function api(method, path, payload, done) {
    var opts = {method: method, credentials: 'same-origin', cache: 'no-store', headers: {}};
    if (payload) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(payload);
    }
    fetch(path, opts).then(function (r) {
      return r.json().then(function (b) { done(r.status, b || {}); }, function () { done(r.status, {}); });
    }, function () { done(0, {}); });
  }
  function errorText(status, body, fallback) {
    if (status === 0) { return '网络不通，请检查网络后重试。'; }
    return (body.error && body.error.message) || fallback;
  }
  function refused(status, body) {
    if (status === 409 && body.error && body.error.code === 'no_stocktake') { stop(); }
  }

  // line builds the list item of one scan (events.PageScan).
  function line(s) {
    var li = el('li', s.cancelled ? 'cancelled' : (s.editable ? 'editable' : 'locked'));
    li.setAttribute('data-ref', s.ref);
    var head = el('div');
    head.appendChild(el('span', 'label', s.label || s.code));
    if (s.unknown) { head.appendChild(el('span', 'tag', '未登记')); }
    li.appendChild(head);
    var meta = [];
    if (s.label && s.label !== s.code) { meta.push(s.code); }
    meta.push('库位 ' + (s.location || '未设置'));
    meta.push(clock(s.scanned_at));
    li.appendChild(el('div', 'meta', meta.join(' · ')));
    if (s.editable) {
      var row = el('div', 'edit');
      var q = el('input');
      q.type = 'number';
      q.min = '1';
      q.max = '99999';
      q.step = '1';
      q.inputMode = 'numeric';
      q.value = String(s.qty);
      q.setAttribute('aria-label', '数量');
      var save = el('button', 'save', '保存');
      save.type = 'button';
      var undo = el('button', 'undo plain', '撤销');
      undo.type = 'button';
      row.appendChild(el('span', '', '数量'));
      row.appendChild(q);
      row.appendChild(save);
      row.appendChild(undo);
      li.appendChild(row);
      save.addEventListener('click', function () { setQty(li, s, q); });
      q.addEventListener('keydown', function (e) { if (e.key === 'Enter') { e.preventDefault(); setQty(li, s, q); } });
      undo.addEventListener('click', function () { cancel(li, s); });
    } else {
      li.appendChild(el('div', 'qty', '数量 ' + s.qty));
      li.appendChild(el('div', 'why', s.cancelled ? '已撤销，不计入盘点' : '超过 10 分钟，不能再改'));
    }
    li.appendChild(el('div', 'msg'));
    return li;
  }
  function lineMsg(li, text, cls) {
    var m = li.querySelector('.msg');
    m.className = 'msg ' + (cls || '');
    m.textContent = text;
  }
  function busy(li, on) {
    var bs = li.querySelectorAll('button, input');
    for (var i = 0; i < bs.length; i++) { bs[i].disabled = on; }
  }
  // show puts scan s at the top of the list, replacing its old line.
  function show(s) {
    var old = list.querySelector('li[data-ref="' + s.ref.replace(/["\\]/g, '') + '"]');
    var li = line(s);
    if (old) { list.replaceChild(li, old); } else { list.insertBefore(li, list.firstChild); }
    while (list.children.length > 50) { list.removeChild(list.lastChild); }
    empty.hidden = true;
    return li;
  }

  function loadRecent() {
    api('GET', '/api/scans?s=' + encodeURIComponent(session), null, function (status, body) {
      if (status !== 200) {
        empty.hidden = false;
        empty.textContent = errorText(status, body, '最近扫码没有读出来。');
        return;
      }
      while (list.firstChild) { list.removeChild(list.firstChild); }
      var scans = body.scans || [];
      for (var i = scans.length - 1; i >= 0; i--) { show(scans[i]); }
      empty.hidden = scans.length > 0;
      empty.textContent = canScan ? '本次盘点你还没有扫码。' : '没有进行中的盘点。';
      setCount(body.count);
      if (body.location) { loc.textContent = body.location; }
    });
  }

  function setQty(li, s, q) {
    var v = String(q.value).replace(/^\s+|\s+$/g, '');
    if (!/^[0-9]{1,6}$/.test(v)) {
      lineMsg(li, '请输入 1 到 99999 之间的整数。', 'err');
      q.focus();
      return;
    }
    busy(li, true);
    lineMsg(li, '保存中…', 'muted');
    api('POST', '/api/scans/qty', {session: session, ref: s.ref, qty: parseInt(v, 10)}, function (status, body) {
      changed(li, status, body, '数量没有改成。');
    });
  }
  function cancel(li, s) {
    busy(li, true);
    lineMsg(li, '撤销中…', 'muted');
    api('POST', '/api/scans/undo', {session: session, ref: s.ref}, function (status, body) {
      changed(li, status, body, '没有撤销成功。');
    });
  }
  // changed shows the answer to a quantity change or an undo: the
  // workers' message and the new count at the top; a refusal next to the
  // line, or at the top when the list is read again (the scan is gone, too
  // old, or its stocktake closed).
  function changed(li, status, body, fallback) {
    if (status === 200 && body.scan) {
      show(body.scan);
      say(body.message || '已保存', 'ok');
      setCount(body.count);
      return;
    }
    var text = errorText(status, body, fallback);
    busy(li, false);
    if (status === 404 || status === 409) {
      lineMsg(li, '', '');
      say(text, 'err');
      refused(status, body);
      loadRecent();
      return;
    }
    lineMsg(li, text, 'err');
  }

  function submit(code, id) {
    say('提交中…', 'muted');
    api('POST', '/api/scans', {session: session, result: code, client_id: id}, function (status, body) {
      if (status === 200) {
        say(body.message || '已记录', 'ok');
        if (body.location) { loc.textContent = body.location; }
        if (body.scan) {
          lineMsg(show(body.scan), '刚刚记录', 'ok');
          setCount(body.count);
        } else if (!count) {
          // A location change while no stocktake covered the old location:
          // the page is built again for the new one.
          location.reload();
        } else {
          loadRecent();
        }
        return;
      }
      var again = status === 0 || status === 429 || status >= 500;
      say(errorText(status, body, '提交没有成功。'), 'err', again ? function () { submit(code, id); } : null);
      refused(status, body);
    });
  }
  function record(code) {
    if (!canScan) { return; }
    submit(code, newID());
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var v = input.value.replace(/^\s+|\s+$/g, '');
    if (!v) { input.focus(); return; }
    input.value = '';
    record(v);
  });

  btn.addEventListener('click', function () {
    if (!wxReady || !canScan) { return; }
    wx.scanQRCode({
      needResult: 1,
      scanType: ['qrCode', 'barCode'],
      success: function (res) {
        var r = res && typeof res.resultStr === 'string' ? res.resultStr : '';
        if (r) { record(r); } else { say('没有读到内容，请再扫一次。', 'err'); }
      },
      fail: function () { say('扫码没有成功，请再试一次，或手动输入。', 'err'); },
      cancel: function () { say('已取消扫码。', 'muted'); }
    });
  });

  loadRecent();
  if (!canScan) { return; }
  // The list is read again now and then, so that scans made from the chat
  // meanwhile show and lines past their 10 minutes lose their controls;
  // never while the person is typing a quantity.
  setInterval(function () {
    if (document.visibilityState === 'hidden' || list.contains(document.activeElement)) { return; }
    loadRecent();
  }, 30000);
  if (!/MicroMessenger/i.test(navigator.userAgent) || typeof wx !== 'object') {
    hint.textContent = '请在微信里打开本页使用扫一扫；也可以在下面手动输入。';
    return;
  }
  wx.config({
    debug: false,
    appId: attr('appid'),
    timestamp: parseInt(attr('timestamp'), 10),
    nonceStr: attr('noncestr'),
    signature: attr('signature'),
    jsApiList: ['scanQRCode']
  });
  // jweixin calls ready after a failed config too (after error): only a
  // verified config enables the button.
  wx.ready(function () {
    if (wxReady || wxFailed) { return; }
    wxReady = true;
    btn.disabled = !canScan;
    hint.textContent = canScan ? '点“扫一扫”，对准条码或二维码。' : '没有进行中的盘点，扫一扫已停用。';
  });
  wx.error(function () {
    wxFailed = true;
    wxReady = false;
    btn.disabled = true;
    hint.className = 'err';
    hint.textContent = '微信扫一扫暂时用不了，请刷新页面重试；也可以在下面手动输入。';
  });
})();

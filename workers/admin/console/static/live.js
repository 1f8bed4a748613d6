// The live page of an open stocktake: the server sends the counts and the
// latest scans as an HTML fragment (event "live") after each change.
(function () {
  'use strict';
  var live = document.getElementById('live');
  var state = document.getElementById('live-state');
  if (!live || !live.dataset.stream || !window.EventSource) {
    return;
  }
  var es = new EventSource(live.dataset.stream);
  es.addEventListener('live', function (e) {
    live.innerHTML = e.data;
    if (state) {
      state.textContent = '扫码后本页会自动更新。';
    }
  });
  es.addEventListener('error', function () {
    if (!state) {
      return;
    }
    state.textContent = es.readyState === EventSource.CLOSED ?
      '自动更新已停止，请刷新页面（可能需要重新登录）。' : '连接中断，正在重连…';
  });
})();

// kyb dashboard: keeps the page live (server-sent events), tails logs and
// sends actions without leaving the page. No framework, no build step.
(function () {
  'use strict';

  var live = document.getElementById('live');
  var toastEl = document.getElementById('toast');

  function toast(msg, bad) {
    if (!toastEl) return;
    toastEl.textContent = msg;
    toastEl.className = bad ? 'show bad' : 'show';
    clearTimeout(toast.t);
    toast.t = setTimeout(function () { toastEl.className = ''; }, bad ? 8000 : 3000);
  }

  // The user is editing while a field, or any control of an action form,
  // of the live region has the focus.
  function editing() {
    var a = document.activeElement;
    return !!a && !!live && live.contains(a) && (a.matches('input, select, textarea') || !!a.closest('form.action'));
  }

  // The live region is replaced by each render event, except while the
  // user types in it: then the newest render waits until they leave.
  if (live && live.dataset.live) {
    var pending = null;
    var apply = function (html) {
      live.innerHTML = html;
      document.body.setAttribute('data-rendered', String(Date.now()));
    };
    var connect = function () {
      var es = new EventSource(live.dataset.live);
      es.addEventListener('render', function (e) {
        if (editing()) { pending = e.data; return; }
        pending = null;
        apply(e.data);
      });
      es.addEventListener('logout', function () { location.href = '/login'; });
      es.onerror = function () {
        if (es.readyState === EventSource.CLOSED) {
          // Refused (the session ended) or the server went away: a reload
          // signs in again or shows why.
          setTimeout(function () { location.reload(); }, 3000);
        }
      };
    };
    live.addEventListener('focusout', function () {
      setTimeout(function () {
        if (pending !== null && !editing()) { apply(pending); pending = null; }
      }, 0);
    });
    connect();
  }

  // Logs: append each line; keep the view at the bottom unless scrolled up.
  var log = document.getElementById('log');
  if (log && log.dataset.logs) {
    var status = document.getElementById('log-status');
    var say = function (s) { if (status) status.textContent = s; };
    var les = new EventSource(log.dataset.logs);
    les.addEventListener('line', function (e) {
      var bottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      var div = document.createElement('div');
      div.textContent = e.data;
      log.appendChild(div);
      while (log.childElementCount > 5000) log.removeChild(log.firstChild);
      if (bottom) log.scrollTop = log.scrollHeight;
      say('');
    });
    les.addEventListener('wait', function (e) { say(e.data); });
    les.addEventListener('fail', function (e) { say(e.data); les.close(); });
    les.addEventListener('end', function (e) { say(e.data); les.close(); });
  }

  // Actions: POST with the form's CSRF token, answer in a toast; the live
  // view shows the effect.
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f.classList || !f.classList.contains('action')) return;
    e.preventDefault();
    if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) return;
    var body = new URLSearchParams(new FormData(f));
    fetch(f.action, {
      method: 'POST', body: body, credentials: 'same-origin',
      headers: { 'Accept': 'application/json' }
    }).then(function (r) {
      return r.json().catch(function () { return { message: r.status + ' ' + r.statusText }; })
        .then(function (j) { toast(j.message || (r.status + ''), !r.ok); });
    }).catch(function (err) { toast(String(err), true); }).then(function () {
      // Done: let the live view show the newest render.
      var a = document.activeElement;
      if (a && live && live.contains(a)) a.blur();
    });
  });

  // Usage plots: between renders of the view, fetch them again every 10 s
  // (agents sample every 10 s), as the signed-in user.
  setInterval(function () {
    if (document.hidden) return;
    document.querySelectorAll('[data-usage]').forEach(function (el) {
      fetch(el.dataset.usage, { credentials: 'same-origin' }).then(function (r) {
        if (!r.ok) return null;
        return r.text();
      }).then(function (html) {
        if (html && el.isConnected) {
          el.outerHTML = html;
          document.body.setAttribute('data-usage-refreshed', String(Date.now()));
        }
      }).catch(function () {});
    });
  }, 10000);
})();

/* geosteer RUM: times this page view's requests to a few CDN edges and
   tells the DNS server, which steers this network by what its users see.
   Async, no globals, errors swallowed, once per page view. */
(function (host) {
  "use strict";
  try {
    var w = window, d = document, s = d.currentScript, perf = w.performance;
    if (!s || !perf || !perf.mark || !perf.getEntriesByName || !w.fetch || !w.Promise || !w.URL) return;
    /* Once per page view, without a global: a performance mark. */
    if (perf.getEntriesByName("geosteer-rum", "mark").length) return;
    perf.mark("geosteer-rum");
    var base = new URL(s.src, d.baseURI);
    var origin = base.origin;
    var quiet = function () {};
    var wait = function (ms) {
      return new Promise(function (ok) { setTimeout(ok, ms); });
    };
    /* One edge: its object with a cache-buster, timed by Resource Timing
       (request to first byte when the edge sends Timing-Allow-Origin,
       else the whole fetch). */
    var measure = function (u) {
      var url = u + (u.indexOf("?") < 0 ? "?" : "&") + "gsrum=" + Math.random().toString(36).slice(2);
      var ctl = w.AbortController ? new AbortController() : null;
      var timer = ctl ? setTimeout(function () { ctl.abort(); }, 5000) : 0;
      var opts = { mode: "no-cors", credentials: "omit", cache: "no-store" };
      if (ctl) opts.signal = ctl.signal;
      var t0 = perf.now();
      return fetch(url, opts).then(function () {
        var t1 = perf.now();
        clearTimeout(timer);
        /* The entry is added as the response ends; give it a turn. */
        return wait(0).then(function () {
          var list = perf.getEntriesByName(new URL(url, d.baseURI).href);
          var e = list[list.length - 1];
          var ms = t1 - t0;
          if (e) ms = e.requestStart > 0 && e.responseStart >= e.requestStart ? e.responseStart - e.requestStart : e.duration;
          return ms >= 0 && ms <= 10000 ? Math.round(ms * 10) / 10 : -1;
        });
      }, function () {
        clearTimeout(timer);
        return -1;
      });
    };
    var send = function (body) {
      var url = origin + "/rum/beacon";
      /* text/plain: a simple request, no CORS preflight. */
      try {
        fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit", mode: "cors" }).catch(quiet);
      } catch (e) {
        if (navigator.sendBeacon) navigator.sendBeacon(url, body);
      }
    };
    var run = function () {
      fetch(origin + "/rum/config?host=" + encodeURIComponent(host), { credentials: "omit", cache: "no-store", mode: "cors" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (cfg) {
          if (!cfg || !cfg.token || !cfg.edges || !cfg.edges.length) return;
          /* Makes the browser's resolver ask us for this page view's name. */
          if (cfg.resolver_probe) {
            var probe = base.protocol + "//" + cfg.resolver_probe + (base.port ? ":" + base.port : "") + "/rum/probe";
            fetch(probe, { mode: "no-cors", credentials: "omit", cache: "no-store" }).catch(quiet);
          }
          var rtt = {}, n = 0, chain = Promise.resolve();
          cfg.edges.forEach(function (e) {
            chain = chain.then(function () {
              return measure(e.url).then(function (ms) {
                if (ms >= 0) { rtt[e.edge] = ms; n++; }
              });
            });
          });
          return chain.then(function () {
            if (n) send(JSON.stringify({ token: cfg.token, rtt: rtt }));
          });
        })
        .catch(quiet);
    };
    var later = function () { setTimeout(run, 0); };
    if (d.readyState === "complete") later();
    else w.addEventListener("load", later);
  } catch (e) { /* never break the page */ }
})("__HOST__");

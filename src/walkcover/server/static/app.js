/* walkcover serve: the page. Talks to the JSON API of walkcover.server.app (docs/serve.md).
 *
 * Every text from the server (names of districts, facilities, sites, scenarios; figures already
 * formatted by walkcover.presentation.figures) is put on the page with textContent or as DOM
 * nodes, never as HTML. The token of the URL goes with every request in a header.
 * `window.walkcoverApp` is the page's own API (tests and the curious use it).
 */
(function () {
  'use strict';
  var BOOT = window.WALKCOVER_BOOT || {labels: {}};
  var T = BOOT.labels;
  var token = new URLSearchParams(window.location.search).get('token') || '';
  var $ = function (id) { return document.getElementById(id); };

  var meta = null;        // /api/meta
  var current = null;     // the state of the open scenario
  var shownBands = '';    // the band string the homes are coloured with
  var homes = [];         // circle markers, in the server's home order
  var layers = {};        // Leaflet layer groups
  var adding = false;
  var busy = 0;
  var cmpLive = {};       // saved slug -> live id loaded for a comparison
  var readyResolve;
  var ready = new Promise(function (res) { readyResolve = res; });
  var app = {ready: ready, lastEditMs: null, edits: 0};

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function labelAll() {
    document.querySelectorAll('[data-label]').forEach(function (e) {
      var k = e.getAttribute('data-label');
      if (T[k]) e.textContent = T[k];
    });
  }

  function api(method, path, body) {
    var opts = {method: method, headers: {'X-Walkcover-Token': token}, cache: 'no-store'};
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (r) {
      return r.json().catch(function () { return {error: r.status + ' ' + r.statusText}; })
        .then(function (d) {
          if (!r.ok) {
            var e = new Error(d.error || String(r.status));
            e.status = r.status;
            throw e;
          }
          return d;
        });
    });
  }

  function status(text, spinning) {
    $('wc-status').textContent = text || '';
    $('wc-bar').hidden = !spinning;
  }

  function notice(text, isError) {
    var n = $('wc-notice');
    n.textContent = text || '';
    n.hidden = !text;
    n.className = isError ? 'wc-error' : '';
  }

  function fail(e) {
    notice((T.error || 'Error') + ': ' + (e && e.message ? e.message : String(e)), true);
    throw e;
  }

  function work(promise) {
    busy++;
    document.body.setAttribute('aria-busy', 'true');
    return promise.then(function (v) {
      busy--;
      if (!busy) document.body.removeAttribute('aria-busy');
      return v;
    }, function (e) {
      busy--;
      if (!busy) document.body.removeAttribute('aria-busy');
      throw e;
    });
  }

  /* ---- the map ---------------------------------------------------------------------- */

  var map = L.map('wc-map', {preferCanvas: true, zoomControl: true, attributionControl: false});
  var canvas = L.canvas({padding: 0.3});
  ['streets', 'outline', 'gaps', 'homes', 'facilities', 'snaps', 'sites'].forEach(function (k) {
    layers[k] = L.layerGroup().addTo(map);
  });
  map.setView([0, 0], 2);

  function bandColour(code) {
    var b = meta && meta.bands[Number(code)];
    return b ? b.colour : '#9e9e9e';
  }

  function tip(lines) {
    var d = el('div', null, 'wc-pop');
    lines.forEach(function (l, i) { d.appendChild(el(i ? 'span' : 'b', l)); if (i) d.appendChild(el('br')); });
    return d;
  }

  function drawStatic(s) {
    layers.outline.clearLayers();
    layers.streets.clearLayers();
    layers.gaps.clearLayers();
    layers.streets.addLayer(L.polyline(s.streets.map(function (line) {
      return line.map(function (p) { return [p[1], p[0]]; });
    }), {renderer: canvas, color: meta.colours.street, weight: 1, interactive: false}));
    layers.homes.clearLayers();
    var outline = L.geoJSON(s.outline, {style: {color: '#333', weight: 2, fill: false}, interactive: false});
    layers.outline.addLayer(outline);
    s.gaps.forEach(function (g) {
      var layer = L.geoJSON(g.geometry, {
        style: {color: meta.colours.gap, weight: 1.5, dashArray: '4 3', fillColor: meta.colours.gap, fillOpacity: 0.08}
      });
      layer.bindTooltip(tip([(T.gap || 'Gap') + ' #' + g.rank, (T.residents || 'Residents') + ': ' + g.residents_text]));
      layer.gapRank = g.rank;
      layers.gaps.addLayer(layer);
    });
    homes = [];
    var h = s.homes;
    for (var i = 0; i < h.lon.length; i++) {
      var m = L.circleMarker([h.lat[i], h.lon[i]], {
        renderer: canvas, radius: 4, weight: 1, color: '#ffffff', fillOpacity: 0.9,
        fillColor: bandColour(s.bands.charAt(i))
      });
      m.homeIndex = i;
      layers.homes.addLayer(m);
      homes.push(m);
    }
    shownBands = s.bands;
    map.fitBounds(outline.getBounds(), {padding: [10, 10]});
  }

  function applyBands(bands) {
    if (bands.length !== homes.length) return;
    for (var i = 0; i < bands.length; i++) {
      var c = bands.charAt(i);
      if (c !== shownBands.charAt(i)) homes[i].setStyle({fillColor: bandColour(c)});
    }
    shownBands = bands;
  }

  function facilityPopup(f) {
    var d = tip([f.name || (T.existing || 'Existing facility'), f.facility_id + (f.removed ? ' · ' + T.closed : '')]);
    if (!f.removed) {
      var b = el('button', T.close);
      b.type = 'button';
      b.className = 'wc-close-facility';
      b.addEventListener('click', function () { map.closePopup(); app.remove(f.facility_id).catch(function () {}); });
      d.appendChild(b);
    }
    return d;
  }

  function drawFacilities(list) {
    layers.facilities.clearLayers();
    list.forEach(function (f) {
      var m = L.circleMarker([f.lat, f.lon], {
        radius: 7, weight: 2.5,
        color: f.removed ? meta.colours.removed : meta.colours.facility,
        fillColor: f.removed ? meta.colours.removed : meta.colours.facility_fill,
        fillOpacity: f.removed ? 0.35 : 1, dashArray: f.removed ? '3 3' : null
      });
      m.facilityId = f.facility_id;
      m.bindPopup(function () { return facilityPopup(f); });
      layers.facilities.addLayer(m);
    });
  }

  function sitePopup(x) {
    var d = tip([x.name || x.site_id, (T.gained || 'Newly covered') + ': ' + x.gain_text]);
    if (x.reason) d.appendChild(el('span', x.reason, 'wc-reason'));
    var b = el('button', T.delete);
    b.type = 'button';
    b.addEventListener('click', function () { map.closePopup(); app.remove(x.site_id).catch(function () {}); });
    d.appendChild(b);
    return d;
  }

  function drawSites(list) {
    layers.sites.clearLayers();
    layers.snaps.clearLayers();
    list.forEach(function (x) {
      var icon = L.divIcon({className: 'wc-site-icon' + (x.reason ? ' wc-off' : ''), iconSize: [18, 18], iconAnchor: [9, 9]});
      var m = L.marker([x.lat, x.lon], {icon: icon, draggable: true, title: x.name || x.site_id, keyboard: true});
      m.siteId = x.site_id;
      m.bindPopup(function () { return sitePopup(x); });
      m.on('dragend', function () {
        var p = m.getLatLng();
        app.move(x.site_id, p.lng, p.lat).catch(function () {});
      });
      layers.sites.addLayer(m);
      var e = m.getElement();
      if (e) {
        e.style.background = meta.colours.site;
        e.setAttribute('data-site-id', x.site_id);
      }
      if (x.snap) {
        layers.snaps.addLayer(L.polyline([[x.lat, x.lon], [x.snap[1], x.snap[0]]], {
          color: meta.colours.site, weight: 2, dashArray: '3 3', interactive: false
        }));
        var s = L.circleMarker([x.snap[1], x.snap[0]], {radius: 3.5, color: meta.colours.site, weight: 2, fillColor: '#fff', fillOpacity: 1});
        s.bindTooltip(tip([T.snap || 'Snap point']));
        layers.snaps.addLayer(s);
      }
    });
  }

  /* ---- the side panel --------------------------------------------------------------- */

  function showFigures(f) {
    var t = f.text;
    $('wc-f-walk').textContent = t.residents_covered_pct;
    $('wc-f-walk-run').textContent = t.residents_covered_pct_run;
    $('wc-f-official').textContent = t.area_covered_euclid_pct;
    $('wc-f-official-run').textContent = t.area_covered_euclid_pct_run;
    $('wc-f-covered').textContent = t.residents_covered;
    $('wc-f-residents').textContent = t.residents;
    $('wc-f-gained').textContent = '+' + t.residents_newly_covered;
    $('wc-f-target').textContent = t.target_pct;
    $('wc-f-meets').textContent = t.meets_target;
    $('wc-f-facilities').textContent = f.facilities_in_reach + ' (+' + f.sites_added + ' ' + T.added_count + ', −' + f.facilities_removed + ' ' + T.closed_count + ')';
  }

  function showSites(list) {
    var ol = $('wc-site-list');
    ol.textContent = '';
    if (!list.length) ol.appendChild(el('li', T.no_sites, 'wc-empty'));
    list.forEach(function (x) {
      var li = el('li');
      li.setAttribute('data-site-id', x.site_id);
      li.appendChild(el('span', x.name || x.site_id, 'wc-site-name'));
      li.appendChild(el('span', '+' + x.gain_text, 'wc-gain'));
      var b = el('button', T.delete);
      b.type = 'button';
      b.className = 'wc-delete';
      b.addEventListener('click', function () { app.remove(x.site_id).catch(function () {}); });
      li.appendChild(b);
      if (x.reason) li.appendChild(el('span', x.reason, 'wc-reason'));
      ol.appendChild(li);
    });
  }

  function show(s, full) {
    current = s;
    if (full) drawStatic(s); else applyBands(s.bands);
    showFigures(s.figures);
    drawFacilities(s.facilities);
    drawSites(s.sites);
    showSites(s.sites);
    $('wc-undo').disabled = !s.can_undo;
    if (document.activeElement !== $('wc-name')) $('wc-name').value = s.name;
    $('wc-district').value = s.district_id;
    $('wc-standard').value = s.standard_id;
    notice(s.notice, false);
    fillCompare();
    return s;
  }

  function legend() {
    var ul = document.querySelector('#wc-legend ul');
    ul.textContent = '';
    meta.bands.forEach(function (b) {
      var li = el('li');
      var sw = el('span', null, 'wc-swatch');
      sw.style.background = b.colour;
      li.appendChild(sw);
      li.appendChild(el('span', b.label));
      ul.appendChild(li);
    });
    [[meta.colours.facility_fill, T.existing, meta.colours.facility],
     [meta.colours.site, T.sites, '#fff'],
     [meta.colours.gap, T.gaps, meta.colours.gap]].forEach(function (r) {
      var li = el('li');
      var sw = el('span', null, 'wc-swatch');
      sw.style.background = r[0];
      sw.style.borderColor = r[2];
      li.appendChild(sw);
      li.appendChild(el('span', r[1]));
      ul.appendChild(li);
    });
  }

  function fillPickers() {
    var d = $('wc-district'), s = $('wc-standard');
    d.textContent = '';
    s.textContent = '';
    meta.districts.forEach(function (x) {
      var o = el('option', x.name + (x.name_en ? ' · ' + x.name_en : ''));
      o.value = x.id;
      d.appendChild(o);
    });
    meta.standards.forEach(function (x) {
      var o = el('option', x.name_zh + ' · ' + x.name + ' (' + x.threshold_m + ' m)');
      o.value = x.id;
      s.appendChild(o);
    });
    $('wc-title').textContent = meta.city.name + ' · ' + meta.city.name_en;
    document.title = 'walkcover · ' + meta.city.name;
  }

  var savedList = [];

  function refreshSaved() {
    return api('GET', '/api/saved').then(function (d) {
      savedList = d.saved;
      var sel = $('wc-saved');
      sel.textContent = '';
      savedList.forEach(function (x) {
        var o = el('option', x.name + ' — ' + x.district_id + ' / ' + x.standard_id + ' (' + x.edits + ')');
        o.value = x.slug;
        sel.appendChild(o);
      });
      $('wc-load').disabled = !savedList.length;
      fillCompare();
      return savedList;
    });
  }

  function fillCompare() {
    ['wc-cmp-a', 'wc-cmp-b'].forEach(function (id, n) {
      var sel = $(id), keep = sel.value;
      sel.textContent = '';
      var o = el('option', T.current + (current ? ': ' + current.name : ''));
      o.value = 'live:';
      sel.appendChild(o);
      savedList.forEach(function (x) {
        var p = el('option', x.name);
        p.value = 'saved:' + x.slug;
        sel.appendChild(p);
      });
      if (keep) sel.value = keep;
      if (!sel.value) sel.selectedIndex = Math.min(n, sel.options.length - 1);
    });
  }

  function liveIdFor(choice) {
    if (choice === 'live:' || !choice) return Promise.resolve(current.id);
    var slug = choice.slice(6);
    if (cmpLive[slug]) return Promise.resolve(cmpLive[slug]);
    return api('POST', '/api/saved/load', {slug: slug}).then(function (s) { cmpLive[slug] = s.id; return s.id; });
  }

  function compare() {
    var a = $('wc-cmp-a').value, b = $('wc-cmp-b').value;
    return work(Promise.all([liveIdFor(a), liveIdFor(b)]).then(function (ids) {
      return api('POST', '/api/compare', {a: ids[0], b: ids[1]});
    }).then(function (c) {
      var table = $('wc-cmp-table'), body = table.querySelector('tbody');
      $('wc-cmp-ha').textContent = 'A: ' + c.a.name;
      $('wc-cmp-hb').textContent = 'B: ' + c.b.name;
      body.textContent = '';
      var rows = [
        [T.walk, 'residents_covered_pct'], [T.official, 'area_covered_euclid_pct'],
        [T.covered, 'residents_covered'], [T.gained, 'residents_newly_covered']
      ];
      rows.forEach(function (r) {
        var tr = el('tr');
        tr.appendChild(el('th', r[0]));
        tr.appendChild(el('td', c.a.figures.text[r[1]]));
        tr.appendChild(el('td', c.b.figures.text[r[1]]));
        body.appendChild(tr);
      });
      var tr = el('tr');
      tr.appendChild(el('th', T.sites));
      [c.a, c.b].forEach(function (x) {
        var td = el('td');
        x.sites.forEach(function (s) { td.appendChild(el('div', (s.name || s.site_id) + ' +' + s.gain_text)); });
        tr.appendChild(td);
      });
      body.appendChild(tr);
      table.hidden = false;
      app.lastCompare = c;
      return c;
    })).catch(fail);
  }

  /* ---- actions ---------------------------------------------------------------------- */

  function edit(body) {
    if (!current) return Promise.reject(new Error('no scenario open'));
    var t0 = performance.now();
    return work(api('POST', '/api/scenarios/' + encodeURIComponent(current.id) + '/edits', body))
      .then(function (s) {
        show(s, false);
        app.lastEditMs = performance.now() - t0;
        app.edits++;
        return s;
      }).catch(function (e) {
        if (current) show(current, false);  // a refused drag: the marker goes back
        return fail(e);
      });
  }

  app.add = function (lon, lat, name) { return edit({op: 'add', lon: lon, lat: lat, name: name || ''}); };
  app.move = function (id, lon, lat) { return edit({op: 'move', site_id: id, lon: lon, lat: lat}); };
  app.remove = function (id) { return edit({op: 'remove', id: id}); };
  app.undo = function () { return edit({op: 'undo'}); };
  app.state = function () { return current; };
  app.map = map;
  app.homeColour = function (i) { return homes[i] && homes[i].options.fillColor; };

  app.open = function (did, sid) {
    status(T.loading_district, true);
    return work(api('POST', '/api/scenarios', {district_id: did, standard_id: sid}))
      .then(function (s) { status('', false); cmpLive = {}; return show(s, true); })
      .catch(function (e) { status('', false); return fail(e); });
  };

  app.suggest = function (k) {
    status(T.suggest + '…', true);
    return work(api('POST', '/api/scenarios/' + encodeURIComponent(current.id) + '/suggest', {k: k}))
      .then(function (s) { status('', false); return show(s, false); })
      .catch(function (e) { status('', false); return fail(e); });
  };

  app.save = function (name, overwrite) {
    return work(api('POST', '/api/scenarios/' + encodeURIComponent(current.id) + '/save', {name: name, overwrite: !!overwrite}))
      .then(function (d) { show(d.state, false); notice(T.save + ': ' + d.name, false); return refreshSaved().then(function () { return d; }); });
  };

  app.load = function (slug) {
    status(T.loading_district, true);
    return work(api('POST', '/api/saved/load', {slug: slug}))
      .then(function (s) { status('', false); return show(s, true); })
      .catch(function (e) { status('', false); return fail(e); });
  };

  app.compare = compare;

  function setAdding(on) {
    adding = on;
    $('wc-add').setAttribute('aria-pressed', on ? 'true' : 'false');
    map.getContainer().classList.toggle('wc-adding', on);
    if (on) status(T.adding, false); else if ($('wc-status').textContent === T.adding) status('', false);
  }

  map.on('click', function (e) {
    if (!adding) return;
    setAdding(false);
    app.add(e.latlng.lng, e.latlng.lat).catch(function () {});
  });

  $('wc-add').addEventListener('click', function () { setAdding(!adding); });
  $('wc-undo').addEventListener('click', function () { app.undo().catch(function () {}); });
  $('wc-suggest').addEventListener('click', function () {
    app.suggest(parseInt($('wc-k').value, 10)).catch(function () {});
  });
  $('wc-open').addEventListener('click', function () {
    app.open($('wc-district').value, $('wc-standard').value).catch(function () {});
  });
  $('wc-save-btn').addEventListener('click', function () {
    var name = $('wc-name').value;
    app.save(name, false).catch(function (e) {
      if (e.status === 409 && window.confirm(T.replace)) return app.save(name, true);
      throw e;
    }).catch(fail).catch(function () {});
  });
  $('wc-load').addEventListener('click', function () {
    if ($('wc-saved').value) app.load($('wc-saved').value).catch(function () {});
  });
  $('wc-cmp-btn').addEventListener('click', function () { compare().catch(function () {}); });

  /* ---- start: wait for the run, then open the first district and standard ------------ */

  function waitReady() {
    return api('GET', '/api/status').then(function (s) {
      if (s.state === 'ready') return true;
      if (s.state === 'failed') { status('', false); notice(s.message, true); return false; }
      status(T.loading + ': ' + (s.step || '…') + ' (' + s.seconds + ' s)', true);
      return new Promise(function (res) { setTimeout(res, 400); }).then(waitReady);
    });
  }

  labelAll();
  window.walkcoverApp = app;
  if (!token) { notice(T.no_token, true); return; }
  waitReady().then(function (ok) {
    if (!ok) return null;
    return api('GET', '/api/meta').then(function (m) {
      meta = m;
      fillPickers();
      legend();
      return refreshSaved();
    }).then(function () {
      return app.open(meta.districts[0].id, meta.standards[0].id);
    }).then(function () { readyResolve(true); });
  }).catch(function (e) { notice(String(e && e.message || e), true); });
})();

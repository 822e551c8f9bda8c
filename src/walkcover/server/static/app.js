/* walkcover serve: the page. Talks to the JSON API of walkcover.server.app (docs/serve.md).
 *
 * Every text from the server (names of districts, facilities, sites, scenarios; figures already
 * formatted by walkcover.presentation.figures) is put on the page with textContent or as DOM
 * nodes, never as HTML. The token of the URL goes with every request in a header.
 *
 * The homes, streets and gaps arrive packed (walkcover.presentation.web_map.pack_geometry) and
 * are decoded by the district map's own script (walkcover.unpack, walkcover.geojson and
 * L.WalkcoverLines of _assets/walkcover/district_map.js, inlined before this one). The homes are
 * drawn on the canvas, a dot each, coloured by a band code per home; an edit's answer carries
 * only the homes whose band changed since the version shown (band_changes), never geometry.
 * The page asks for its scenario's version every few seconds and takes another tab's edits.
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
  var codes = new Uint8Array(0);  // each home's band code (0 within … 3 unknown), as drawn
  var shownVersion = -1;  // the version of the scenario `codes` show
  var homes = null;       // the homes layer (HomeDots)
  var facilities = {};    // facility_id -> {f: facility, marker: circle marker}
  var siteLayers = {};    // site_id -> {key, x: its state, layers: [[group, layer]]}
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

  /* three canvases, bottom to top: the streets, the homes (redrawn alone after an edit), and
   * everything that answers the mouse (gaps, facilities, snap lines) */
  var canvas = L.canvas({padding: 0.3});
  var homeCanvas = L.canvas({padding: 0.1});  /* fewer pixels to fill after an edit */
  var topCanvas = L.canvas({padding: 0.3});
  var map = L.map('wc-map', {preferCanvas: true, renderer: topCanvas, zoomControl: true, attributionControl: false});
  [canvas, homeCanvas, topCanvas].forEach(function (r) { r.addTo(map); });
  ['streets', 'outline', 'gaps', 'homes', 'facilities', 'snaps', 'sites'].forEach(function (k) {
    layers[k] = L.layerGroup().addTo(map);
  });
  map.setView([0, 0], 2);

  function bandColour(code) {
    var b = meta && meta.bands[Number(code)];
    return b ? b.colour : '#9e9e9e';
  }

  /* Every home as a dot on the canvas renderer, straight from its packed position (no object per
   * home): a path per band colour, only the homes in view. Deaf to the mouse (clicks add sites). */
  var HomeDots = L.Path.extend({
    options: {interactive: false, stroke: false, fill: true, fillOpacity: 0.9, radius: 3.5},

    initialize: function (packed, options) {
      L.setOptions(this, options);
      var g = this._g = walkcover.unpack(packed);
      var lo = Infinity, hi = -Infinity, bottom = Infinity, top = -Infinity;
      for (var f = 0; f < g.n; f++) {
        if (g.x[f] < lo) lo = g.x[f]; if (g.x[f] > hi) hi = g.x[f];
        if (g.y[f] < bottom) bottom = g.y[f]; if (g.y[f] > top) top = g.y[f];
      }
      this._extent = [lo, bottom, hi, top];
    },

    redrawCodes: function () { return this.redraw(); },

    _project: function () {
      var g = this._g;
      L.extend(this, walkcover.toPixels(this._map, g));  /* the district map's projection */
      var e = this._extent, r = this.options.radius + 1;
      if (!g.n) { this._pxBounds = L.bounds([0, 0], [0, 0]); return; }
      this._pxBounds = L.bounds(
        [this._ax * e[0] + this._bx - r, this._ay * e[3] + this._by - r],
        [this._ax * e[2] + this._bx + r, this._ay * e[1] + this._by + r]);
    },

    _update: function () {},
    _empty: function () { return !this._g.n; },
    _containsPoint: function () { return false; },

    _updatePath: function () {
      var ctx = this._renderer._ctx, g = this._g;
      var view = this._renderer._redrawBounds || this._renderer._bounds;
      if (!ctx || !view || !g.n || codes.length !== g.n) return;
      var ax = this._ax, bx = this._bx, ay = this._ay, by = this._by, r = this.options.radius;
      var x0 = view.min.x - r, x1 = view.max.x + r, y0 = view.min.y - r, y1 = view.max.y + r;
      /* the homes in view, a dot each, one path per band (the district map's painter) */
      walkcover.fillByColour(ctx, g.n, [0, 1, 2, 3].map(bandColour), function (f) {
        var x = ax * g.x[f] + bx, y = ay * g.y[f] + by;
        return x < x0 || x > x1 || y < y0 || y > y1 ? -1 : codes[f] & 3;
      }, function (ctx, f) {
        var x = ax * g.x[f] + bx, y = ay * g.y[f] + by;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      }, {opacity: this.options.fillOpacity});
    }
  });

  /* the band codes of a state: every home's (`bands`), or those changed since the version shown
   * (`band_changes`); false when the changes are since another version than the one shown */
  function takeBands(s) {
    var i;
    if (s.version === shownVersion) return true;  /* shown already */
    if (typeof s.bands === 'string') {
      codes = new Uint8Array(s.bands.length);
      for (i = 0; i < s.bands.length; i++) codes[i] = s.bands.charCodeAt(i) - 48;
    } else if (s.band_changes && s.band_changes.since === shownVersion) {
      var at = s.band_changes.homes, b = s.band_changes.bands;
      for (i = 0; i < at.length; i++) codes[at[i]] = b.charCodeAt(i) - 48;
      shownVersion = s.version;
      if (homes && at.length) homes.redrawCodes();  /* no home changed: nothing to draw */
      return true;
    } else {
      return false;
    }
    shownVersion = s.version;
    if (homes) homes.redrawCodes();
    return true;
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
    layers.homes.clearLayers();
    layers.streets.addLayer(new L.WalkcoverLines(s.streets, {
      renderer: canvas, color: meta.colours.street, weight: 1, opacity: 0.7
    }));
    var outline = L.geoJSON(s.outline, {style: {color: '#333', weight: 2, fill: false}, interactive: false});
    layers.outline.addLayer(outline);
    L.geoJSON(walkcover.geojson(s.gaps), {
      style: {color: meta.colours.gap, weight: 1.5, dashArray: '4 3', fillColor: meta.colours.gap, fillOpacity: 0.08},
      onEachFeature: function (feature, layer) {
        var p = feature.properties;
        layer.bindTooltip(tip([(T.gap || 'Gap') + ' #' + p.rank, (T.residents || 'Residents') + ': ' + p.residents_text]));
        layer.gapRank = p.rank;
        layers.gaps.addLayer(layer);
      }
    });
    homes = new HomeDots(s.homes.geometry, {renderer: homeCanvas});
    shownVersion = -1;
    takeBands(s);
    layers.homes.addLayer(homes);
    drawFacilities(s.facilities);
    layers.sites.clearLayers();
    layers.snaps.clearLayers();
    siteLayers = {};
    // at once, not animated: the page is ready (aria-busy gone) only once the map stands still,
    // so a click right after opening lands where it was aimed
    map.fitBounds(outline.getBounds(), {padding: [10, 10], animate: false});
  }

  function facilityStyle(f) {
    return {
      color: f.removed ? meta.colours.removed : meta.colours.facility,
      fillColor: f.removed ? meta.colours.removed : meta.colours.facility_fill,
      fillOpacity: f.removed ? 0.35 : 1, dashArray: f.removed ? '3 3' : null
    };
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

  /* the facilities, drawn once per scenario opened; an edit only restyles those it closes or
   * opens again (`markRemoved`) */
  function drawFacilities(list) {
    layers.facilities.clearLayers();
    facilities = {};
    list.forEach(function (f) {
      var m = L.circleMarker([f.lat, f.lon], L.extend({radius: 7, weight: 2.5}, facilityStyle(f)));
      m.facilityId = f.facility_id;
      m.bindPopup(function () { return facilityPopup(f); });
      layers.facilities.addLayer(m);
      facilities[f.facility_id] = {f: f, marker: m};
    });
  }

  function markRemoved(removed) {
    var closed = {};
    removed.forEach(function (id) { closed[id] = true; });
    Object.keys(facilities).forEach(function (id) {
      var x = facilities[id], now = !!closed[id];
      if (x.f.removed !== now) {
        x.f.removed = now;
        x.marker.setStyle(facilityStyle(x.f));
      }
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

  /* a site's marker and snap line; `entry.x` is its latest state (the popup reads it) */
  function addSite(x, key) {
    var entry = {key: key, x: x, layers: []};
    var icon = L.divIcon({className: 'wc-site-icon' + (x.reason ? ' wc-off' : ''), iconSize: [18, 18], iconAnchor: [9, 9]});
    var m = L.marker([x.lat, x.lon], {icon: icon, draggable: true, title: x.name || x.site_id, keyboard: true});
    m.siteId = x.site_id;
    m.bindPopup(function () { return sitePopup(entry.x); });
    m.on('dragend', function () {
      var p = m.getLatLng();
      app.move(x.site_id, p.lng, p.lat).catch(function () {});
    });
    layers.sites.addLayer(m);
    entry.layers.push([layers.sites, m]);
    var e = m.getElement();
    if (e) {
      e.style.background = meta.colours.site;
      e.setAttribute('data-site-id', x.site_id);
    }
    if (x.snap) {
      var line = L.polyline([[x.lat, x.lon], [x.snap[1], x.snap[0]]], {
        color: meta.colours.site, weight: 2, dashArray: '3 3', interactive: false
      });
      var s = L.circleMarker([x.snap[1], x.snap[0]], {radius: 3.5, color: meta.colours.site, weight: 2, fillColor: '#fff', fillOpacity: 1});
      s.bindTooltip(tip([T.snap || 'Snap point']));
      layers.snaps.addLayer(line);
      layers.snaps.addLayer(s);
      entry.layers.push([layers.snaps, line], [layers.snaps, s]);
    }
    return entry;
  }

  /* the sites: only those added, moved or changed are drawn again (a canvas redraws the region
   * of what changed, with every facility in it); `force` draws every one again (a refused drag
   * puts its marker back) */
  function drawSites(list, force) {
    var keep = {};
    list.forEach(function (x) {
      var key = JSON.stringify([x.lon, x.lat, x.snap, x.reason, x.name]);
      var old = siteLayers[x.site_id];
      keep[x.site_id] = true;
      if (old && old.key === key && !force) { old.x = x; return; }
      if (old) old.layers.forEach(function (g) { g[0].removeLayer(g[1]); });
      siteLayers[x.site_id] = addSite(x, key);
    });
    Object.keys(siteLayers).forEach(function (id) {
      if (keep[id]) return;
      siteLayers[id].layers.forEach(function (g) { g[0].removeLayer(g[1]); });
      delete siteLayers[id];
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

  function show(s, full, force) {
    if (full) {
      drawStatic(s);
      setHash(s.id);
    } else if (!takeBands(s)) {
      /* changes since another version than the one shown: every home's band instead */
      var id = s.id;
      api('GET', '/api/scenarios/' + encodeURIComponent(id)).then(function (again) {
        if (current && current.id === id && again.version >= current.version) show(again, false);
      }).catch(function () {});
    }
    current = s;
    showFigures(s.figures);
    markRemoved(s.removed);
    drawSites(s.sites, force);
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
        // a file walkcover refuses to read (a link, too large, tampered): listed, never opened
        if (x.unreadable) {
          o.textContent = x.slug + ' — unreadable · 无法读取';
          o.disabled = true;
          o.title = x.unreadable;
        }
        // saved from Python with several standards: listed, opened there (the page edits one)
        else if (x.standards && x.standards.length > 1) {
          o.disabled = true;
          o.title = 'several standards: open it in Python (Results.load_scenario) · 多项标准：请在 Python 中打开';
        }
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
        if (x.unreadable || (x.standards && x.standards.length > 1)) return;
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
    body.since = shownVersion;
    return work(api('POST', '/api/scenarios/' + encodeURIComponent(current.id) + '/edits', body))
      .then(function (s) {
        show(s, false);
        app.lastEditMs = performance.now() - t0;
        app.edits++;
        return s;
      }).catch(function (e) {
        if (current) show(current, false, true);  // a refused drag: the marker goes back
        return fail(e);
      });
  }

  app.add = function (lon, lat, name) { return edit({op: 'add', lon: lon, lat: lat, name: name || ''}); };
  app.move = function (id, lon, lat) { return edit({op: 'move', site_id: id, lon: lon, lat: lat}); };
  app.remove = function (id) { return edit({op: 'remove', id: id}); };
  app.undo = function () { return edit({op: 'undo'}); };
  app.state = function () { return current; };
  app.map = map;
  app.homeColour = function (i) { return i < codes.length ? bandColour(codes[i]) : undefined; };
  app.bands = function () {
    var out = [];
    for (var i = 0; i < codes.length; i++) out.push(String(codes[i]));
    return out.join('');
  };
  app.shownVersion = function () { return shownVersion; };

  /* the last district or scenario asked for is the one shown: an answer to an earlier request
   * that arrives later (a slow district, a second click) is let go */
  var asked = 0;
  app.open = function (did, sid) {
    var mine = ++asked;
    status(T.loading_district, true);
    return work(api('POST', '/api/scenarios', {district_id: did, standard_id: sid}))
      .then(function (s) {
        if (mine !== asked) return null;
        status('', false); cmpLive = {}; return show(s, true);
      })
      .catch(function (e) { if (mine !== asked) return null; status('', false); return fail(e); });
  };

  app.suggest = function (k) {
    status(T.suggest + '…', true);
    return work(api('POST', '/api/scenarios/' + encodeURIComponent(current.id) + '/suggest', {k: k, since: shownVersion}))
      .then(function (s) { status('', false); return show(s, false); })
      .catch(function (e) { status('', false); return fail(e); });
  };

  app.save = function (name, overwrite) {
    return work(api('POST', '/api/scenarios/' + encodeURIComponent(current.id) + '/save', {name: name, overwrite: !!overwrite, since: shownVersion}))
      .then(function (d) { show(d.state, false); notice(T.save + ': ' + d.name, false); return refreshSaved().then(function () { return d; }); });
  };

  app.load = function (slug) {
    var mine = ++asked;
    status(T.loading_district, true);
    return work(api('POST', '/api/saved/load', {slug: slug}))
      .then(function (s) { if (mine !== asked) return null; status('', false); return show(s, true); })
      .catch(function (e) { if (mine !== asked) return null; status('', false); return fail(e); });
  };

  app.compare = compare;

  /* the scenario's sites as its district's proposed sites in the server's --out, for
   * `walkcover report`; the answer says the command to run */
  app.exportReport = function (overwrite) {
    status(T.export + '…', true);
    return work(api('POST', '/api/scenarios/' + encodeURIComponent(current.id) + '/export', {overwrite: !!overwrite}))
      .then(function (d) {
        status('', false);
        notice(T.exported + ': ' + d.command, false);
        app.lastExport = d;
        return d;
      }, function (e) { status('', false); throw e; });
  };

  /* another tab's edits: the version is asked for every few seconds while nothing is pending */
  function poll() {
    if (!current || busy || document.hidden) return Promise.resolve(null);
    var id = current.id;
    return api('GET', '/api/scenarios/' + encodeURIComponent(id) + '/version').then(function (v) {
      if (!current || current.id !== id || busy || v.version === current.version) return null;
      return api('GET', '/api/scenarios/' + encodeURIComponent(id) + '?since=' + shownVersion)
        .then(function (s) {
          if (!current || current.id !== id || busy || s.version <= current.version) return null;
          show(s, false);
          notice(T.synced, false);
          app.synced = (app.synced || 0) + 1;
          return s;
        });
    }, function (e) {
      if (e.status === 404 && current && current.id === id) notice(T.gone, true);
      return null;
    });
  }
  app.poll = poll;

  /* the address names the scenario shown (#scenario=<id>): opened in another tab, it shows the
   * same live scenario, and each tab sees the other's edits */
  function setHash(id) {
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, '', window.location.pathname + window.location.search + '#scenario=' + encodeURIComponent(id));
    }
  }

  function hashScenario() {
    var m = /[#&]scenario=([0-9a-f]+)/.exec(window.location.hash);
    return m ? m[1] : null;
  }

  app.join = function (id) {
    status(T.loading_district, true);
    return work(api('GET', '/api/scenarios/' + encodeURIComponent(id) + '?full=1'))
      .then(function (s) { status('', false); return show(s, true); })
      .catch(function (e) { status('', false); throw e; });
  };

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
  $('wc-export').addEventListener('click', function () {
    app.exportReport(false).catch(function (e) {
      if (e.status === 409 && window.confirm(T.replace_export)) return app.exportReport(true);
      throw e;
    }).catch(fail).catch(function () {});
  });

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
      var joined = hashScenario();
      var first = function () { return app.open(meta.districts[0].id, meta.standards[0].id); };
      return joined ? app.join(joined).catch(function (e) {
        return first().then(function () { notice(T.gone + ': ' + e.message, true); });
      }) : first();
    }).then(function () {
      window.setInterval(function () { poll().catch(function () {}); }, 1000 * (BOOT.poll_s || 2));
      readyResolve(true);
    });
  }).catch(function (e) { notice(String(e && e.message || e), true); });
})();

/* walkcover's district map: packed geometry and the homes layer.
 *
 * Geometry travels packed (walkcover.presentation.web_map.pack_geometry): Web Mercator metres
 * quantised to a step, as zigzag LEB128 varints of the differences between consecutive vertices,
 * base64-encoded; the counts of parts per feature, rings per part and vertices per ring likewise.
 * `walkcover.geojson` unpacks it into GeoJSON for L.geoJson; `L.WalkcoverHomes` draws every home
 * once on the map's canvas renderer and recolours them when the planner picks another standard,
 * or a view after the standards (a standard's capacity per 1,000 residents against its norm, a
 * life circle's completeness: a class per home, `data.views`).
 * Text from the data is only ever put on the page with textContent (walkcoverTable).
 */
var walkcover = (function () {
  'use strict';
  var R = 6378137;

  function bytes(b64) {
    var s = atob(b64), n = s.length, u = new Uint8Array(n);
    for (var i = 0; i < n; i++) u[i] = s.charCodeAt(i);
    return u;
  }

  /* unsigned LEB128 varints (exact up to 2^53) */
  function varints(b64) {
    var u = bytes(b64), n = 0, i;
    for (i = 0; i < u.length; i++) if (!(u[i] & 128)) n++;
    var out = new Float64Array(n), v = 0, m = 1, k = 0;
    for (i = 0; i < u.length; i++) {
      var b = u[i];
      v += (b & 127) * m;
      if (b & 128) { m *= 128; } else { out[k++] = v; v = 0; m = 1; }
    }
    return out;
  }

  function unzig(z) { return z % 2 ? -(z + 1) / 2 : z / 2; }

  /* absolute quantised vertices and the feature → part → ring → vertex structure */
  function unpack(p) {
    var d = varints(p.xy), n = d.length / 2, x = new Float64Array(n), y = new Float64Array(n);
    var cx = 0, cy = 0;
    for (var i = 0; i < n; i++) {
      cx += unzig(d[2 * i]); cy += unzig(d[2 * i + 1]);
      x[i] = cx; y[i] = cy;
    }
    var g = {kind: p.kind, x: x, y: y, x0: p.origin[0], y0: p.origin[1], step: p.step};
    if (p.kind === 'point') { g.n = n; return g; }
    g.parts = varints(p.parts); g.rings = varints(p.rings); g.verts = varints(p.verts);
    g.n = g.parts.length;
    /* offsets: first part of each feature, first ring of each part, first vertex of each ring */
    g.partStart = new Uint32Array(g.n + 1);
    for (i = 0; i < g.n; i++) g.partStart[i + 1] = g.partStart[i] + g.parts[i];
    g.ringStart = new Uint32Array(g.rings.length + 1);
    for (i = 0; i < g.rings.length; i++) g.ringStart[i + 1] = g.ringStart[i] + g.rings[i];
    g.vertStart = new Uint32Array(g.verts.length + 1);
    for (i = 0; i < g.verts.length; i++) g.vertStart[i + 1] = g.vertStart[i] + g.verts[i];
    return g;
  }

  function lonlat(g, i) {
    var X = g.x0 + g.x[i] * g.step, Y = g.y0 + g.y[i] * g.step;
    return [X / R * 180 / Math.PI, (2 * Math.atan(Math.exp(Y / R)) - Math.PI / 2) * 180 / Math.PI];
  }

  /* a packed layer as a GeoJSON FeatureCollection; `p.props` holds a column per property */
  function geojson(p) {
    var g = unpack(p), feats = [], cols = Object.keys(p.props || {});
    for (var f = 0; f < g.n; f++) {
      var geom;
      if (g.kind === 'point') {
        geom = {type: 'Point', coordinates: lonlat(g, f)};
      } else {
        var parts = [];
        for (var q = g.partStart[f]; q < g.partStart[f + 1]; q++) {
          var rings = [];
          for (var r = g.ringStart[q]; r < g.ringStart[q + 1]; r++) {
            var ring = [];
            for (var v = g.vertStart[r]; v < g.vertStart[r + 1]; v++) ring.push(lonlat(g, v));
            if (g.kind === 'polygon' && ring.length) ring.push(ring[0]);
            rings.push(ring);
          }
          parts.push(g.kind === 'polygon' ? rings : rings[0]);
        }
        var multi = parts.length !== 1;
        geom = g.kind === 'polygon'
          ? {type: multi ? 'MultiPolygon' : 'Polygon', coordinates: multi ? parts : parts[0]}
          : {type: multi ? 'MultiLineString' : 'LineString', coordinates: multi ? parts : parts[0]};
      }
      var props = {};
      for (var c = 0; c < cols.length; c++) props[cols[c]] = p.props[cols[c]][f];
      feats.push({type: 'Feature', properties: props, geometry: geom});
    }
    return {type: 'FeatureCollection', features: feats};
  }

  /* a table of strings and one index into it per item (`DistrictMap` packs them so) */
  function lookup(col) { var idx = varints(col.index); return function (i) { return col.table[idx[i]]; }; }

  /* an L.geoJson filled the first time it is shown: a standard's layers cost nothing until picked */
  function lazy(packed, options) {
    var layer = L.geoJson(null, options);
    layer.walkcoverFill = function () {
      if (packed) { var p = packed; packed = null; layer.addData(geojson(p)); }
      return layer;
    };
    layer.on('add', layer.walkcoverFill);
    return layer;
  }

  /* each feature's box of an unpacked geometry (quantised units): [minx, miny, maxx, maxy] */
  function boxes(g) {
    var n = g.n, box = [new Float64Array(n), new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    for (var f = 0; f < n; f++) {
      var v0 = g.vertStart[g.ringStart[g.partStart[f]]], v1 = g.vertStart[g.ringStart[g.partStart[f + 1]]];
      var a = Infinity, b = Infinity, c = -Infinity, e = -Infinity;
      for (var v = v0; v < v1; v++) {
        if (g.x[v] < a) a = g.x[v]; if (g.x[v] > c) c = g.x[v];
        if (g.y[v] < b) b = g.y[v]; if (g.y[v] > e) e = g.y[v];
      }
      box[0][f] = a; box[1][f] = b; box[2][f] = c; box[3][f] = e;
    }
    return box;
  }

  /* The affine map from a packed geometry's grid (x0, y0, step: the quantised units) to the
   * map's layer pixels at its zoom: pixel x = _ax · x + _bx, y = _ay · y + _by. */
  function toPixels(map, g) {
    var crs = map.options.crs, s = crs.scale(map.getZoom()), o = map.getPixelOrigin();
    var t = crs.transformation;
    var p0 = t.transform(L.point(g.x0, g.y0), s);
    var p1 = t.transform(L.point(g.x0 + g.step, g.y0 + g.step), s);
    return {_ax: p1.x - p0.x, _bx: p0.x - o.x, _ay: p1.y - p0.y, _by: p0.y - o.y};
  }

  /* Paint n items on a canvas, one path and one fill per colour (a path per item would cost
   * thousands of fills): colourOf(f) is the item's colour index, or -1 where it is out of view;
   * trace(ctx, f) adds the item to the path. Used by the district map's homes and the app's. */
  function fillByColour(ctx, n, colours, colourOf, trace, options) {
    var byColour = colours.map(function () { return []; }), f, c;
    for (f = 0; f < n; f++) {
      c = colourOf(f);
      if (c >= 0) byColour[c].push(f);
    }
    ctx.save();
    ctx.globalAlpha = options.opacity;
    for (c = 0; c < colours.length; c++) {
      var list = byColour[c];
      if (!list.length) continue;
      ctx.beginPath();
      for (var i = 0; i < list.length; i++) trace(ctx, list[i]);
      ctx.fillStyle = colours[c];
      ctx.fill(options.rule || 'nonzero');
    }
    ctx.restore();
  }

  return {bytes: bytes, varints: varints, unpack: unpack, geojson: geojson, lookup: lookup, lazy: lazy,
          boxes: boxes, toPixels: toPixels, fillByColour: fillByColour, front: {}, legend: null, homes: null, current: 0};
})();

/* Every home of the district, drawn once on the canvas renderer, coloured by the band of the
 * standard shown (or of its "after proposed sites" walk, where that overlay is ticked). A home too
 * small to see at the zoom is drawn as a small square, so every home shows at the opening zoom. */
L.WalkcoverHomes = L.Path.extend({
  options: {interactive: true, stroke: false, fill: true, fillOpacity: 0.85, minPx: 3},

  initialize: function (data, options) {
    L.setOptions(this, options);
    this._d = data;
    var g = this._g = walkcover.unpack(data.geometry);
    this._std = data.initial;
    this._after = {};
    this._hit = -1;
    /* each home's box (quantised units) and a grid of them for finding the one under the mouse */
    var n = g.n, f, box = this._box = walkcover.boxes(g);
    var minx = box[0], miny = box[1], maxx = box[2], maxy = box[3];
    this._cell = Math.max(1, Math.round(100 / g.step)); /* 100 m */
    var grid = this._grid = new Map();
    for (f = 0; f < n; f++) {
      for (var i = Math.floor(minx[f] / this._cell); i <= Math.floor(maxx[f] / this._cell); i++) {
        for (var j = Math.floor(miny[f] / this._cell); j <= Math.floor(maxy[f] / this._cell); j++) {
          var key = i * 1048576 + j, list = grid.get(key);
          if (!list) grid.set(key, list = []);
          list.push(f);
        }
      }
    }
    this._codes = data.standards.map(function (s) { return walkcover.bytes(s.codes); });
    this._afterCodes = {};
    for (var k in data.after) this._afterCodes[k] = walkcover.bytes(data.after[k].codes);
    this._dist = data.standards.map(function (s) { return walkcover.lookup(s.walk); });
    this._afterDist = {};
    for (k in data.after) this._afterDist[k] = walkcover.lookup(data.after[k].walk);
    this._context = data.standards.map(function (s) { return s.context ? walkcover.lookup(s.context) : null; });
    /* a standard's choice (2nd, 3rd nearest, how many within) and capacity per 1,000, as text */
    this._choice = data.standards.map(function (s) {
      return s.choice ? {second: walkcover.lookup(s.choice.second), third: walkcover.lookup(s.choice.third),
                         within: walkcover.lookup(s.choice.within)} : null;
    });
    this._access = data.standards.map(function (s) { return s.access ? walkcover.lookup(s.access.value) : null; });
    /* the views after the standards (a standard's capacity, a life circle): a class per home */
    this._views = (data.views || []).map(function (v) {
      return {codes: walkcover.bytes(v.codes), state: v.state ? walkcover.lookup(v.state) : null,
              missing: v.missing ? walkcover.lookup(v.missing) : null};
    });
    this._residents = walkcover.lookup(data.residents);
    this._osm = walkcover.lookup(data.osm_type);
    this._osmNum = walkcover.varints(data.osm_num);
  },

  setStandard: function (k) { this._std = k; this._hit = -1; return this.redraw(); },
  setAfter: function (k, on) { this._after[k] = !!on; return this.redraw(); },
  /* the view shown (keys after the standards': a standard's capacity, a life circle), or null */
  view: function () {
    var j = this._std - this._d.standards.length;
    return j >= 0 ? this._d.views[j] : null;
  },
  /* which standard's figures paint the homes: its "after" walk only where that is ticked */
  showsAfter: function () { return !!(this._after[this._std] && this._afterCodes[this._std]); },
  band: function (f) {
    var codes = this.showsAfter() ? this._afterCodes[this._std] : this._codes[this._std];
    return codes[f] & 3;
  },
  /* what paints the homes: a byte per home, the bits of it that pick the colour, the colours */
  paint: function () {
    var d = this._d, j = this._std - d.standards.length;
    if (j >= 0) return {codes: this._views[j].codes, mask: 255, colours: d.views[j].colours};
    return {codes: this.showsAfter() ? this._afterCodes[this._std] : this._codes[this._std],
            mask: 3, colours: d.colours};
  },
  /* a home's class in the view shown (-1 for a standard) */
  level: function (f) {
    var j = this._std - this._d.standards.length;
    return j >= 0 ? this._views[j].codes[f] : -1;
  },

  _project: function () {
    var g = this._g;
    L.extend(this, walkcover.toPixels(this._map, g));
    /* (the streets have no smallest size: no pad; NaN bounds would keep them out of every
     * partial redraw, so that a recoloured layer above them wiped them away) */
    var b = this._box, pad = this.options.minPx || 0;
    var lo = Infinity, hi = -Infinity, top = Infinity, bottom = -Infinity;
    for (var f = 0; f < g.n; f++) {
      if (b[0][f] < lo) lo = b[0][f]; if (b[2][f] > hi) hi = b[2][f];
      if (b[1][f] < top) top = b[1][f]; if (b[3][f] > bottom) bottom = b[3][f];
    }
    if (!g.n) { this._pxBounds = L.bounds([0, 0], [0, 0]); return; }
    this._pxBounds = L.bounds(
      [this._ax * lo + this._bx - pad, this._ay * bottom + this._by - pad],
      [this._ax * hi + this._bx + pad, this._ay * top + this._by + pad]);
  },

  _update: function () {},
  _empty: function () { return !this._g.n; },

  _updatePath: function () {
    var ctx = this._renderer._ctx, g = this._g, b = this._box;
    var view = this._renderer._redrawBounds || this._renderer._bounds;
    if (!ctx || !view || !g.n) return;
    var ax = this._ax, bx = this._bx, ay = this._ay, by = this._by, min = this.options.minPx;
    var paint = this.paint(), colours = paint.colours, codes = paint.codes, mask = paint.mask;
    var minx = b[0], miny = b[1], maxx = b[2], maxy = b[3];
    var vx0 = view.min.x - min, vx1 = view.max.x + min, vy0 = view.min.y - min, vy1 = view.max.y + min;
    /* the homes in view, one path per colour; a home too small to see is a small square */
    walkcover.fillByColour(ctx, g.n, colours, function (f) {
      var x0 = ax * minx[f] + bx, x1 = ax * maxx[f] + bx, y0 = ay * maxy[f] + by, y1 = ay * miny[f] + by;
      return x1 < vx0 || x0 > vx1 || y1 < vy0 || y0 > vy1 ? -1 : codes[f] & mask;
    }, function (ctx, f) {
      var x0 = ax * minx[f] + bx, x1 = ax * maxx[f] + bx, y0 = ay * maxy[f] + by, y1 = ay * miny[f] + by;
      if (x1 - x0 < min && y1 - y0 < min) {
        ctx.rect((x0 + x1 - min) / 2, (y0 + y1 - min) / 2, min, min);
        return;
      }
      for (var q = g.partStart[f]; q < g.partStart[f + 1]; q++) {
        for (var r = g.ringStart[q]; r < g.ringStart[q + 1]; r++) {
          var v0 = g.vertStart[r], v1 = g.vertStart[r + 1];
          ctx.moveTo(ax * g.x[v0] + bx, ay * g.y[v0] + by);
          /* no closePath: fill closes each ring, and Chromium's closePath grows slow (about
           * quadratic) with the number of rings in one path */
          for (var v = v0 + 1; v < v1; v++) ctx.lineTo(ax * g.x[v] + bx, ay * g.y[v] + by);
        }
      }
    }, {opacity: this.options.fillOpacity, rule: 'evenodd'});
  },

  /* the home under a point of the layer (the last drawn where several are), or -1 */
  homeAt: function (p) {
    var g = this._g, b = this._box, tol = 2 / Math.abs(this._ax), min = this.options.minPx;
    var X = (p.x - this._bx) / this._ax, Y = (p.y - this._by) / this._ay, found = -1;
    for (var i = Math.floor((X - tol) / this._cell); i <= Math.floor((X + tol) / this._cell); i++) {
      for (var j = Math.floor((Y - tol) / this._cell); j <= Math.floor((Y + tol) / this._cell); j++) {
        var list = this._grid.get(i * 1048576 + j);
        if (!list) continue;
        for (var k = 0; k < list.length; k++) {
          var f = list[k];
          var wide = (b[2][f] - b[0][f]) * Math.abs(this._ax), high = (b[3][f] - b[1][f]) * Math.abs(this._ay);
          if (wide < min && high < min) {
            /* drawn as a square of `min` pixels round its centre */
            var half = min / 2 / Math.abs(this._ax) + tol / 2;
            if (Math.abs(X - (b[0][f] + b[2][f]) / 2) <= half && Math.abs(Y - (b[1][f] + b[3][f]) / 2) <= half) found = f;
            continue;
          }
          if (X < b[0][f] || X > b[2][f] || Y < b[1][f] || Y > b[3][f]) continue;
          if (this._inside(f, X, Y)) found = f;
        }
      }
    }
    return found;
  },

  _inside: function (f, X, Y) {
    var g = this._g, inside = false;
    for (var q = g.partStart[f]; q < g.partStart[f + 1]; q++) {
      for (var r = g.ringStart[q]; r < g.ringStart[q + 1]; r++) {
        var s = g.vertStart[r], e = g.vertStart[r + 1];
        for (var v = s, w = e - 1; v < e; w = v++) {
          if ((g.y[v] > Y) !== (g.y[w] > Y) &&
              X < (g.x[w] - g.x[v]) * (Y - g.y[v]) / (g.y[w] - g.y[v]) + g.x[v]) inside = !inside;
        }
      }
    }
    return inside;
  },

  _containsPoint: function (p) {
    if (!this._map || !this._g.n) return false;
    var f = this.homeAt(p);
    if (f >= 0) this._hit = f;
    return f >= 0;
  },

  /* what a planner reads of home `f`: for the standard (or view) shown, or (`all`) for every
   * standard; a standard's choice and capacity as measured (never with its "after" walk) */
  properties: function (f, all) {
    var d = this._d, v = this.view(), w = d.words, s;
    var p = {
      osm_id: this._osmNum.length ? this._osm(f) + '/' + this._osmNum[f] : this._osm(f),
      residents: this._residents(f)
    };
    if (v && v.kind === 'tier') {
      var lc = this._views[this._std - d.standards.length];
      p.title = v.name;
      p.state = lc.state(f);
      p.missing = lc.missing(f);
      if (all) for (s = 0; s < v.members.length; s++) p['s' + v.members[s]] = this._dist[v.members[s]](f);
      return p;
    }
    var k = v ? v.of : this._std, after = !v && this.showsAfter();
    var code = after ? this._afterCodes[k][f] : this._codes[k][f];
    p.title = v ? v.name : d.standards[k].name + (after ? ' · ' + w.after : '');
    p.walk = after ? this._afterDist[k](f) : this._dist[k](f);
    p.band = d.bands[code & 3];
    p.status = d.statuses[code >> 2];
    p.rule = this._context[k] ? this._context[k](f) : d.standards[k].rule;
    if (v) p.level = v.labels[this.level(f)];
    if (!after && this._access[k]) p.access = this._access[k](f);
    if (!after && this._choice[k]) {
      p.second = this._choice[k].second(f);
      p.third = this._choice[k].third(f);
      p.within = this._choice[k].within(f);
    }
    if (all) {
      for (s = 0; s < d.standards.length; s++) p['s' + s] = this._dist[s](f);
    }
    return p;
  },

  spec: function (all) {
    /* the tooltip short (the status says the band in words), the popup whole */
    var d = this._d, w = d.words, v = this.view(), self = this, f = this._hit, spec, members;
    var colour = {};  /* a swatch per field, in the popup */
    if (v && v.kind === 'tier') {
      spec = {title: 'title', lines: [], fields: ['residents', 'state', 'missing'],
              aliases: [w.residents, w.circle, w.missing], osm_link: all};
      colour.state = v.colours[this.level(f)];
      members = all ? v.members : [];
      if (all) spec.caption = w.tier_every;
    } else {
      var k = v ? v.of : this._std, after = !v && this.showsAfter(), s = d.standards[k];
      spec = all ? {
        title: 'title', lines: [], fields: ['residents', 'walk', 'rule', 'band', 'status'],
        aliases: [w.residents, w.walk, w.rule, w.band, w.status], osm_link: true
      } : {
        title: 'title', lines: [], fields: ['residents', 'walk', 'rule', 'status'],
        aliases: [w.residents, w.walk, w.rule, w.status], osm_link: false
      };
      if (v) {  /* the capacity view: the home's figure and its class first */
        spec.fields.splice(1, 0, 'access', 'level');
        spec.aliases.splice(1, 0, s.access.label, w.level);
        colour.level = v.colours[this.level(f)];
      } else if (all && !after && s.access) {
        spec.fields.push('access');
        spec.aliases.push(s.access.label);
      }
      if (all && !after && s.choice) {
        spec.fields.push('second', 'third', 'within');
        spec.aliases.push(w.second, w.third, w.within);
      }
      members = all ? d.standards.map(function (_, i) { return i; }) : [];
      if (all) spec.caption = w.every;
    }
    members.forEach(function (i) {
      spec.fields.push('s' + i);
      spec.aliases.push(d.standards[i].name);
      colour['s' + i] = d.colours[self._codes[i][f] & 3];
    });
    if (all) spec.swatches = spec.fields.map(function (name) { return colour[name] || 'transparent'; });
    return spec;
  },

  beforeAdd: function (map) {
    if (this._bound) return L.Path.prototype.beforeAdd.call(this, map);
    this._bound = true;
    var self = this;
    this.bindTooltip(function () { return walkcoverTable(self.properties(self._hit, false), self.spec(false)); },
                     {sticky: true});
    this.bindPopup(function () { return walkcoverTable(self.properties(self._hit, true), self.spec(true)); },
                   {maxWidth: 360});
    this.on('mousemove', function () {
      if (self._shown !== self._hit && self.isTooltipOpen()) {
        self._shown = self._hit;
        self.setTooltipContent(walkcoverTable(self.properties(self._hit, false), self.spec(false)));
      }
    });
    this.on('tooltipopen', function () { self._shown = self._hit; });
    return L.Path.prototype.beforeAdd.call(this, map);
  }
});

/* the standard shown: its homes' colours, its legend, its facilities and sites over the homes */
walkcover.show = function (k) {
  walkcover.current = k;
  var homes = walkcover.homes;
  if (homes) {
    homes.setStandard(k);
    if (homes._map) homes.bringToFront();
  }
  (walkcover.front[k] || []).forEach(function (layer) { if (layer._map) layer.bringToFront(); });
  walkcover.legendFor(k);
};

walkcover.after = function (k, on) {
  if (walkcover.homes) walkcover.homes.setAfter(k, on);
  walkcover.legendFor(walkcover.current);
};

walkcover.legendFor = function (k) {
  var legend = document.getElementById('walkcover-legend');
  if (!legend) return;
  var view = false;
  legend.querySelectorAll('[data-standard]').forEach(function (e) {
    e.hidden = String(e.getAttribute('data-standard')) !== String(k);
    if (!e.hidden && e.hasAttribute('data-view')) view = true;
  });
  /* a view (a standard's capacity, a life circle) has its own classes in place of the bands */
  legend.querySelectorAll('[data-bands]').forEach(function (e) { e.hidden = view; });
  var homes = walkcover.homes, on = homes ? homes.showsAfter() : false;
  legend.querySelectorAll('[data-after]').forEach(function (e) {
    e.hidden = !(on && String(e.getAttribute('data-after')) === String(k));
  });
};

/* open on the whole district, clear of the legend: it is folded on a small screen, and the
 * district is fitted beside it or above it, whichever leaves it larger */
walkcover.fit = function (map, bounds, pad) {
  if (map._animatingZoom) {  /* the page's first fit still zooming: fit once it is done */
    map.once('zoomend', function () { walkcover.fit(map, bounds, pad); });
    return;
  }
  var legend = document.getElementById('walkcover-legend');
  var size = map.getSize();
  if (legend && (size.x < 1000 || size.y < 560)) {
    var details = legend.querySelector('details');
    if (details) details.open = false;
  }
  /* the legend (bottom left) and the layer control (top right): each is kept clear by padding
   * on its side or on its edge, whichever combination leaves the district largest */
  var c = map.getContainer().getBoundingClientRect(), sides = [];
  if (legend) {
    var lb = legend.getBoundingClientRect();
    sides.push([[0, lb.right - c.left + pad / 2], [3, c.bottom - lb.top + pad / 2]]);
  }
  var control = map.getContainer().querySelector('.leaflet-control-layers');
  if (control) {
    var cb = control.getBoundingClientRect();
    sides.push([[2, c.right - cb.left + pad / 2], [1, cb.bottom - c.top + pad / 2]]);
  }
  var options = [];
  (function combine(i, padding) {
    if (i === sides.length) {
      options.push({paddingTopLeft: [padding[0], padding[1]], paddingBottomRight: [padding[2], padding[3]]});
      return;
    }
    sides[i].forEach(function (side) {
      var next = padding.slice();
      next[side[0]] = Math.max(next[side[0]], side[1]);
      combine(i + 1, next);
    });
  })(0, [pad, pad, pad, pad]);
  var best = null, zoom = -Infinity;
  options.forEach(function (o) {
    var z = map.getBoundsZoom(bounds, false, L.point(o.paddingTopLeft).add(o.paddingBottomRight));
    if (z > zoom) { zoom = z; best = o; }
  });
  map.fitBounds(bounds, L.extend({animate: false}, best));
};

/* Lines drawn straight from packed geometry on the canvas renderer, deaf to the mouse (the
 * street grid under everything): no GeoJSON, no LatLng objects for a city's streets. */
L.WalkcoverLines = L.Path.extend({
  options: {interactive: false, stroke: true, fill: false, color: '#8c8c8c', weight: 1, opacity: 0.7,
            minPx: 0},

  initialize: function (packed, options) {
    L.setOptions(this, options);
    this._g = walkcover.unpack(packed);
    this._box = walkcover.boxes(this._g);
  },

  _project: L.WalkcoverHomes.prototype._project,
  _update: function () {},
  _empty: function () { return !this._g.n; },
  _containsPoint: function () { return false; },

  _updatePath: function () {
    var ctx = this._renderer._ctx, g = this._g, b = this._box;
    var view = this._renderer._redrawBounds || this._renderer._bounds;
    if (!ctx || !view || !g.n) return;
    var ax = this._ax, bx = this._bx, ay = this._ay, by = this._by;
    ctx.save();
    ctx.beginPath();
    for (var f = 0; f < g.n; f++) {
      var x0 = ax * b[0][f] + bx, x1 = ax * b[2][f] + bx, y0 = ay * b[3][f] + by, y1 = ay * b[1][f] + by;
      if (x1 < view.min.x || x0 > view.max.x || y1 < view.min.y || y0 > view.max.y) continue;
      for (var q = g.partStart[f]; q < g.partStart[f + 1]; q++) {
        for (var r = g.ringStart[q]; r < g.ringStart[q + 1]; r++) {
          var v0 = g.vertStart[r], v1 = g.vertStart[r + 1];
          ctx.moveTo(ax * g.x[v0] + bx, ay * g.y[v0] + by);
          for (var v = v0 + 1; v < v1; v++) ctx.lineTo(ax * g.x[v] + bx, ay * g.y[v] + by);
        }
      }
    }
    ctx.globalAlpha = this.options.opacity;
    ctx.strokeStyle = this.options.color;
    ctx.lineWidth = this.options.weight;
    ctx.stroke();
    ctx.restore();
  }
});

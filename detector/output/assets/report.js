// The report page: reads the data files under report/ (each calls REPORT.index/rows/input) and
// renders the index or one input's page from the URL hash, e.g.
//   report.html#sort=p_fake&dir=desc&verdict=FAKE&status=ok&page=2      report.html#input=<id>
// Everything from an input is put in the page with textContent or setAttribute, never as HTML.
"use strict";
var REPORT = (function () {
  var PAGE_ROWS = 100;
  var COLUMNS = [  // key, heading, numeric
    ["thumb", "face", false], ["name", "input", false], ["label", "verdict", false], ["p_fake", "p_fake", true],
    ["status", "status", false], ["faces", "faces", true], ["tracks", "tracks", true],
    ["seconds", "time (s)", true], ["error", "error", false]];
  var STATUSES = ["ok", "no_face", "unreadable", "error"];
  var index = null, chunks = [], waiting = 0, inputs = {}, lastIndexHash = "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function image(src, cls, alt) {  // marks itself data-loaded / data-failed, for people and tests
    var img = el("img", {"class": cls || "", alt: alt || ""});
    img.addEventListener("load", function () { if (img.naturalWidth > 0) img.setAttribute("data-loaded", "1"); });
    img.addEventListener("error", function () { img.setAttribute("data-failed", "1"); });
    img.setAttribute("src", src);
    return img;
  }
  function load(src, failed) {
    var script = el("script", {src: src});
    if (failed) script.addEventListener("error", failed);
    document.body.appendChild(script);
  }
  function state() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    return {sort: params.get("sort") || "", dir: params.get("dir") === "desc" ? "desc" : "asc",
            verdict: params.get("verdict") || "", status: params.get("status") || "",
            page: Math.max(1, parseInt(params.get("page") || "1", 10) || 1), input: params.get("input") || ""};
  }
  function hashOf(s) {
    var params = new URLSearchParams();
    ["sort", "dir", "verdict", "status", "page", "input"].forEach(function (k) {
      if (s[k] && !(k === "page" && s[k] === 1) && !(k === "dir" && !s.sort)) params.set(k, s[k]);
    });
    return "#" + params.toString();
  }
  function fixed(value, digits) { return value === null || value === undefined ? "" : Number(value).toFixed(digits); }
  function allRows() { return [].concat.apply([], chunks); }

  function renderSummary() {
    var box = document.getElementById("summary");
    box.textContent = "";
    var parts = [index.inputs + " input" + (index.inputs === 1 ? "" : "s"),
                 (index.labels.FAKE || 0) + " FAKE", (index.labels.REAL || 0) + " REAL"];
    STATUSES.slice(1).forEach(function (s) { parts.push((index.statuses[s] || 0) + " " + s); });
    parts.push(index.seconds + " s scanning");
    box.appendChild(el("span", {}, parts.join(" · ")));
    var model = index.model ? " · model " + index.model + " (" + index.fingerprint + ")" : "";
    var ffmpeg = index.ffmpeg ? " · ffmpeg " + index.ffmpeg_version + " (" + index.ffmpeg + ")" : "";
    box.appendChild(el("span", {}, " · updated " + index.updated + model + ffmpeg));
    if (index.running) box.appendChild(el("span", {"class": "running", id: "running"}, " · scan in progress: reload to update"));
  }

  function select(id, label, values, current) {
    var box = el("label", {}, label + " ");
    var menu = el("select", {id: id});
    [["", "all"]].concat(values.map(function (v) { return [v, v]; })).forEach(function (v) {
      var option = el("option", {value: v[0]}, v[1]);
      if (v[0] === current) option.setAttribute("selected", "selected");
      menu.appendChild(option);
    });
    menu.addEventListener("change", function () {
      var s = state(); s[id] = menu.value; s.page = 1; location.hash = hashOf(s);
    });
    box.appendChild(menu);
    return box;
  }

  function renderIndex(s, main) {
    var rows = allRows().filter(function (r) {
      return (!s.verdict || r.label === s.verdict) && (!s.status || r.status === s.status);
    });
    var column = COLUMNS.filter(function (c) { return c[0] === s.sort && c[0] !== "thumb"; })[0];
    if (column) {
      var sign = s.dir === "desc" ? -1 : 1, key = column[0];
      rows = rows.map(function (r, i) { return [r, i]; }).sort(function (a, b) {
        var x = a[0][key], y = b[0][key];
        var xMissing = x === null || x === "", yMissing = y === null || y === "";
        if (xMissing || yMissing) return xMissing === yMissing ? a[1] - b[1] : (xMissing ? 1 : -1);  // last
        if (x < y) return -sign;
        if (x > y) return sign;
        return a[1] - b[1];
      }).map(function (p) { return p[0]; });
    }
    var pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS)), page = Math.min(s.page, pages);
    var controls = el("div", {"class": "controls"});
    controls.appendChild(select("verdict", "verdict", ["FAKE", "REAL"], s.verdict));
    controls.appendChild(select("status", "status", STATUSES, s.status));
    controls.appendChild(el("span", {id: "shown"}, rows.length + " shown"));
    main.appendChild(controls);
    var table = el("table", {id: "inputs", "data-page": page, "data-pages": pages, "data-shown": rows.length});
    var head = el("tr");
    COLUMNS.forEach(function (c) {
      var th = el("th", {"data-col": c[0]});
      if (c[0] === "thumb") { th.textContent = c[1]; head.appendChild(th); return; }
      var next = {sort: c[0], dir: s.sort === c[0] && s.dir === "asc" ? "desc" : (s.sort === c[0] ? "asc" : (c[2] ? "desc" : "asc")),
                  verdict: s.verdict, status: s.status, page: 1};
      var arrow = s.sort === c[0] ? (s.dir === "desc" ? " ▼" : " ▲") : "";
      th.appendChild(el("a", {href: hashOf(next), "class": s.sort === c[0] ? "sorted" : ""}, c[1] + arrow));
      head.appendChild(th);
    });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var body = el("tbody");
    rows.slice((page - 1) * PAGE_ROWS, page * PAGE_ROWS).forEach(function (r) {
      var tr = el("tr", {"class": "row", "data-id": r.id, "data-status": r.status, "data-label": r.label});
      var cell = el("td");
      if (r.thumb) cell.appendChild(image(r.thumb, "thumb", "most suspicious face"));
      tr.appendChild(cell);
      var name = el("td", {"class": "name", title: r.path});
      name.appendChild(r.page ? el("a", {href: "#input=" + r.id}, r.name) : el("span", {}, r.name));
      tr.appendChild(name);
      tr.appendChild(el("td", {"class": r.label}, r.label));
      tr.appendChild(el("td", {"class": "num"}, fixed(r.p_fake, 3)));
      tr.appendChild(el("td", {}, r.status));
      tr.appendChild(el("td", {"class": "num"}, r.faces));
      tr.appendChild(el("td", {"class": "num"}, r.tracks));
      tr.appendChild(el("td", {"class": "num"}, fixed(r.seconds, 2)));
      tr.appendChild(el("td", {"class": "error"}, r.error));
      body.appendChild(tr);
    });
    table.appendChild(body);
    main.appendChild(table);
    var pager = el("p", {"class": "pager"});
    if (page > 1) pager.appendChild(el("a", {href: hashOf(Object.assign({}, s, {page: page - 1})), id: "prev"}, "← previous"));
    pager.appendChild(el("span", {}, "page " + page + " of " + pages));
    if (page < pages) pager.appendChild(el("a", {href: hashOf(Object.assign({}, s, {page: page + 1})), id: "next"}, "next →"));
    main.appendChild(pager);
  }

  function timeline(data, track) {
    var W = 640, H = 180, L = 44, R = 12, T = 12, B = 30;
    var times = data.times.filter(function (t) { return t !== null; });
    var end = Math.max(data.video && data.video.duration || 0, times.length ? Math.max.apply(null, times) : 0) || 1;
    var x = function (t) { return L + (W - L - R) * t / end; }, y = function (p) { return T + (H - T - B) * (1 - p); };
    var plot = svg("svg", {"class": "timeline", width: W, height: H, viewBox: "0 0 " + W + " " + H,
                           role: "img", "aria-label": "p_fake of track " + track.track + " against time"});
    plot.appendChild(svg("line", {"class": "axis", x1: L, y1: y(0), x2: W - R, y2: y(0)}));
    plot.appendChild(svg("line", {"class": "axis", x1: L, y1: y(0), x2: L, y2: y(1)}));
    [0, 0.5, 1].forEach(function (p) { plot.appendChild(svg("text", {x: L - 6, y: y(p) + 4, "text-anchor": "end"}, p)); });
    plot.appendChild(svg("text", {x: L, y: H - 8}, "0 s"));
    plot.appendChild(svg("text", {x: W - R, y: H - 8, "text-anchor": "end"}, end.toFixed(1) + " s"));
    if (data.threshold !== null && data.threshold !== undefined) {
      plot.appendChild(svg("line", {"class": "threshold", x1: L, y1: y(data.threshold), x2: W - R, y2: y(data.threshold)}));
      plot.appendChild(svg("text", {x: W - R, y: y(data.threshold) - 4, "text-anchor": "end"}, "threshold " + fixed(data.threshold, 3)));
    }
    var points = track.points.filter(function (p) { return p[0] !== null; });
    plot.appendChild(svg("polyline", {points: points.map(function (p) { return x(p[0]) + "," + y(p[1]); }).join(" ")}));
    points.forEach(function (p) {
      var dot = svg("circle", {cx: x(p[0]), cy: y(p[1]), r: 3});
      dot.appendChild(svg("title", {}, p[0].toFixed(2) + " s: p_fake " + p[1].toFixed(3)));
      plot.appendChild(dot);
    });
    return plot;
  }

  function figure(crop, cls, alt) {
    var box = el("figure", {"class": cls || ""});
    box.appendChild(image(crop.src, "", alt));
    box.appendChild(el("figcaption", {}, fixed(crop.p, 3) + (crop.t === null ? "" : " · " + crop.t.toFixed(2) + " s")));
    return box;
  }

  function renderInput(id, main) {
    var data = inputs[id];
    main.appendChild(el("p", {}, "")).appendChild(el("a", {href: lastIndexHash || "#", id: "back"}, "← all inputs"));
    main.appendChild(el("h2", {id: "input-name"}, data.name));
    main.appendChild(el("p", {"class": "path"}, data.path));
    var verdict = el("p", {id: "verdict"});
    if (data.status === "ok") {
      verdict.appendChild(el("span", {"class": data.label}, data.label));
      verdict.appendChild(el("span", {}, "  p_fake " + fixed(data.p_fake, 3) + " — " + data.reason));
    } else {
      verdict.appendChild(el("strong", {}, data.status));
      verdict.appendChild(el("span", {"class": "error"}, "  " + data.error));
    }
    main.appendChild(verdict);
    var facts = el("section", {"class": "facts"}), list = el("dl");
    var v = data.video;
    var rows = v ? [["size", v.width + " × " + v.height], ["duration", v.is_image ? "still image" : v.duration.toFixed(2) + " s"],
                    ["frame rate", v.fps ? v.fps.toFixed(2) + " fps" : "—"], ["rotation", v.rotation + "°"], ["codec", v.codec]] : [];
    rows = rows.concat([["frames sampled", data.frames], ["scan time", data.seconds + " s"]]);
    rows.forEach(function (r) { list.appendChild(el("dt", {}, r[0])); list.appendChild(el("dd", {}, r[1])); });
    facts.appendChild(el("h3", {}, "Video")); facts.appendChild(list); main.appendChild(facts);
    if (data.heatmaps.length) {
      var heat = el("section", {"class": "heatmaps"});
      heat.appendChild(el("h3", {}, "Where the score comes from (" + data.method + ")"));
      var strip = el("div", {"class": "strip"});
      data.heatmaps.forEach(function (c) { strip.appendChild(figure(c, "heat", "heat-map, track " + c.track)); });
      heat.appendChild(strip); main.appendChild(heat);
    }
    data.tracks.forEach(function (track) {
      var box = el("section", {"class": "track", "data-track": track.track});
      box.appendChild(el("h3", {}, "Face track " + track.track + ": " + track.n_crops + " crops, mean p_fake " +
                         fixed(track.p_fake, 3) + (track.face_side ? ", faces about " + Math.round(track.face_side) + " px" : "") +
                         (track.counted ? "" : " (seen too briefly: not counted)")));
      var strip = el("div", {"class": "strip"});
      track.crops.forEach(function (c) { strip.appendChild(figure(c, "", "face crop")); });
      if (track.crops.length < track.n_crops) strip.appendChild(el("p", {}, "(most and least suspicious " + track.crops.length + " of " + track.n_crops + ")"));
      box.appendChild(strip);
      box.appendChild(timeline(data, track));
      main.appendChild(box);
    });
  }

  function render() {
    if (!index) return;
    var s = state(), main = document.getElementById("main");
    main.textContent = "";
    renderSummary();
    if (s.input) {
      if (!/^[0-9a-f]{16}$/.test(s.input)) { main.appendChild(el("p", {}, "No such input.")); return; }
      if (inputs[s.input]) { renderInput(s.input, main); return; }
      main.appendChild(el("p", {}, "Loading…"));
      load("report/inputs/" + s.input + ".js", function () { main.textContent = "No page for this input."; });
      return;
    }
    lastIndexHash = location.hash || "#";
    renderIndex(s, main);
    document.body.setAttribute("data-ready", "1");
  }

  window.addEventListener("hashchange", render);
  return {
    index: function (data) {
      index = data;
      waiting = data.chunks;
      if (!waiting) { render(); return; }
      for (var n = 0; n < data.chunks; n++) {
        load("report/rows/" + String(n).padStart(5, "0") + ".js", function () { if (--waiting === 0) render(); });
      }
    },
    rows: function (n, rows) { chunks[n] = rows; if (--waiting === 0) render(); },
    input: function (id, data) {
      inputs[id] = data;
      if (state().input === id) { render(); document.body.setAttribute("data-ready", "1"); }
    }
  };
})();

// The gallery's page script: turns the JSON in <script id="gallery-data"> into cards, sorted and filtered in
// the browser. Inlined into gallery.html at build time (cmpt726.report.gallery.pages); the JSON's layout is
// in cmpt726.report.gallery.pack. Arrays of 3 per image (runs[k].top, runs[k].p) hold image i at 3i..3i+2.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("gallery-data").textContent);
  var N = D.n, K = D.classes.length, SCALE = D.scale;
  var COLS = D.sprite_columns, SIZE = 96;  // thumbnails at 3× their 32 px
  var TCOLS = D.duplicates ? D.duplicates.columns : 0, TSIZE = 64;  // training twins at 2×
  var grid = document.getElementById("grid"), count = document.getElementById("count");
  var ids = ["variant", "seed", "sort", "true-class", "pred-class", "outcome", "subset"];
  var controls = ids.map(function (id) { return document.getElementById(id); });
  var el = {};
  ids.forEach(function (id, j) { el[id] = controls[j]; });
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  var names = D.classes.map(esc), labels = D.labels;
  // The analyses, each absent unless its file was given.
  var issue = {}, twin = {}, votes = null, majority = null, hflags = null;
  (D.label_issues || []).forEach(function (r) { issue[r[0]] = r; });  // [index, suggested, rank]
  if (D.duplicates) D.duplicates.twins.forEach(function (r) { twin[r[0]] = r; });  // [index, tile, train index, label, distance]
  if (D.humans) { votes = D.humans.votes; majority = D.humans.majority; hflags = D.humans.flags; }
  var nIssues = (D.label_issues || []).length;

  // ---------------------------------------------------------------- the run selector
  var variantIndex = {};
  D.variants.forEach(function (v, j) {
    variantIndex[v.name] = j;
    var o = document.createElement("option"), runs = v.runs.length, focus = D.runs[D.focus].variant === v.name;
    o.value = v.name;
    o.textContent = v.name + " · " + v.accuracy.toFixed(2) + "%" + (runs > 1 ? " (mean of " + runs + " seeds)" : "") +
      (v.note ? " · " + v.note : "") + (focus ? " · report's focus" : "");
    el.variant.appendChild(o);
  });
  function fillSeeds(seed) {
    var v = D.variants[variantIndex[el.variant.value]];
    el.seed.textContent = "";
    v.runs.forEach(function (k) {
      var o = document.createElement("option"), r = D.runs[k];
      o.value = String(r.seed);
      o.textContent = "seed " + r.seed + " · " + r.accuracy.toFixed(2) + "%";
      el.seed.appendChild(o);
    });
    if (hasOption(el.seed, String(seed))) el.seed.value = String(seed);
  }
  function hasOption(select, value) {
    return Array.prototype.some.call(select.options, function (o) { return o.value === value; });
  }
  function runOf(v, seed) {  // the run of variant v with this seed, else its first
    for (var j = 0; j < v.runs.length; j++) if (D.runs[v.runs[j]].seed === seed) return v.runs[j];
    return v.runs[0];
  }
  function selected() { return runOf(D.variants[variantIndex[el.variant.value]], +el.seed.value); }

  // ---------------------------------------------------------------- "the variants disagree"
  var disagreeCache = {};
  function disagree(ks) {  // 1 where the top-1 predictions of runs ks are not all the same
    var key = ks.join(",");
    if (!disagreeCache[key]) {
      var tops = ks.map(function (k) { return D.runs[k].top; }), out = new Uint8Array(N);
      for (var i = 0; i < N; i++) {
        for (var j = 1; j < tops.length; j++) if (tops[j][3 * i] !== tops[0][3 * i]) { out[i] = 1; break; }
      }
      disagreeCache[key] = out;
    }
    return disagreeCache[key];
  }
  function variantRuns(seed) { return D.variants.map(function (v) { return runOf(v, seed); }); }
  var allRuns = D.runs.map(function (r, k) { return k; });

  // ---------------------------------------------------------------- cards
  var cur;  // the selected run: D.runs[k]
  function humans(i, y) {
    var v = votes.slice(K * i, K * i + K), total = 0, max = 0, m = majority[i], f = hflags[i], bars = "", title = [];
    for (var c = 0; c < K; c++) { total += v[c]; max = Math.max(max, v[c]); }
    for (c = 0; c < K; c++) {
      var h = max ? Math.round(16 * v[c] / max) : 0;
      bars += '<span class="' + (c === y ? "lab" : c === m ? "maj" : "") + '" style="height:' + h + 'px"></span>';
      title.push(names[c] + " " + v[c]);
    }
    var text = "people: " + names[m] + " " + v[m] + "/" + total + (f & 1 ? " (not the label)" : "") +
      (f & 2 ? " · unsure" : "");
    return '<div class="hum' + (f & 1 ? " dis" : "") + '" data-humans="' + f + '" title="people\'s votes: ' +
      title.join(", ") + '"><div class="hv">' + bars + '</div><div class="ht">' + text + "</div></div>";
  }
  function card(i) {
    var b = 3 * i, y = labels[i], t = cur.top, ok = y === t[b];
    // Top-3: rank, class and score over a bar as long as the score; rank 1 is the prediction.
    var top = [1, 2, 3].map(function (k) {
      var p = cur.p[b + k - 1] / SCALE, w = (100 * p).toFixed(1);
      return '<div class="k p' + k + '" style="background:linear-gradient(90deg,#dbe5f1 ' + w + '%,transparent ' +
        w + '%)">' + (k === 1 ? "pred: " : k + ": ") + names[t[b + k - 1]] + " " + p.toFixed(3) + "</div>";
    }).join("");
    var thumb = '<div class="thumb" style="background-position:-' + (i % COLS) * SIZE + "px -" +
      Math.floor(i / COLS) * SIZE + 'px" title="test image ' + i + '"></div>', extra = "";
    var d = twin[i];
    if (d) {
      thumb = '<div class="pair">' + thumb + '<div><div class="twin" data-tile="' + d[1] +
        '" style="background-position:-' + (d[1] % TCOLS) * TSIZE + "px -" + Math.floor(d[1] / TCOLS) * TSIZE +
        'px" title="training image ' + d[2] + ", pixel distance " + d[4] + '"></div><div class="tcap">train #' + d[2] +
        "<br>" + names[d[3]] + "</div></div></div>";
    }
    var li = issue[i];
    if (li) extra += '<div class="badge" data-rank="' + li[2] + '" title="label rejected by the models (cleanlab), rank ' + li[2] +
      " of " + nIssues + '">label? ' + names[y] + " → " + names[li[1]] + " · rank " + li[2] + "</div>";
    if (votes) extra += humans(i, y);
    return '<div class="card ' + (ok ? "ok" : "bad") + '" data-index="' + i + '" data-score="' + cur.p[b] / SCALE +
      '" data-true="' + y + '" data-pred="' + t[b] + '">' + thumb +
      '<div class="meta"><div><span class="idx">#' + i + '</span><span class="mark">' + (ok ? "✓ correct" : "✗ wrong") +
      "</span></div><div>true: " + names[y] + "</div>" + top + extra + "</div></div>";
  }
  function agreement(i) {
    var total = 0;
    for (var c = 0; c < K; c++) total += votes[K * i + c];
    return total ? votes[K * i + labels[i]] / total : 1;
  }
  var order = {
    "index": function (a, b) { return a - b; },
    "score-desc": function (a, b) { return cur.p[3 * b] - cur.p[3 * a] || a - b; },
    "score-asc": function (a, b) { return cur.p[3 * a] - cur.p[3 * b] || a - b; },
    "class": function (a, b) { return labels[a] - labels[b] || cur.p[3 * b] - cur.p[3 * a] || a - b; },
    "label-rank": function (a, b) {
      return (issue[a] ? issue[a][2] : Infinity) - (issue[b] ? issue[b][2] : Infinity) || a - b;
    },
    "human-agreement": function (a, b) { return agreement(a) - agreement(b) || a - b; }
  };
  function keep(subset) {  // → function(i) → shown?
    if (subset === "variants-disagree" || subset === "runs-disagree") {
      var mask = disagree(subset === "runs-disagree" ? allRuns : variantRuns(D.runs[selected()].seed));
      return function (i) { return mask[i] === 1; };
    }
    if (subset === "label-issues") return function (i) { return !!issue[i]; };
    if (subset === "humans-disagree") return function (i) { return (hflags[i] & 1) === 1; };
    if (subset === "humans-unsure") return function (i) { return (hflags[i] & 2) === 2; };
    if (subset === "near-duplicates") return function (i) { return !!twin[i]; };
    return function () { return true; };
  }
  var compared = document.getElementById("compared");
  function update() {
    var k = selected(), r = D.runs[k];
    cur = r;
    document.querySelector("h1 code").textContent = r.variant;
    document.getElementById("shown-seed").textContent = r.seed;
    document.getElementById("correct").textContent = r.correct.toLocaleString("en");
    document.getElementById("accuracy").textContent = r.accuracy.toFixed(2);
    document.title = "Gallery: " + r.variant + ", seed " + r.seed + " · " + D.title;
    if (compared) compared.textContent = variantRuns(r.seed).map(function (j) {
      return D.runs[j].variant + " seed " + D.runs[j].seed;
    }).join(", ");
    var sort = el.sort.value, tc = el["true-class"].value, pc = el["pred-class"].value, outcome = el.outcome.value;
    var show = keep(el.subset.value), shown = [];
    for (var i = 0; i < N; i++) {
      var y = labels[i], pred = cur.top[3 * i], ok = y === pred;
      if (tc !== "" && y !== +tc) continue;
      if (pc !== "" && pred !== +pc) continue;
      if ((outcome === "correct" && !ok) || (outcome === "wrong" && ok)) continue;
      if (!show(i)) continue;
      shown.push(i);
    }
    shown.sort(order[sort]);
    grid.innerHTML = shown.map(card).join("");
    document.getElementById("empty").style.display = shown.length ? "none" : "block";
    count.textContent = "showing " + shown.length.toLocaleString("en") + " of " + N.toLocaleString("en") + " images";
    var state = controls.map(function (c) { return c.id + "=" + encodeURIComponent(c.value); }).join("&");
    history.replaceState(null, "", "#" + state);
  }
  // The URL's #fragment keeps the view (run included), so a filtered view can be bookmarked or shared.
  var wanted = {};
  location.hash.slice(1).split("&").forEach(function (kv) {
    var at = kv.indexOf("=");
    if (at > 0) wanted[kv.slice(0, at)] = decodeURIComponent(kv.slice(at + 1));
  });
  var focus = D.runs[D.focus];
  el.variant.value = hasOption(el.variant, wanted.variant) ? wanted.variant : focus.variant;
  fillSeeds(el.variant.value === focus.variant ? focus.seed : D.runs[D.variants[variantIndex[el.variant.value]].runs[0]].seed);
  if (wanted.seed !== undefined && hasOption(el.seed, wanted.seed)) el.seed.value = wanted.seed;
  controls.slice(2).forEach(function (c) { if (c.id in wanted && hasOption(c, wanted[c.id])) c.value = wanted[c.id]; });
  el.variant.addEventListener("change", function () { fillSeeds(el.seed.value); update(); });
  controls.slice(1).forEach(function (c) { c.addEventListener("change", update); });
  update();
})();

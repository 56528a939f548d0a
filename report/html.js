(function () {
  "use strict";
  var table = document.getElementById("rows");
  if (!table) return;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.forEach(function (r, i) { r._i = i; r._t = r.textContent.toLowerCase(); });
  var sev = document.getElementById("f-sev"), kind = document.getElementById("f-kind"),
    owner = document.getElementById("f-owner"), text = document.getElementById("f-text"),
    shown = document.getElementById("shown");

  // Filters combine: every one set must match.
  function apply() {
    var s = sev ? +sev.value : -1, k = kind ? kind.value : "", o = owner ? owner.value : "*",
      q = text ? text.value.trim().toLowerCase() : "", n = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], d = r.dataset;
      var ok = +d.sev >= s &&
        (!k || (" " + d.kinds + " ").indexOf(" " + k + " ") >= 0) &&
        (o === "*" || d.owner === o) &&
        (!q || r._t.indexOf(q) >= 0);
      r.hidden = !ok;
      if (ok) n++;
    }
    if (shown) shown.textContent = n + " of " + rows.length + " rows shown";
  }
  [sev, kind, owner].forEach(function (el) { if (el) el.addEventListener("change", apply); });
  if (text) text.addEventListener("input", apply);

  // Sorting: the address column restores the original (numeric address)
  // order; ties keep it too, so sorts are stable.
  var ths = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(ths, function (th, col) {
    var b = th.querySelector("button");
    if (!b) return;
    b.addEventListener("click", function () {
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1, type = th.dataset.type;
      Array.prototype.forEach.call(ths, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      var keyed = rows.map(function (r) {
        var k;
        if (type === "ip") k = r._i;
        else if (type === "sev") k = +r.dataset.sev;
        else if (type === "n") { k = parseFloat(r.cells[col].textContent); if (isNaN(k)) k = -Infinity; }
        else k = r.cells[col].textContent.toLowerCase();
        return [k, r._i, r];
      });
      keyed.sort(function (x, y) { return x[0] < y[0] ? -dir : x[0] > y[0] ? dir : x[1] - y[1]; });
      var frag = document.createDocumentFragment();
      keyed.forEach(function (x) { frag.appendChild(x[2]); });
      body.appendChild(frag);
    });
  });
  apply();
})();

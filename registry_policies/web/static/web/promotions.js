/* The policy form, enhanced: every part works without this file (submit buttons re-render).
   - "Add a rule row" clones the empty row from <template id="rule-row-template">.
   - "Remove" hides the row (its Remove box is ticked, so saving skips it).
   - Operators that do not apply to the chosen field are disabled.
   - The tag template preview follows typing (GET data-preview-url?template=&tag=). */
(function () {
  "use strict";
  var form = document.getElementById("policy-form");
  if (!form) { return; }
  var rows = document.getElementById("rule-rows");
  var template = document.getElementById("rule-row-template");
  var total = form.querySelector("input[name='rules-TOTAL_FORMS']");
  var operatorsNode = document.getElementById("operators-by-field");
  var operatorsByField = operatorsNode ? JSON.parse(operatorsNode.textContent) : {};

  function fitOperators(row) {
    var field = row.querySelector("select[name$='-field']");
    var operator = row.querySelector("select[name$='-operator']");
    var severity = row.querySelector("select[name$='-severity']");
    if (!field || !operator) { return; }
    var allowed = operatorsByField[field.value];
    Array.prototype.forEach.call(operator.options, function (option) {
      option.disabled = Boolean(allowed) && allowed.indexOf(option.value) === -1;
    });
    if (allowed && operator.selectedOptions.length && operator.selectedOptions[0].disabled) {
      operator.value = allowed[0];
    }
    if (severity) { severity.disabled = field.value !== "vulnerabilities"; }
  }

  function enhanceRow(row) {
    var remove = row.querySelector("input[name$='-DELETE']");
    if (remove) {
      var label = remove.closest("label");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "small danger-ghost";
      button.textContent = "Remove";
      button.addEventListener("click", function () {
        remove.checked = true;
        row.classList.add("removed");
      });
      if (label) { label.hidden = true; label.after(button); }
    }
    var field = row.querySelector("select[name$='-field']");
    if (field) { field.addEventListener("change", function () { fitOperators(row); }); }
    fitOperators(row);
  }

  Array.prototype.forEach.call(rows ? rows.querySelectorAll("tr.rule-row") : [], enhanceRow);

  var add = document.getElementById("add-rule-row");
  if (add && template && total && rows) {
    add.addEventListener("click", function (event) {
      event.preventDefault();
      var index = parseInt(total.value, 10) || 0;
      var html = template.innerHTML.replace(/__prefix__/g, String(index)).replace(/__num__/g, String(index + 1));
      var holder = document.createElement("tbody");
      holder.innerHTML = html.trim();
      var row = holder.querySelector("tr");
      rows.appendChild(row);
      total.value = String(index + 1);
      enhanceRow(row);
      var first = row.querySelector("select");
      if (first) { first.focus(); }
    });
  }

  var templateInput = document.getElementById("id_tag_template");
  var sampleInput = document.getElementById("id_sample_tag");
  var output = document.getElementById("template-preview");
  var previewButton = document.getElementById("preview-button");
  var url = form.dataset.previewUrl;
  if (templateInput && output && url && window.fetch) {
    if (previewButton) { previewButton.hidden = true; }
    var timer = null;
    var update = function () {
      var query = new URLSearchParams({template: templateInput.value, tag: sampleInput ? sampleInput.value : ""});
      fetch(url + "?" + query.toString(), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (response) { return response.json(); })
        .then(function (data) {
          output.textContent = "";
          var node = document.createElement(data.tag ? "code" : "span");
          node.className = data.tag ? "preview-tag" : "errors";
          node.textContent = data.tag || data.error || "";
          output.appendChild(node);
        })
        .catch(function () { /* keep the last preview; the Preview button path still works */ });
    };
    var schedule = function () { clearTimeout(timer); timer = setTimeout(update, 150); };
    templateInput.addEventListener("input", schedule);
    if (sampleInput) { sampleInput.addEventListener("input", schedule); }
  }
})();

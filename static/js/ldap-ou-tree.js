// Admin > LDAP, "Ajouter les unités organisationnelles": search, collapse, tick or clear a whole branch, and
// send the ticked OUs as one field (a thousand checkboxes would exceed Django's request-field limit).
// No inline script or handler: the console runs under a strict Content-Security-Policy.
(function () {
  "use strict";

  function setup(tree) {
    var form = tree.closest("form");
    var tools = form.querySelector("[data-ou-tools]");
    var search = form.querySelector("[data-ou-search]");
    var count = form.querySelector("[data-ou-count]");
    var hidden = form.querySelector("[data-ou-selected-ids]");
    var boxes = Array.prototype.slice.call(tree.querySelectorAll("input[type=checkbox][name=selected]"));
    tools.hidden = false;
    tree.querySelectorAll("[data-ou-subtree-tools]").forEach(function (el) { el.hidden = false; });

    function updateCount() {
      var ticked = boxes.filter(function (box) { return box.checked; }).length;
      count.textContent = ticked + " / " + boxes.length;
    }

    function setBranch(li, checked) {
      li.querySelectorAll("input[type=checkbox][name=selected]").forEach(function (box) {
        if (!box.disabled) { box.checked = checked; }
      });
    }

    function setExpanded(button, expanded) {
      var list = document.getElementById(button.getAttribute("aria-controls"));
      button.setAttribute("aria-expanded", expanded ? "true" : "false");
      if (list) { list.hidden = !expanded; }
    }

    tree.addEventListener("click", function (event) {
      var toggle = event.target.closest("[data-ou-toggle]");
      if (toggle) {
        setExpanded(toggle, toggle.getAttribute("aria-expanded") !== "true");
        return;
      }
      var branch = event.target.closest("[data-ou-subtree]");
      if (branch) {
        setBranch(branch.closest("li"), branch.getAttribute("data-ou-subtree") === "check");
        updateCount();
      }
    });
    tree.addEventListener("change", updateCount);

    tools.addEventListener("click", function (event) {
      var button = event.target.closest("[data-ou-all]");
      if (!button) { return; }
      var action = button.getAttribute("data-ou-all");
      if (action === "check" || action === "clear") {
        boxes.forEach(function (box) {
          var li = box.closest("li");
          if (!li.hidden) { box.checked = action === "check"; }
        });
        updateCount();
      } else {
        tree.querySelectorAll("[data-ou-toggle]").forEach(function (toggle) {
          setExpanded(toggle, action === "expand");
        });
      }
    });

    // Search: show the OUs whose name contains the text, with their ancestors (opened) for context.
    search.addEventListener("input", function () {
      var text = search.value.trim().toLowerCase();
      var nodes = tree.querySelectorAll("[data-ou-node]");
      nodes.forEach(function (li) { li.hidden = text !== ""; });
      if (text === "") { return; }
      nodes.forEach(function (li) {
        if (li.getAttribute("data-ou-name").indexOf(text) === -1) { return; }
        li.hidden = false;
        li.querySelectorAll("[data-ou-node]").forEach(function (child) { child.hidden = false; });
        var parent = li.parentElement.closest("[data-ou-node]");
        while (parent) {
          parent.hidden = false;
          var toggle = parent.querySelector(":scope > [data-ou-toggle]");
          if (toggle) { setExpanded(toggle, true); }
          parent = parent.parentElement.closest("[data-ou-node]");
        }
      });
    });

    form.addEventListener("submit", function () {
      hidden.value = boxes.filter(function (box) { return box.checked; }).map(function (box) { return box.value; }).join(",");
      // Only the compact field is sent; the checkboxes are restored if the page is shown again from cache.
      boxes.forEach(function (box) { box.disabled = true; });
      window.setTimeout(function () { boxes.forEach(function (box) { box.disabled = false; }); }, 0);
    });
    updateCount();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-ou-tree]").forEach(setup);
  });
})();
